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


def test_times_since_replaced_do_not_pile_up() -> None:
    """A device polled every minute is put again long before its last time comes: the
    agenda keeps its standing times, not every one ever put (50 000 entries for
    20 000 devices before)."""
    agenda = Agenda()
    for n in range(1000):
        agenda.put("router", 100.0 + n)
        agenda.put("genset", 5000.0 - n)
    assert len(agenda._heap) <= 2 * 5 // 4 + 64 + 1
    assert agenda.due(1098.0) == set()
    assert agenda.due(1099.0) == {"router"}  # its latest time: 100 + 999
    assert agenda.due(4000.0) == set()
    assert agenda.due(4001.0) == {"genset"}  # its latest: 5000 - 999, not its first
