"""Transform tests run with the default metrics namespace unless a test sets one, and with cold caches."""

import pytest

from lambdas.transform import flatten, record


@pytest.fixture(autouse=True)
def _default_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("METRICS_NAMESPACE", raising=False)


@pytest.fixture(autouse=True)
def _cold_caches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every test starts with the transform's key and text caches empty, as a new Lambda container does: a name
    # cached by an earlier test would otherwise hide how this test's names are escaped (and mutation testing,
    # which runs many tests in one process, could never see a change to the escaping).
    for name in ("_TOP_KEYS", "_OBJECT_KEYS", "_NESTED_KEYS", "_CHILD_PREFIXES"):
        monkeypatch.setattr(flatten, name, {})
    monkeypatch.setattr(flatten, "_nested_key_count", 0)
    monkeypatch.setattr(record, "_SECOND_TEXT", {})
    monkeypatch.setattr(record, "_REPEATED_TEXT", {})
