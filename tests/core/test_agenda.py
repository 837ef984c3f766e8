"""The agenda of changes that fall due with the clock alone."""

from __future__ import annotations

from commsmon.core.agenda import Agenda


def test_a_key_is_due_once_at_its_latest_time() -> None:
    agenda = Agenda()
    agenda.put("router", 100.0)
    agenda.put("router", 160.0)  # a newer reading: its max_age runs from it
    agenda.put("genset", 130.0)
    assert agenda.due(99.0) == set()
    assert agenda.due(130.0) == {"genset"}  # due at its time exactly
    assert agenda.due(150.0) == set()  # the router's 100 was replaced
    assert agenda.due(200.0) == {"router"}
    assert agenda.due(1000.0) == set()  # taken off once due


def test_a_key_put_to_none_is_not_due() -> None:
    agenda = Agenda()
    agenda.put("satphone", 50.0)
    agenda.put("satphone", None)  # its check-in stale already: judged every time
    assert agenda.due(100.0) == set()
