"""A run's metrics for monitoring CronJobs (docs/metrics.md): `run` counts what the run does and
exposes it through a private prometheus-client registry, `textfile` writes it for node-exporter's
textfile collector (`--metrics-file`), `pushgateway` pushes it (`--pushgateway`).

Imported only when one of those flags is given: a run without them never loads prometheus-client.
"""
