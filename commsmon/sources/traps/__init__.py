"""SNMP traps and informs as a source: ``senders`` says which device a trap is from,
``receiver`` listens (pysnmp's notification receiver) and applies what the device's
profile says the trap means."""
