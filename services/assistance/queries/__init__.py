"""Property queries (网络查控) in the assistance service: fan-out over NATS, replies, aggregation, timeouts."""
