"""The smoke test's probe in account B (see handler.py)."""
