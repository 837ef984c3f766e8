"""SNMP polling: the client interface (``base``), three backends, the reply gate they
send through (``wire``), and the poller."""

from __future__ import annotations

from commsmon.sources.snmp.base import SnmpClient


def snmp_client_for(backend: str) -> SnmpClient:
    """The configured SNMP backend: ``gufo``, ``pysnmp``, else the native one (the
    default, from the measurements in the README; SNMPv3 through gufo)."""
    if backend == "pysnmp":
        from commsmon.sources.snmp.pysnmp_backend import PysnmpClient

        return PysnmpClient()
    if backend == "gufo":
        from commsmon.sources.snmp.gufo_backend import GufoClient

        return GufoClient()
    from commsmon.sources.snmp.native_backend import NativeClient

    return NativeClient()
