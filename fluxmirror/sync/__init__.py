"""The sync engine: plan entries, run jobs, build the report."""
