"""The tooling-account pipeline: source, synth recipe, reports, stage order, approval, pinned CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Template

from pipeline.approval import APPROVAL_STEP
from pipeline.stack import CONSUMER_STAGE, PRODUCER_STAGE

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def codepipeline(pipeline: Template) -> dict[str, Any]:
    found = pipeline.find_resources("AWS::CodePipeline::Pipeline")
    assert len(found) == 1
    return next(iter(found.values()))["Properties"]


@pytest.fixture(scope="module")
def stages(codepipeline) -> dict[str, list[dict[str, Any]]]:
    return {stage["Name"]: stage["Actions"] for stage in codepipeline["Stages"]}


def _build_spec(pipeline: Template, project_id: str) -> dict[str, Any]:
    project = pipeline.find_resources("AWS::CodeBuild::Project")[project_id]
    return json.loads(project["Properties"]["Source"]["BuildSpec"])


def _project_of(action: dict[str, Any]) -> str:
    return action["Configuration"]["ProjectName"]["Ref"]


def test_v2_pipeline_with_encrypted_artifacts(codepipeline, pipeline: Template):
    assert codepipeline["PipelineType"] == "V2"
    store = codepipeline["ArtifactStore"]
    assert store["EncryptionKey"]["Type"] == "KMS"
    key_id = store["EncryptionKey"]["Id"]["Fn::GetAtt"][0]
    assert pipeline.find_resources("AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True


def test_source_is_the_connection_on_the_configured_branch(stages, cfg):
    (source,) = stages["Source"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == cfg.source.connection_arn
    assert source["Configuration"]["FullRepositoryId"] == cfg.source.repository
    assert source["Configuration"]["BranchName"] == cfg.source.branch == "main"


def test_push_to_branch_triggers_the_pipeline(codepipeline, stages, cfg):
    (trigger,) = codepipeline["Triggers"]
    assert trigger["ProviderType"] == "CodeStarSourceConnection"
    git = trigger["GitConfiguration"]
    assert git["SourceActionName"] == stages["Source"][0]["Name"]
    assert git["Push"] == [{"Branches": {"Includes": [cfg.source.branch]}}]


def test_stage_order(codepipeline):
    names = [stage["Name"] for stage in codepipeline["Stages"]]
    assert names[:3] == ["Source", "Build", "UpdatePipeline"]
    assert names.index(CONSUMER_STAGE) < names.index(PRODUCER_STAGE)
    assert names[-2:] == [CONSUMER_STAGE, PRODUCER_STAGE]


def test_synth_runs_the_readme_commands_and_publishes_reports(stages, pipeline: Template, synthesized):
    (synth,) = stages["Build"]
    spec = _build_spec(pipeline, _project_of(synth))
    assert spec["phases"]["build"]["commands"] == ["make test", "make synth"]
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.12"}
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make synth" in readme
    assert spec["artifacts"]["base-directory"] == "cdk.out"
    groups = synthesized.pipeline_stack.reports.names
    reports = spec["reports"]
    by_name = {arn.rsplit("/", 1)[-1]: value for arn, value in reports.items()}
    assert by_name[groups["tests"]] == {"files": ["pytest.xml"], "base-directory": "reports", "file-format": "JUNITXML"}
    assert by_name[groups["nag"]] == {"files": ["nag/*.xml"], "base-directory": "reports", "file-format": "JUNITXML"}
    makefile = (ROOT / "Makefile").read_text()
    assert "--junitxml=reports/pytest.xml" in makefile and "--out reports/nag" in makefile


def test_synth_caches_what_makes_it_slow(stages, pipeline: Template):
    (synth,) = stages["Build"]
    spec = _build_spec(pipeline, _project_of(synth))
    paths = " ".join(spec["cache"]["paths"])
    assert ".cache/pip" in paths and ".cache/aws/jsii" in paths
    project = pipeline.find_resources("AWS::CodeBuild::Project")[_project_of(synth)]["Properties"]
    assert project["Cache"]["Type"] == "LOCAL"


def test_report_groups_exist_and_the_synth_role_can_write_them(stages, pipeline: Template, synthesized):
    groups = pipeline.find_resources("AWS::CodeBuild::ReportGroup")
    names = {g["Properties"]["Name"]: gid for gid, g in groups.items()}
    assert set(names) == set(synthesized.pipeline_stack.reports.names.values())
    (synth,) = stages["Build"]
    project = pipeline.find_resources("AWS::CodeBuild::Project")[_project_of(synth)]["Properties"]
    role_id = project["ServiceRole"]["Fn::GetAtt"][0]
    policies = pipeline.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    for group_id in names.values():
        granted = [
            s
            for s in statements
            if {"Fn::GetAtt": [group_id, "Arn"]}
            in (s["Resource"] if isinstance(s["Resource"], list) else [s["Resource"]])
        ]
        actions = {a for s in granted for a in s["Action"]}
        assert {"codebuild:CreateReport", "codebuild:UpdateReport", "codebuild:BatchPutTestCases"} <= actions
        assert not any(a == "codebuild:*" or a == "*" for a in actions)


def test_self_mutation_installs_the_pinned_cli(stages, pipeline: Template):
    (mutate,) = stages["UpdatePipeline"]
    spec = _build_spec(pipeline, _project_of(mutate))
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["aws-cdk"]
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{pinned}"]


def _run_orders(actions: list[dict[str, Any]]) -> dict[str, int]:
    return {a["Name"]: a["RunOrder"] for a in actions}


@pytest.mark.parametrize("stage", [CONSUMER_STAGE, PRODUCER_STAGE])
def test_nag_gate_runs_before_the_stage_deploys(stages, pipeline: Template, stage):
    orders = _run_orders(stages[stage])
    gate = f"CdkNagGate{stage}"
    deploys = [name for name, a in zip(orders, stages[stage], strict=True) if a["ActionTypeId"]["Category"] == "Deploy"]
    assert deploys and all(orders[gate] < orders[d] for d in deploys)
    gate_action = next(a for a in stages[stage] if a["Name"] == gate)
    spec = _build_spec(pipeline, _project_of(gate_action))
    assert (
        f"python3 -m pipeline.nag_report gate --assembly cdk.out --stage {stage}" in spec["phases"]["build"]["commands"]
    )


def test_approval_sits_between_consumer_and_producer_deployments(stages):
    assert not [a for a in stages[CONSUMER_STAGE] if a["ActionTypeId"]["Category"] == "Approval"]
    orders = _run_orders(stages[PRODUCER_STAGE])
    approvals = [a for a in stages[PRODUCER_STAGE] if a["ActionTypeId"]["Category"] == "Approval"]
    assert [a["Name"] for a in approvals] == [APPROVAL_STEP]
    deploys = [a["Name"] for a in stages[PRODUCER_STAGE] if a["ActionTypeId"]["Category"] == "Deploy"]
    assert deploys and all(orders[APPROVAL_STEP] < orders[d] for d in deploys)
    # The gate answers first: nobody is asked to approve what cannot deploy.
    assert orders[f"CdkNagGate{PRODUCER_STAGE}"] < orders[APPROVAL_STEP]


def test_deploy_actions_target_their_accounts(stages, cfg):
    def role_account(action: dict[str, Any]) -> str:
        # The action role CodePipeline assumes: the target account's CDK bootstrap deploy role.
        return json.dumps(action["RoleArn"]).split(":iam::")[1][:12]

    for stage, account in ((CONSUMER_STAGE, cfg.consumer.account), (PRODUCER_STAGE, cfg.producer.account)):
        deploys = [a for a in stages[stage] if a["ActionTypeId"]["Category"] == "Deploy"]
        assert deploys and {role_account(a) for a in deploys} == {account}


def test_approval_notifies_an_encrypted_topic(stages, pipeline: Template, cfg):
    approval = next(a for a in stages[PRODUCER_STAGE] if a["Name"] == APPROVAL_STEP)
    topic_id = approval["Configuration"]["NotificationArn"]["Ref"]
    topic = pipeline.find_resources("AWS::SNS::Topic")[topic_id]["Properties"]
    assert "KmsMasterKeyId" in topic
    assert approval["Configuration"]["ExternalEntityLink"].startswith("https://")
    assert cfg.producer.account in approval["Configuration"]["CustomData"]


def test_approver_policy_allows_answering_this_approval_only(pipeline: Template, cfg, synthesized):
    (policy,) = pipeline.find_resources("AWS::IAM::ManagedPolicy").values()
    statements = policy["Properties"]["PolicyDocument"]["Statement"]
    answer = next(s for s in statements if s["Action"] == "codepipeline:PutApprovalResult")
    name = synthesized.pipeline_stack.pipeline_name
    expected = (
        f"arn:aws:codepipeline:{cfg.tooling.region}:{cfg.tooling.account}:{name}/{PRODUCER_STAGE}/{APPROVAL_STEP}"
    )
    assert json.dumps(answer["Resource"]).replace('"', "") == expected or answer["Resource"] == expected
    assert all("*" not in json.dumps(s["Resource"]) for s in statements)
    # The approval text asks for a review of the reports: the approver can read them, and only them.
    reports = next(s for s in statements if s.get("Sid") == "ReadTheReportsToReview")
    assert sorted(reports["Resource"]) == sorted(synthesized.pipeline_stack.reports.arns)
    assert all(
        a.startswith("codebuild:BatchGet") or a.startswith(("codebuild:Describe", "codebuild:List"))
        for a in reports["Action"]
    )


def test_artifact_bucket_writes_server_access_logs(codepipeline, pipeline: Template):
    bucket_id = codepipeline["ArtifactStore"]["Location"]["Ref"]
    bucket = pipeline.find_resources("AWS::S3::Bucket")[bucket_id]["Properties"]
    logs_id = bucket["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    logs = pipeline.find_resources("AWS::S3::Bucket")[logs_id]["Properties"]
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }


def test_pipeline_targets_the_tooling_account(synthesized, cfg):
    stack = synthesized.pipeline_stack
    assert (stack.account, stack.region) == (cfg.tooling.account, cfg.tooling.region)
