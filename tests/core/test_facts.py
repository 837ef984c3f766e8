"""Facts: read-only terms, compared by value, kept compactly (one key index per
shape of fact, shared)."""

from __future__ import annotations

import copy
import json
import math
import pickle
from dataclasses import FrozenInstanceError

import orjson
import pytest

from commsmon.core.facts import DerivedFact, Fact, fact_from_json, fact_to_json


def test_facts_compare_by_their_terms_whatever_order_they_were_given_in() -> None:
    a = Fact("link", {"device": "v01-pdt", "name": "PDT 终端", "site": "v01"})
    b = Fact("link", {"site": "v01", "name": "PDT 终端", "device": "v01-pdt"})
    assert a == b
    assert a != Fact("link", {"device": "v01-pdt", "name": "PDT 终端"})  # a term fewer
    assert a != Fact("mains", {"device": "v01-pdt", "name": "PDT 终端", "site": "v01"})
    assert Fact("no_answer") == Fact("no_answer", {})
    assert dict(a.args) == {"device": "v01-pdt", "name": "PDT 终端", "site": "v01"}
    assert list(b.args) == ["site", "name", "device"]  # the order given
    assert {**a.args, "state": "down"}["state"] == "down"
    assert a.arg("name") == "PDT 终端" and a.arg("since") is None
    assert repr(a) == ("Fact(code='link', args={'device': 'v01-pdt', 'name': 'PDT 终端', "
                       "'site': 'v01'})")


def test_nested_facts_compare_and_read_as_terms() -> None:
    down = Fact("link_down", {"device": "r", "causes": (Fact("no_answer"),)})
    assert down == Fact("link_down", {"causes": (Fact("no_answer", {}),), "device": "r"})
    assert down != Fact("link_down", {"device": "r", "causes": (Fact("offline"),)})
    assert down.facts("causes") == (Fact("no_answer"),)
    assert down.texts("causes") == () and down.text("device") == "r"


def test_a_fact_cannot_be_changed_nor_hashed() -> None:
    fact = Fact("fuel", {"litres": 90.0})
    with pytest.raises(FrozenInstanceError):
        fact.code = "battery"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(fact)
    with pytest.raises(TypeError):
        fact.args["litres"] = 0.0  # type: ignore[index]


def test_a_fact_survives_json_pickle_and_copy() -> None:
    fact = Fact("endurance", {"lower": 61.0, "upper": math.inf,
                              "stages": (Fact("fuel", {"litres": 90.0, "rate": 1.5}),),
                              "unknowns": ()})
    for again in (fact_from_json(fact_to_json(fact)), pickle.loads(pickle.dumps(fact)),
                  copy.deepcopy(fact), copy.copy(fact)):
        assert again == fact and repr(again) == repr(fact)


def test_infinities_and_nan_survive_json() -> None:
    """JSON has no infinity nor NaN, and orjson (the alert engine's save) writes either
    as null: each is kept as ``{"float": ...}`` and read back as the float it was."""
    fact = Fact("reading", {"lower": -math.inf, "upper": math.inf, "value": math.nan,
                            "hours": 0.0, "on": False, "count": 3, "name": "ups", "none": None})
    text = orjson.dumps(fact_to_json(fact))
    assert b"null" in text and b'"none":null' in text and text.count(b"null") == 1
    again = fact_from_json(json.loads(text))
    assert math.isnan(again.number("value") or 0.0)
    assert (again.number("lower"), again.number("upper")) == (-math.inf, math.inf)
    assert {k: v for k, v in again.args.items() if k != "value"} == {
        k: v for k, v in fact.args.items() if k != "value"}


def test_facts_of_one_shape_share_their_key_index() -> None:
    a = Fact("battery", {"device": "a", "ratio": 0.5})
    b = Fact("battery", {"device": "b", "ratio": 0.9})
    assert a._index is b._index  # the saving: one index, a tuple of values each


def _verdict(litres: float) -> Fact:
    return Fact("verdict", {"ready": litres >= 150.0,
                            "endurance": Fact("fuel", {"litres": litres})})


def test_a_derived_fact_is_the_fact_its_source_gives() -> None:
    """An alert keeps its verdict as the verdict itself, worked out when read: equal to
    the plain fact, read alike, encoded alike; the same object made again is equal
    without working it out."""
    made: list[float] = []

    def make(litres: float) -> Fact:
        made.append(litres)
        return _verdict(litres)

    derived = DerivedFact("verdict", 150.0, make)
    assert derived == _verdict(150.0) and _verdict(150.0) == derived
    assert derived != _verdict(90.0) and derived != DerivedFact("verdict", 90.0, make)
    assert derived.arg("ready") is True and derived.facts("endurance") == (
        Fact("fuel", {"litres": 150.0}),)
    assert fact_to_json(derived) == fact_to_json(_verdict(150.0))
    assert fact_from_json(fact_to_json(derived)) == derived
    assert pickle.loads(pickle.dumps(derived)) == derived
    assert repr(derived) == repr(_verdict(150.0))
    made.clear()
    assert derived == DerivedFact("verdict", derived._source, make) and made == []
    with pytest.raises(TypeError):
        hash(derived)


def test_derived_facts_of_equal_sources_are_equal_without_working_out() -> None:
    """A verdict judged again equal to the one an alert holds: the alert's facts are
    unchanged, told without making either fact.  Unequal sources are worked out: they
    may still tell the same fact (a fact leaves some of its source out)."""
    made: list[tuple[str, float]] = []

    def make(source: tuple[str, float]) -> Fact:
        made.append(source)
        return _verdict(source[1])

    held = DerivedFact("verdict", ("v01", 150.0), make)
    assert held == DerivedFact("verdict", ("v01", 150.0), make) and made == []
    assert held == DerivedFact("verdict", ("v02", 150.0), make) and len(made) == 2
    made.clear()
    assert held != DerivedFact("verdict", ("v01", 90.0), make) and len(made) == 2
    assert held != DerivedFact("verdict", ("v01", 150.0), lambda s: _verdict(90.0))
