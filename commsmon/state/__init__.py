"""What the daemon keeps across restarts, in SQLite files under the state directory.

``db`` is one database file that falls back to memory while its disk refuses
writes, and the locked base every file builds on; ``store`` keeps what
operators said (check-ins, declared outages), ``outbox`` the notifications
before they are sent and the alerting core's state.
"""
