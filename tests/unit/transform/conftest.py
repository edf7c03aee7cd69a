"""Transform tests run with the default metrics namespace unless a test sets one."""

import pytest


@pytest.fixture(autouse=True)
def _default_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_NAMESPACE", raising=False)
