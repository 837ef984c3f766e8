"""The rooms stay honest (docs/design.md, "Rooms"): ``core/`` imports only the standard
library and itself; ``outputs/`` never imports ``sources/``, nor ``sources/``
``outputs/``. Read from the source with ``ast``, so an import inside a function or
under ``TYPE_CHECKING`` counts too."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "commsmon"

#: room -> what it may not import (a module prefix), and whether only the standard
#: library and ``commsmon.<room>`` itself are allowed.
RULES: dict[str, tuple[tuple[str, ...], bool]] = {
    "core": ((), True),
    "outputs": (("commsmon.sources",), False),
    "sources": (("commsmon.outputs",), False),
}


def imports(source: str) -> list[tuple[int, str]]:
    """(line, module) of every import in ``source``, relative ones made absolute-ish."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.append((node.lineno, node.module))
    return found


def violations(room: str, source: str) -> list[str]:
    """What in ``source`` (a module of ``room``) breaks the room's rule."""
    forbidden, stdlib_only = RULES[room]
    return [f"{line}: {module}" for line, module in imports(source)
            if (forbidden and module.startswith(forbidden))
            or (stdlib_only and not _stdlib_or_own(module, room))]


def _stdlib_or_own(module: str, room: str) -> bool:
    top = module.split(".")[0]
    return top in sys.stdlib_module_names or top == "__future__" \
        or module.startswith(f"commsmon.{room}")


@pytest.mark.parametrize("room", sorted(RULES))
def test_room_imports(room: str) -> None:
    found = {str(path.relative_to(PACKAGE.parent)): problems
             for path in sorted((PACKAGE / room).rglob("*.py"))
             if (problems := violations(room, path.read_text(encoding="utf-8")))}
    assert not found, found


@pytest.mark.parametrize(("room", "source"), [
    ("core", "import structlog\n"),
    ("core", "from commsmon.outputs.wording import Wording\n"),
    ("core", "def f():\n    from commsmon.sources import mqtt\n"),
    ("outputs", "from commsmon.sources.snmp.base import SnmpValue\n"),
    ("sources", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                "    from commsmon.outputs.api import Operations\n"),
])
def test_a_forbidden_import_is_caught(room: str, source: str) -> None:
    """The checker itself: each of these would slip a room's rule."""
    assert violations(room, source)


def test_what_a_room_may_import_passes() -> None:
    assert not violations("core", "from __future__ import annotations\nimport math\n"
                                  "from commsmon.core.facts import Fact\n")
    assert not violations("outputs", "from commsmon.core.fleet import Fleet\nimport aiohttp\n")
