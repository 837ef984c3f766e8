"""The command line: ``commands`` (``commsmon run``, ``check-config``, ``status``
...), ``client`` (the HTTP API client ``status`` uses) and ``table`` (the status
table printed on a terminal)."""
