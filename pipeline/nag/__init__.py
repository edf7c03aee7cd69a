"""cdk-nag results of a cloud assembly, per stage (standard library only; see pipeline/nag_report.py)."""
