"""The accounting rules in the officer's language, as every report prints them: English
from :data:`commsmon.core.accounting.RULES_TEXT`, Chinese from
``templates/rules.<version>.zh.txt`` (the same version: a new version of the rules needs
its Chinese before a report prints)."""

from __future__ import annotations

from importlib.resources import files

from commsmon.core.accounting import RULES_TEXT, RULES_VERSION

__all__ = ["rules_text"]


def rules_text(language: str) -> str:
    """The rules of :data:`RULES_VERSION`, a bullet per line, in ``language``, as
    plain text.

    Raises:
        KeyError: Chinese asked for, and the version has no Chinese text.
    """
    if language != "zh":
        return RULES_TEXT.replace("**", "").replace("``", "")
    name = f"rules.{RULES_VERSION}.zh.txt"
    try:
        return (files("commsmon.outputs.reports") / "templates" / name).read_text("utf-8")
    except FileNotFoundError:
        raise KeyError(f"no Chinese text of the accounting rules {RULES_VERSION}") from None
