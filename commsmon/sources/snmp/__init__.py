"""SNMP polling: the client interface (``base``), two backends, the reply gate both
send through (``wire``), and the poller."""

from __future__ import annotations

from commsmon.sources.snmp.base import SnmpClient


def snmp_client_for(backend: str) -> SnmpClient:
    """The configured SNMP backend: ``pysnmp``, else gufo (the default, from the
    measurements in the README)."""
    if backend == "pysnmp":
        from commsmon.sources.snmp.pysnmp_backend import PysnmpClient

        return PysnmpClient()
    from commsmon.sources.snmp.gufo_backend import GufoClient

    return GufoClient()
