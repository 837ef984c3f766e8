"""YAML files with line numbers: a problem is reported as ``FILE:LINE: field.path: message``."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, TypeVar

from pydantic import (
    BaseModel,
    ValidationError,
)
from pydantic_core import ErrorDetails

from commsmon.errors import ConfigError

_M = TypeVar("_M", bound=BaseModel)


class Document:
    """A YAML file's data, and the line of any field in it when a problem needs one.

    The data comes from the fast C loader (``ruamel.yaml.clib``); lines come from
    the round-trip loader, five times slower and far larger for a province's
    file, so it only runs once something is wrong.
    """

    def __init__(self, path: Path, text: str, data: Any) -> None:
        self.path = path
        self.data = data
        self._text = text
        self._tree: Any = None

    @classmethod
    def read(cls, path: Path) -> Document:
        """Read and parse ``path``; a syntax error is a located :class:`ConfigError`."""
        # Imported here: the daemon reads its files in a child process, and ruamel is
        # 1.7 MiB it would otherwise keep for good.
        from ruamel.yaml import YAML
        from ruamel.yaml.error import MarkedYAMLError, YAMLError
        from ruamel.yaml.reader import ReaderError

        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError([f"{path}: cannot read: {exc}"]) from exc
        try:
            return cls(path, text, YAML(typ="safe").load(text))
        except MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 0
            raise ConfigError([f"{path}:{line}: not valid YAML: {exc.problem}"]) from exc
        except ReaderError as exc:  # a character YAML forbids (control characters)
            line = text[: max(exc.position, 0)].count("\n") + 1
            raise ConfigError([f"{path}:{line}: not valid YAML: {exc.reason} "
                               f"(character {exc.character!r})"]) from exc
        except YAMLError as exc:  # anything else the parser refuses, still located
            raise ConfigError([f"{path}:1: not valid YAML: {exc}"]) from exc

    def line(self, loc: tuple[str | int, ...]) -> int:
        """1-based line of the deepest node of ``loc`` that exists in the YAML."""
        from ruamel.yaml import YAML
        from ruamel.yaml.comments import CommentedMap, CommentedSeq

        if self._tree is None:
            self._tree = YAML(typ="rt").load(self._text)
        node, line = self._tree, 1
        for part in loc:
            if isinstance(node, CommentedMap) and part in node:
                line = node.lc.key(part)[0] + 1
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and part < len(node):
                line = node.lc.item(part)[0] + 1
                node = node[part]
            else:
                break
        return line

    def at(self, loc: tuple[str | int, ...], msg: str) -> str:
        """``FILE:LINE: field.path: msg``."""
        return f"{self.path}:{self.line(loc)}: {_dotted(loc) or '(top)'}: {msg}"


_REFERENCE = re.compile(r"\$\{(env|file|credential):([^}]+)\}")


def resolve_references(doc: Document, problems: list[str]) -> None:
    """Replace ``${env:NAME}``, ``${file:/path}`` and ``${credential:name}`` (systemd's
    ``$CREDENTIALS_DIRECTORY``) in string values, in place, so secrets need not be
    inline.  The values are never logged; a missing one is a located problem."""

    def walk(node: Any, loc: tuple[str | int, ...]) -> None:
        items: list[tuple[Any, Any]]
        if isinstance(node, dict):
            items = list(node.items())
        elif isinstance(node, list):
            items = list(enumerate(node))
        else:
            return
        for key, value in items:
            here = (*loc, key)
            if isinstance(value, str) and "${" in value:
                try:
                    node[key] = _REFERENCE.sub(_dereference, value)
                except LookupError as exc:
                    problems.append(doc.at(here, exc.args[0]))
            else:
                walk(value, here)

    walk(doc.data, ())


def _dereference(match: re.Match[str]) -> str:
    kind, name = match.group(1), match.group(2).strip()
    if kind == "env":
        if name not in os.environ:
            raise LookupError(f"environment variable {name} is not set")
        return os.environ[name]
    if kind == "credential":
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise LookupError(f"credential {name}: no $CREDENTIALS_DIRECTORY (LoadCredential=)")
        name = str(Path(directory) / name)
    try:
        return Path(name).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise LookupError(f"cannot read secret file {name}: {exc.strerror}") from None


def validate(model: type[_M], doc: Document, problems: list[str]) -> _M | None:
    """``doc``'s data as ``model``, or ``None`` with one located problem per error added."""
    try:
        return model.model_validate(doc.data)
    except ValidationError as exc:
        for err in exc.errors():
            problems.append(doc.at(*_located(doc.data, err)))
        return None


UNION_TAGS = ("type",)
"""Keys whose value picks the member of a discriminated union (``alerting.receivers[].type``)."""


def _located(data: Any, err: ErrorDetails) -> tuple[tuple[str | int, ...], str]:
    """Where in the file a pydantic error is, and its message.

    In a discriminated union pydantic puts the member's tag in the location
    (``receivers[0].webhook.keyword``), where the file has no such key: it is
    dropped, and a key that member does not take says which type refused
    it.  A tag that is unknown or missing is located at its key, as a
    ``Literal`` field's error would be.
    """
    msg = err["msg"].removeprefix("Value error, ")
    loc: list[str | int] = []
    node, tag = data, None
    for part in err["loc"]:
        if (isinstance(node, dict) and isinstance(part, str) and part not in node
                and any(node.get(key) == part for key in UNION_TAGS)):
            tag = part
            continue
        loc.append(part)
        if isinstance(node, dict):
            node = node.get(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            node = None
    ctx = err.get("ctx") or {}
    key = str(ctx.get("discriminator", "")).strip("'")
    if err["type"] == "extra_forbidden" and tag is not None:
        msg = f"not an option of type {tag!r}"
    elif err["type"] == "union_tag_invalid" and key in UNION_TAGS:
        loc.append(key)
        msg = f"must be one of {ctx['expected_tags']}"
    elif err["type"] == "union_tag_not_found" and key in UNION_TAGS:
        loc.append(key)
        msg = "Field required"
    return tuple(loc), msg


def _dotted(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
