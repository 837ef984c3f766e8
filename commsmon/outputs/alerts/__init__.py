"""Alert delivery: receivers (webhooks, IM robots, Alertmanager) and the persistent outbox."""
