"""The audit log: every event of the stream — so every transition of every case, matter,
notice, seizure, control and query — appended to a hash chain that shows any edit or
deletion (`rogatory audit-verify`)."""
