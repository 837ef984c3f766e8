"""Loading a configuration: read, resolve references, validate, load profiles, cross-check."""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Iterator
from pathlib import Path

from pydantic import (
    ValidationError,
)

from commsmon.config.document import Document, resolve_references, validate
from commsmon.config.profiles import Profile
from commsmon.config.settings import Config
from commsmon.core.model import PowerFeed
from commsmon.core.readings import USES
from commsmon.errors import ConfigError


def load_config(path: str | Path) -> Config:
    """Read, validate and cross-check a configuration file and its profiles.

    Raises:
        ConfigError: with one ``FILE:LINE: field.path: message`` per problem.
    """
    path = Path(path)
    doc = Document.read(path)
    problems: list[str] = []
    resolve_references(doc, problems)
    if problems:
        raise ConfigError(problems)
    config = validate(Config, doc, problems)
    if config is None:
        raise ConfigError(problems)
    profiles_dir = (path.parent / config.profiles_dir).resolve()
    if not profiles_dir.is_dir():
        raise ConfigError([doc.at(("profiles_dir",), f"directory {profiles_dir} not found")])
    profiles = _load_profiles(profiles_dir, problems)
    problems.extend(_cross_check(config, profiles, doc))
    if problems:
        raise ConfigError(problems)
    return config.model_copy(update={"profiles": profiles, "path": path,
                                     "warnings": list(_warnings(config, doc))})


def _load_profiles(directory: Path, problems: list[str]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for file in sorted(directory.glob("*.yaml")):
        try:
            doc = Document.read(file)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        profile = validate(Profile, doc, problems)
        if profile is None:
            continue
        if profile.name != file.stem:
            problems.append(f"{file}:1: name: must match the file name {file.stem!r}")
        profiles[profile.name] = profile
    return profiles


def _cross_check(config: Config, profiles: dict[str, Profile], doc: Document) -> Iterator[str]:
    """References between entries: unique ids, known parents, matching profiles."""
    site_ids: set[str] = set()
    device_ids = {d.id for _, d in config.devices()}
    kinds = {d.id: d.kind for _, d in config.devices()}
    parents = {d.id: d.parent for _, d in config.devices() if d.parent}
    seen: set[str] = set()
    if config.shard.count > 1 and (config.mqtt is None or not config.mqtt.share_group):
        # Instances hand each other observations over the broker, and must split telemetry.
        yield doc.at(("shard",), "several shards need 'mqtt' with a 'share_group'")
    for i, site in enumerate(config.sites):
        if site.id in site_ids:
            yield doc.at(("sites", i, "id"), f"duplicate site id {site.id!r}")
        site_ids.add(site.id)
        if site.trap_every is not None and not config.traps.listen:
            yield doc.at(("sites", i, "trap_every"), "checking the trap path needs "
                         "'traps.listen' (commsmon must listen for the traps)")
        if site.trap_every is not None and not any(d.snmp for d in site.devices):
            yield doc.at(("sites", i, "trap_every"), "no SNMP device here sends traps")
        for j, d in enumerate(site.devices):
            here = ("sites", i, "devices", j)
            if d.id in seen:
                yield doc.at((*here, "id"), f"duplicate device id {d.id!r}")
            seen.add(d.id)
            for k, ref in enumerate([d.parent, *d.depends_on]):
                if ref is not None and ref not in device_ids:
                    loc = (*here, "parent") if k == 0 else (*here, "depends_on", k - 1)
                    yield doc.at(loc, f"unknown device {ref!r}")
            if _parent_loop(d.id, parents):
                yield doc.at((*here, "parent"), "parents form a loop")
            feed = PowerFeed.parse(d.power)
            if feed.ref is not None:
                source = kinds.get(feed.ref)
                wanted = "ups" if feed.kind == "ups" else "generator"
                if source is None:
                    yield doc.at((*here, "power"), f"unknown device {feed.ref!r}")
                elif source != wanted:
                    yield doc.at((*here, "power"), f"{feed.ref!r} is a {source}, "
                              f"not a {wanted}")
            if d.snmp is not None:
                try:
                    d.snmp.resolve(config.defaults.snmp)
                except ValidationError as exc:
                    msg = exc.errors()[0]["msg"].removeprefix("Value error, ")
                    yield doc.at((*here, "snmp"), msg)
            if d.profile is None:
                continue
            profile = profiles.get(d.profile)
            if profile is None:
                yield doc.at((*here, "profile"), f"unknown profile {d.profile!r}")
            elif profile.source != d.source:
                yield doc.at((*here, "profile"),
                    f"profile {d.profile!r} is read over {profile.source}, device over {d.source}",
                )
            elif missing := _unused_by_core(d.kind, profile):
                yield doc.at((*here, "profile"), missing)
            elif d.source == "mqtt" and config.mqtt is None:
                yield doc.at((*here, "mqtt"), "an MQTT device needs a top-level 'mqtt'")


def _warnings(config: Config, doc: Document) -> Iterator[str]:
    """What loads but deserves a look: with traps on, an address several devices send
    traps from (their traps are told apart only by snmpTrapAddress.0 or an engine ID;
    one that names neither is dropped as ambiguous, never guessed)."""
    if not config.traps.listen:
        return
    first: dict[str, str] = {}
    for i, site in enumerate(config.sites):
        for j, d in enumerate(site.devices):
            if d.snmp is None or d.snmp.engine_id:
                continue
            addresses = [str(a) for a in d.snmp.trap_from]
            with contextlib.suppress(ValueError):
                addresses.insert(0, str(ipaddress.ip_address(d.snmp.host)))
            for address in dict.fromkeys(addresses):
                other = first.setdefault(address, d.id)
                if other != d.id:
                    yield doc.at(("sites", i, "devices", j, "snmp"),
                                 f"{d.id} and {other} send traps from {address}: their traps "
                                 "must name the device in snmpTrapAddress.0, or give each an "
                                 "engine_id (a trap naming neither is dropped as ambiguous)")


def _unused_by_core(kind: str, profile: Profile) -> str:
    """What the core reads from a ``kind`` that ``profile`` does not give, or ``""``."""
    for use in USES.get(kind, ()):
        if not any(name in profile.readings for name in use.readings):
            names = " or ".join(repr(name) for name in use.readings)
            return (f"profile {profile.name!r} has no reading {names}, which the core reads "
                    f"from a {kind} for {use.purpose}")
    return ""


def _parent_loop(device: str, parents: dict[str, str]) -> bool:
    seen, node = {device}, parents.get(device)
    while node is not None:
        if node in seen:
            return node == device
        seen.add(node)
        node = parents.get(node)
    return False
