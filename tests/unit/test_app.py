"""app.py: what a synth prints besides templates."""

from __future__ import annotations

import app as app_module
from shared import config
from tests import configs


def test_empty_notification_lists_are_warned_about():
    cfg = config.from_dict(configs.variant("default"))
    warnings = app_module.warnings(cfg)
    assert any(w.startswith("notifications.approval_emails is empty") for w in warnings)
    assert any(w.startswith("notifications.alarm_emails is empty") for w in warnings)


def test_no_warning_when_someone_is_notified():
    assert app_module.warnings(config.from_dict(configs.variant("realistic"))) == []


def test_feature_flags_are_cdks_only():
    flags = app_module.feature_flags()
    assert flags and all(key.startswith("@aws-cdk") for key in flags)
    assert config.CONTEXT_KEY not in flags
