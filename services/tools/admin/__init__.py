"""`rogatory-admin`: what admins and supervising courts read from the running services over
gRPC — a matter's timeline with trace ids, overdue matters, turnaround figures — as tables,
JSON or a self-contained HTML report. Pure formatting lives in `labels` and `views`;
`client` talks gRPC; `report` draws the charts; `cli` wires them to commands."""
