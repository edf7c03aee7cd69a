"""Acknowledgments must explain themselves."""

from __future__ import annotations

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_sqs as sqs

from shared.nag import (
    GENERIC_REASONS,
    HIPAA,
    MIN_REASON_LENGTH,
    NIST,
    PACKS,
    PCI,
    REGULATORY,
    acknowledge,
    acknowledge_rule,
    in_packs,
    inline_policy_reason,
    reason_problem,
)

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


@pytest.mark.parametrize("rule_id", ["SQS3", "AwsSolution-SQS3", "HIPAA-LambdaDLQ", "Serverless LambdaDLQ", ""])
def test_rule_id_must_be_a_cdk_nag_id(rule_id):
    stack = Stack(App(), "S")
    with pytest.raises(ValueError, match="not a cdk-nag rule id"):
        acknowledge(sqs.Queue(stack, "Q"), rule_id, SPECIFIC)


@pytest.mark.parametrize(
    "rule_id",
    [
        "AwsSolutions-SQS3",
        "AwsSolutions-IAM5[Resource::*]",
        "HIPAA.Security-LambdaDLQ",
        "NIST.800.53.R5-IAMNoInlinePolicy",
        "PCI.DSS.321-S3DefaultEncryptionKMS",
        "Serverless-LambdaTracing",
    ],
)
def test_every_packs_rule_ids_are_accepted(rule_id):
    queue = sqs.Queue(Stack(App(), "S"), "Q")
    acknowledge(queue, rule_id, SPECIFIC)
    assert {"id": rule_id, "reason": SPECIFIC} in queue.node.default_child.get_metadata("cdk_nag")["rules_to_suppress"]


def test_one_reason_acknowledges_each_packs_id_separately():
    queue = sqs.Queue(Stack(App(), "S"), "Q")
    ids = in_packs("SQSQueueDLQ", HIPAA, NIST, PCI)
    acknowledge_rule(queue, SPECIFIC, *ids, ids[0])  # a repeated id is acknowledged once
    rules = queue.node.default_child.get_metadata("cdk_nag")["rules_to_suppress"]
    assert rules == [{"id": i, "reason": SPECIFIC} for i in ids]
    assert ids == ("HIPAA.Security-SQSQueueDLQ", "NIST.800.53.R5-SQSQueueDLQ", "PCI.DSS.321-SQSQueueDLQ")


def test_one_reason_for_several_packs_is_checked_once_and_needs_an_id():
    queue = sqs.Queue(Stack(App(), "S"), "Q")
    with pytest.raises(ValueError, match="stock phrase"):
        acknowledge_rule(queue, "false positive", *in_packs("SQSQueueDLQ", *REGULATORY))
    with pytest.raises(ValueError, match="at least one rule id"):
        acknowledge_rule(queue, SPECIFIC)
    assert queue.node.default_child.get_metadata("cdk_nag") is None


def test_in_packs_refuses_unknown_packs():
    with pytest.raises(ValueError, match="must be some of"):
        in_packs("LambdaDLQ", "HIPAA")
    with pytest.raises(ValueError, match="must be some of"):
        in_packs("LambdaDLQ")


def test_inline_policy_reason_names_the_role_and_is_specific():
    reason = inline_policy_reason("The transform role")
    assert reason.startswith("The transform role") and reason_problem(reason) is None


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
    monkeypatch.setattr(nag, "register", lambda a, packs: calls.append((a, tuple(packs))))
    context = json.loads((Path(__file__).resolve().parents[2] / "cdk.json").read_text())["context"]
    app = App(context={**context, "sandbox_account": "444455556666"})
    cfg = app_module.build(app)
    assert calls == [(app, cfg.compliance.packs)]


def test_every_configurable_pack_has_a_cdk_nag_class_and_all_run_by_default():
    import inspect

    from shared.config import NAG_PACKS
    from shared.nag import register

    assert tuple(PACKS) == NAG_PACKS
    assert inspect.signature(register).parameters["packs"].default == NAG_PACKS
