"""``ddb-lake``: the operations command line (preflight, smoke, backfill, replay); see docs/operations.md.

Importing this package is cheap: ``targets`` (shared with the CDK constructs) needs neither boto3 nor CDK.
"""
