"""Ack links on injected time against the real outbox (SQLite): signed, single use,
expiring, and dead once their group resolves (another episode) or gets worse."""

from __future__ import annotations

from pathlib import Path

from commsmon.core.escalation import Escalation, GroupLevel
from commsmon.outputs.alerts.links import AckLinks
from commsmon.state.outbox import Outbox

T0 = 1_796_436_000.0
LOST = GroupLevel("warning", frozenset({"site_channel_lost channel=pdt370 site=v05"}))
TWO = GroupLevel("warning", LOST.alerts | {"site_channel_lost channel=satellite site=v05"})


def _links(tmp_path: Path, clock: list[float]) -> tuple[AckLinks, Escalation]:
    esc = Escalation(None, 1800)
    esc.update({"site:v05": LOST}, clock[0])
    links = AckLinks(Outbox(tmp_path / "outbox.db"), "https://desk.example/commsmon/", 3600,
                     esc, lambda: clock[0])
    links.restore()
    return links, esc


def _token(url: str | None) -> str:
    assert url is not None and url.startswith("https://desk.example/commsmon/a/")
    return url.rsplit("/", 1)[1]


def test_a_link_acts_once(tmp_path: Path) -> None:
    clock = [T0]
    links, _ = _links(tmp_path, clock)
    token = _token(links.issue("site:v05", "deputy"))
    link, problem = links.read(token)
    assert link is not None and problem is None and link.role == "deputy"
    assert links.use(link, "李四") and not links.use(link, "李四")
    assert links.read(token)[1] == "used"


def test_a_forged_or_unknown_token_does_nothing(tmp_path: Path) -> None:
    clock = [T0]
    links, _ = _links(tmp_path, clock)
    token = _token(links.issue("site:v05", "duty"))
    jti, sig = token.split(".")
    assert links.read(f"{jti}x.{sig}") == (None, "forged")
    assert links.read("nonsense") == (None, "forged")
    other, _ = _links(tmp_path / "other", clock)  # another key: another installation
    assert other.read(token) == (None, "forged")


def test_a_link_expires_at_its_ttl(tmp_path: Path) -> None:
    """Issued at T0 with a 3600 s life: usable at T0 + 3599, not at T0 + 3600."""
    clock = [T0]
    links, esc = _links(tmp_path, clock)
    token = _token(links.issue("site:v05", "duty"))
    clock[0] = T0 + 3599
    esc.update({"site:v05": LOST}, clock[0])
    assert links.read(token)[1] is None
    clock[0] = T0 + 3600
    assert links.read(token)[1] == "expired"


def test_a_link_dies_when_its_group_resolves_or_worsens(tmp_path: Path) -> None:
    clock = [T0]
    links, esc = _links(tmp_path, clock)
    token = _token(links.issue("site:v05", "duty"))
    esc.update({"site:v05": TWO}, T0 + 60)  # a second channel lost
    assert links.read(token)[1] == "worse"
    fresh = _token(links.issue("site:v05", "duty"))  # a message about the worse group
    assert links.read(fresh)[1] is None
    esc.update({}, T0 + 120)  # resolved
    assert links.read(fresh)[1] == "resolved"
    esc.update({"site:v05": LOST}, T0 + 180)  # firing again: another episode
    assert links.read(fresh)[1] == "resolved"
    assert links.issue("site:v06", "duty") is None  # not firing: no link


def test_no_external_url_no_links(tmp_path: Path) -> None:
    esc = Escalation(None, 1800)
    esc.update({"site:v05": LOST}, T0)
    links = AckLinks(Outbox(tmp_path / "outbox.db"), None, 3600, esc, lambda: T0)
    links.restore()
    assert links.issue("site:v05", "duty") is None
