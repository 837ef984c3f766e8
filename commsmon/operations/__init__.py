"""What people do — check in a device, declare or clear an outage, silence alerts:
persisted first, then applied to the core. The API, MQTT check-ins and the CLI
(through the API) all call :class:`~commsmon.operations.record.Operations`."""
