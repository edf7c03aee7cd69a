"""Acknowledgments must explain themselves."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs

from shared.nag import GENERIC_REASONS, MIN_REASON_LENGTH, acknowledge, reason_problem

SPECIFIC = "The queue is a dead-letter queue for the test; it receives only failed messages of one consumer."


@pytest.mark.parametrize(
    "reason", ["", "   ", "N/A", "false positive", "By design.", "ok", "x" * (MIN_REASON_LENGTH - 1)]
)
def test_empty_short_or_stock_reasons_are_refused(reason):
    assert reason_problem(reason) is not None
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="AwsSolutions-SQS3"):
        acknowledge(sqs.Queue(stack, "Q"), "AwsSolutions-SQS3", reason)


def test_every_stock_phrase_is_refused_whatever_its_case():
    for phrase in GENERIC_REASONS:
        assert reason_problem(phrase.upper() + ".") is not None


def test_rule_id_must_be_an_awssolutions_id():
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="not an AwsSolutions rule id"):
        acknowledge(sqs.Queue(stack, "Q"), "SQS3", SPECIFIC)


def test_specific_reason_is_recorded_in_template_metadata():
    stack = Stack(App(), "S")
    queue = sqs.Queue(stack, "Q")
    acknowledge(queue, "AwsSolutions-SQS3", SPECIFIC)
    acknowledge(queue, "AwsSolutions-SQS3", SPECIFIC)  # idempotent
    metadata = queue.node.default_child.get_metadata("cdk_nag")
    assert metadata == {"rules_to_suppress": [{"id": "AwsSolutions-SQS3", "reason": SPECIFIC}]}


def test_checks_are_registered_once_per_app():
    from shared.nag import register

    app = App()
    register(app)
    with pytest.raises(RuntimeError, match="already registered"):
        register(app)


def test_the_app_registers_the_checks_exactly_once(monkeypatch):
    import json
    from pathlib import Path

    import app as app_module
    from shared import nag

    calls = []
    monkeypatch.setattr(nag, "register", lambda a: calls.append(a))
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    built = app_module.build(App(context={**context, "sandbox_account": "444455556666"}))
    assert calls == [built]
