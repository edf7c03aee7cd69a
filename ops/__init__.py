"""``ddb-lake``: the operations command line (preflight, smoke, backfill, replay, rebuild); see docs/operations.md.

A tool users run, not code the stages share: what the smoke test covers lives in ``shared.smoke_targets``,
which the pipeline step and the smoke roles share with it.
"""
