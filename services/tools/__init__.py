"""Tools that stand apart from the services: the `rogatory` command and `make run`'s launcher,
the demo, `rogatory-admin`, the agency simulators, development certificates, NATS
permissions and the container health probe. They may use the services, the contract, the
plumbing and the domain; nothing below imports them (pyproject.toml, [tool.importlinter])."""
