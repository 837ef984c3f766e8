"""Field types and the strict base model every configuration section shares."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
)

__all__ = ["Identifier", "MetricName", "Oid", "Port", "Seconds", "StrictModel"]


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError("must be 1..65535")
    return value


def _oid(value: str) -> str:
    if not re.fullmatch(r"\d+(\.(\d+|\{[a-z_]+\}))+", value):
        raise ValueError(f"{value!r} is not a numeric OID (dotted digits, no leading dot)")
    return value


Port = Annotated[int, AfterValidator(_port)]
Oid = Annotated[str, AfterValidator(_oid)]
Identifier = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=64)]
MetricName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Seconds = Annotated[float, Field(gt=0)]


class StrictModel(BaseModel):
    """A configuration section: unknown keys are errors, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)
