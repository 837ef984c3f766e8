"""Endurance as an interval: known, unknown (with its bounds) and lost stay apart, and no
answer depends on the order things are listed in."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from commsmon.core.endurance import Endurance, least, lost, most, unbounded, unknown
from commsmon.core.facts import Fact
from commsmon.core.model import Device
from commsmon.core.power import DeviceView
from commsmon.core.types import State

DOWN = Fact("link_down", {"device": "router"})
NOT_SEEN = Fact("link_unknown", {"device": "sat"})


def test_one_lost_one_unknown_is_unknown_never_zero() -> None:
    """A router known down and a phone never heard: somewhere between 0 and ∞, whichever
    is listed first (the README promised never 0)."""
    for pair in ([("router", lost(DOWN)), ("sat", unknown(NOT_SEEN))],
                 [("sat", unknown(NOT_SEEN)), ("router", lost(DOWN))]):
        e = most(pair)
        assert (e.lower, e.upper, e.exact, e.lost) == (0.0, math.inf, False, False)
        assert e.unknowns == (NOT_SEEN,)


def test_every_provider_lost_names_every_cause() -> None:
    """Nothing works: lost, with each provider's reason."""
    other = Fact("link_down", {"device": "pdt"})
    e = most([("router", lost(DOWN)), ("pdt", lost(other))])
    assert e.lost and e.exact and e.stages == (other, DOWN)  # by key: pdt, router


def test_a_known_short_link_bounds_an_unknown_one() -> None:
    """A chain with a 10 h link and an unknown one: at most 10 h, certainly short of 72."""
    e = least([("a", Endurance(10, 10, (Fact("ups_runtime", {"hours": 10}),))),
               ("b", unknown(NOT_SEEN))])
    assert (e.lower, e.upper) == (0.0, 10.0) and e.short(72) and not e.survives(72)
    assert e.stages == (Fact("ups_runtime", {"hours": 10}),) and e.unknowns == (NOT_SEEN,)


def test_an_unknown_stage_on_top_of_enough_still_survives() -> None:
    """UPS runtime unknown, fuel 100 h: at least 100 h, which clears 72 h."""
    e = unknown(NOT_SEEN) + Endurance(100, 100)
    assert e.survives(72) and not e.exact and e.lower == 100


def test_edge_of_the_target() -> None:
    """72.0 h lasts 72 h; 71.9 h does not."""
    assert Endurance(72.0, 72.0).survives(72) and not Endurance(71.9, 71.9).survives(72)


def test_fact_round_trip() -> None:
    """An endurance survives being a fact (alerts keep it in the outbox)."""
    e = Endurance(1.5, math.inf, (DOWN,), (NOT_SEEN,))
    assert Endurance.from_fact(e.as_fact()) == e
    assert Endurance.from_fact(unbounded().as_fact()).unbounded


_bounds = st.tuples(st.floats(0, 500), st.floats(0, 500)).map(sorted)
_endurance = st.one_of(
    _bounds.map(lambda b: Endurance(b[0], b[1], (), () if b[0] == b[1] else (NOT_SEEN,))),
    st.floats(0, 500).map(lambda h: Endurance(h, h, (Fact("battery", {"hours": h}),))),
    st.just(unbounded(Fact("mains"))), st.just(lost(DOWN)), st.just(unknown(NOT_SEEN)))
_items = st.lists(st.tuples(st.text("abcdef", min_size=1, max_size=3), _endurance),
                  min_size=1, max_size=6, unique_by=lambda kv: kv[0])


@given(_items, st.randoms())
def test_combining_does_not_depend_on_order(items: list[tuple[str, Endurance]],
                                            rnd: object) -> None:
    """least and most give the same endurance, facts and all, in any order; their bounds
    are the smallest and largest of the parts'."""
    shuffled = list(items)
    rnd.shuffle(shuffled)  # type: ignore[attr-defined]
    for combine in (least, most):
        assert combine(items) == combine(shuffled)
    lo, hi = least(items), most(items)
    assert lo.lower == min(e.lower for _, e in items)
    assert hi.upper == max(e.upper for _, e in items)
    assert lo.lower <= hi.lower and lo.upper <= hi.upper


def test_a_chain_or_providers_lasting_what_one_of_them_does_is_that_one() -> None:
    """Two links on mains (∞) make a chain of ∞ with the first link's stages; a 10 h
    link and an unknown one leave a 0-10 h chain.  The first result is the binding
    link itself (one object, shared by every chain through it: the district repeater
    sits in every village's PDT chain); the second, with other bounds, is new."""
    repeater = unbounded(Fact("link", {"device": "rpt"}), Fact("mains", {"device": "rpt"}))
    terminal = unbounded(Fact("link", {"device": "pdt"}), Fact("mains", {"device": "pdt"}))
    assert least([("rpt", repeater), ("pdt", terminal)]) is terminal  # by key: pdt first
    assert most([("rpt", repeater), ("pdt", terminal)]) is terminal
    ten = Endurance(10, 10, (Fact("ups_runtime", {"hours": 10}),))
    chain = least([("a", ten), ("b", unknown(NOT_SEEN))])
    assert chain is not ten and chain == Endurance(0.0, 10.0, ten.stages, (NOT_SEEN,))


def test_a_link_on_its_own_mains_is_one_object_for_every_chain_through_it() -> None:
    """The repeater on its own mains heads every village's PDT chain alike: one linked
    endurance (∞, its link then its mains) for all of them; power through another
    device's feed gives an equal one made anew."""
    view = DeviceView(Device("rpt", "c", "pdt_repeater", "rpt", "snmp", "p"), State.UP, 0.0)
    mains = view.mains()
    linked = view.linked(mains)
    assert linked is view.linked(mains) and linked.unbounded
    assert linked.stages == (view.link(), *mains.stages) and linked.unknowns == ()
    fed = unbounded(Fact("mains", {"device": "cups"}))
    assert view.linked(fed) == view.linked(fed) and view.linked(fed) is not view.linked(fed)


def test_adding_nothing_gives_the_other_itself() -> None:
    """A device with no battery of its own (0 h, nothing said) adds nothing to its feed's
    101 h: the feed's endurance itself; a lost link (0 h, said why) is not nothing."""
    feed = Endurance(101.0, 101.0, (Fact("fuel", {"hours": 101.0}),))
    assert feed + Endurance(0.0, 0.0) is feed and Endurance(0.0, 0.0) + feed is feed
    down = lost(DOWN)
    assert (feed + down).stages == (*feed.stages, DOWN) and not down.nothing
