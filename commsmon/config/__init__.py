"""Typed configuration, loaded from YAML and validated with pydantic.

A configuration file holds the settings (``settings``: services, defaults,
``alerting``) and the sites with their devices (``devices``): how each device
is observed (SNMP target or MQTT topics) and which profile (``profiles``)
decodes it; profiles live as separate YAML files in ``profiles_dir`` (data, not
code). ``load`` reads a file and reports every problem as ``FILE:LINE:
field.path: message`` (``document``); ``inventory`` and ``compile`` turn a
configuration into what the daemon runs. Import from the submodules.
"""
