"""What the services share besides the plumbing: code about the wire contract
(protos/rogatory) that more than one service needs. It may use the plumbing and the domain,
never a service (the import-linter contracts in pyproject.toml)."""
