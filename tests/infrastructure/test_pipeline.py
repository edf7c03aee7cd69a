"""The tooling-account pipeline: source, synth recipe, reports, stage order, approval, pinned tools, least
privilege of the generated roles, cross-region support stacks. Expectations come from the configuration under test
(``cfg``) and from package.json (the pins developers use), never from cdk.json."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from aws_cdk.assertions import Template

from pipeline.approval import APPROVAL_STEP
from pipeline.nag_acks import flatten_reference
from pipeline.stack import (
    CDK_ASSETS_TOOL_DIR,
    CONSUMER_STAGE,
    PERMISSIONS_CHECK,
    PIPELINE_CHANGES,
    PRODUCER_STAGE,
)
from pipeline.toolchain import cdk_assets_version, cdk_cli_version, node_runtime_version
from shared.nag import PACKS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def codepipeline(pipeline: Template) -> dict[str, Any]:
    found = pipeline.find_resources("AWS::CodePipeline::Pipeline")
    assert len(found) == 1
    return next(iter(found.values()))["Properties"]


@pytest.fixture(scope="module")
def stages(codepipeline) -> dict[str, list[dict[str, Any]]]:
    return {stage["Name"]: stage["Actions"] for stage in codepipeline["Stages"]}


def _joined(value: Any) -> str:
    """A buildspec as text: a plain string, or an Fn::Join whose references (e.g. a Lambda's name) become 'REF'."""
    if isinstance(value, str):
        return value
    return "".join(part if isinstance(part, str) else "REF" for part in value["Fn::Join"][1])


def _build_spec(pipeline: Template, project_id: str) -> dict[str, Any]:
    project = pipeline.find_resources("AWS::CodeBuild::Project")[project_id]
    return json.loads(_joined(project["Properties"]["Source"]["BuildSpec"]))


def _project_of(action: dict[str, Any]) -> str:
    return action["Configuration"]["ProjectName"]["Ref"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _role_statements(template: Template, role_id: str) -> list[dict[str, Any]]:
    """Every statement of every inline policy attached to the role."""
    return [
        statement
        for policy in template.find_resources("AWS::IAM::Policy").values()
        if {"Ref": role_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
    ]


def _artifact_stores(codepipeline: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Artifact store per region: one ``ArtifactStore``, or ``ArtifactStores`` when a stage is in another region."""
    if "ArtifactStore" in codepipeline:
        return {"": codepipeline["ArtifactStore"]}
    return {s["Region"]: s["ArtifactStore"] for s in codepipeline["ArtifactStores"]}


def _support_regions(cfg) -> set[str]:
    """Regions where CodePipeline needs a support stack (replication bucket and key): every stage region other than
    the pipeline's."""
    return {cfg.consumer.region, cfg.producer.region} - {cfg.tooling.region}


def test_v2_pipeline_with_encrypted_artifacts(codepipeline, pipeline: Template, cfg):
    assert codepipeline["PipelineType"] == "V2"
    stores = _artifact_stores(codepipeline)
    assert set(stores) == ({""} if not _support_regions(cfg) else _support_regions(cfg) | {cfg.tooling.region})
    assert all(store["EncryptionKey"]["Type"] == "KMS" for store in stores.values())
    home = stores.get("") or stores[cfg.tooling.region]
    key_id = home["EncryptionKey"]["Id"]["Fn::GetAtt"][0]
    assert pipeline.find_resources("AWS::KMS::Key")[key_id]["Properties"]["EnableKeyRotation"] is True


def test_source_is_the_connection_on_the_configured_branch(stages, cfg):
    (source,) = stages["Source"]
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"]["ConnectionArn"] == cfg.source.connection_arn
    assert source["Configuration"]["FullRepositoryId"] == cfg.source.repository
    assert source["Configuration"]["BranchName"] == cfg.source.branch


def test_source_action_role_may_use_the_connection_under_its_own_prefix(stages, pipeline: Template, cfg):
    # IAM matches an action's service prefix to the resource's: a codeconnections ARN needs
    # codeconnections:UseConnection, a codestar-connections ARN codestar-connections:UseConnection
    # (https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html).
    (source,) = stages["Source"]
    role_id = source["RoleArn"]["Fn::GetAtt"][0]
    statements = _role_statements(pipeline, role_id)
    use = [s for s in statements if any(a.endswith(":UseConnection") for a in _as_list(s["Action"]))]
    matching = f"{cfg.source.connection_service}:UseConnection"
    assert any(
        s["Effect"] == "Allow"
        and matching in _as_list(s["Action"])
        and _as_list(s["Resource"]) == [cfg.source.connection_arn]
        for s in use
    ), use
    # Exactly the configured connection: no other connection, no wildcard.
    assert all(_as_list(s["Resource"]) == [cfg.source.connection_arn] for s in use)


def test_push_to_branch_triggers_the_pipeline(codepipeline, stages, cfg):
    (trigger,) = codepipeline["Triggers"]
    assert trigger["ProviderType"] == "CodeStarSourceConnection"
    git = trigger["GitConfiguration"]
    assert git["SourceActionName"] == stages["Source"][0]["Name"]
    assert git["Push"] == [{"Branches": {"Includes": [cfg.source.branch]}}]


def test_stage_order(codepipeline):
    names = [stage["Name"] for stage in codepipeline["Stages"]]
    # The pipeline's own permission changes are confirmed right before it mutates itself.
    assert names[:4] == ["Source", "Build", PIPELINE_CHANGES, "UpdatePipeline"]
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


def _dev_dependency(name: str) -> str:
    return json.loads((ROOT / "package.json").read_text())["devDependencies"][name]


def test_self_mutation_installs_the_pinned_cli_on_the_pinned_node(stages, pipeline: Template):
    (mutate,) = stages["UpdatePipeline"]
    spec = _build_spec(pipeline, _project_of(mutate))
    pinned = _dev_dependency("aws-cdk")
    assert cdk_cli_version() == pinned
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{pinned}"]
    assert spec["phases"]["install"]["runtime-versions"] == {"nodejs": _dev_dependency("node").split(".")[0]}


def _asset_projects(stages: dict[str, list[dict[str, Any]]]) -> list[str]:
    return [_project_of(action) for action in stages.get("Assets", [])]


def _all_build_specs(pipeline: Template, outdir: Path) -> dict[str, dict[str, Any]]:
    """Every buildspec the pipeline's CodeBuild projects run: inline ones, and the buildspec-*.yaml files CDK
    Pipelines writes into the cloud assembly (the asset-publishing project's, named by its Source.BuildSpec)."""
    specs: dict[str, dict[str, Any]] = {}
    for project_id, project in pipeline.find_resources("AWS::CodeBuild::Project").items():
        text = _joined(project["Properties"]["Source"]["BuildSpec"])
        parsed = yaml.safe_load(text) if text.lstrip().startswith("{") else None
        if parsed is None:
            assert (outdir / text).is_file(), f"{project_id} runs {text}, which is not in the cloud assembly"
            continue
        specs[project_id] = parsed
    for path in sorted(outdir.glob("buildspec-*.yaml")):
        specs[path.name] = yaml.safe_load(path.read_text())
    return specs


_EXACT = re.compile(r"^\d+\.\d+\.\d+$")
_PIP_TAKES_ARGUMENT = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable", "-i", "--index-url"}


def unpinned(command: str) -> list[str]:
    """What ``command`` installs without an exact version: anything '@latest', npm packages without '@x.y.z',
    pip requirements without '=='."""
    problems = [command] if "@latest" in command else []
    for part in re.split(r"&&|\|\||;|\|", command):
        words = shlex.split(part, posix=True) if part.strip() else []
        for i, word in enumerate(words[:-1]):
            following = words[i + 1 :]
            if word == "npm" and following[0] in ("install", "i", "add"):
                packages = [w for w in following[1:] if not w.startswith("-")]
                # 'name@1.2.3' or '@scope/name@1.2.3'; a bare name, a range or a tag is not a pin.
                problems += [p for p in packages if not _EXACT.match(p.rpartition("@")[2])]
            if word in ("pip", "pip3") and following[0] == "install":
                args = following[1:]
                skip = {j + 1 for j, a in enumerate(args) if a in _PIP_TAKES_ARGUMENT}
                problems += [a for j, a in enumerate(args) if j not in skip and not a.startswith("-") and "==" not in a]
    return problems


@pytest.mark.parametrize(
    ("command", "flagged"),
    [
        ("npm install -g cdk-assets@latest", True),
        ("npm install -g aws-cdk", True),
        ("npm i -g aws-cdk@^2.1148.1", True),
        ("npm install -g @scope/tool", True),
        ("npm install -g @scope/tool@1.2.3", False),
        ("npm install -g aws-cdk@2.1148.1", False),
        ("cd x && npm install --global cdk-assets@3.3.1 && cdk-assets ls", False),
        ("pip install boto3", True),
        ("python3 -m pip install --upgrade pip", True),
        ("pip install -r requirements.txt boto3==1.35.0", False),
        ("npx cdk-assets@latest publish", True),
        ("make synth", False),
    ],
)
def test_the_install_scanner_flags_unpinned_installs(command, flagged):
    assert bool(unpinned(command)) is flagged


def test_no_buildspec_installs_an_unpinned_tool_and_all_pin_their_runtimes(pipeline: Template, synthesized):
    specs = _all_build_specs(pipeline, synthesized.outdir)
    # Synth, self-mutation, the two cdk-nag gates and asset publishing, at least.
    assert len(specs) >= 5, sorted(specs)
    problems = {}
    for name, spec in specs.items():
        commands = [c for phase in spec.get("phases", {}).values() for c in phase.get("commands", [])]
        found = [p for c in commands for p in unpinned(c)]
        runtimes = spec.get("phases", {}).get("install", {}).get("runtime-versions") or {}
        if not runtimes:
            found.append("no phases.install.runtime-versions")
        found += [f"runtime {k}: {v}" for k, v in runtimes.items() if not re.fullmatch(r"\d+(\.\d+)*", str(v))]
        if found:
            problems[name] = found
    assert problems == {}


def test_asset_publishing_installs_the_pinned_cdk_assets_on_the_pinned_node(stages, pipeline: Template, synthesized):
    (project_id,) = _asset_projects(stages)
    name = pipeline.find_resources("AWS::CodeBuild::Project")[project_id]["Properties"]["Source"]["BuildSpec"]
    spec = yaml.safe_load((synthesized.outdir / name).read_text())
    assert cdk_assets_version() == _dev_dependency("cdk-assets")
    # `npm ci` of the committed lock file that CDK's asset step finds in the cloud assembly: every transitive
    # dependency pinned by integrity, none floating; then that cdk-assets, not a global one.
    assert spec["phases"]["install"]["commands"] == [
        f"npm ci --prefix {CDK_ASSETS_TOOL_DIR} --ignore-scripts --no-audit --no-fund"
    ]
    assert spec["phases"]["install"]["runtime-versions"] == {"nodejs": node_runtime_version()}
    build = spec["phases"]["build"]["commands"]
    assert build and all(c.startswith(f"{CDK_ASSETS_TOOL_DIR}/node_modules/.bin/cdk-assets --path ") for c in build)
    shipped = synthesized.outdir / CDK_ASSETS_TOOL_DIR
    for name in ("package.json", "package-lock.json"):
        assert (shipped / name).read_text() == (ROOT / "pipeline" / "cdk_assets" / name).read_text()
    lock = json.loads((shipped / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/cdk-assets"]["version"] == _dev_dependency("cdk-assets")
    # Every package in the lock is pinned by version and integrity (bundled ones ship inside their parent).
    unpinned = [
        name
        for name, package in lock["packages"].items()
        if name and not package.get("inBundle") and not (package.get("version") and package.get("integrity"))
    ]
    assert unpinned == []


def test_the_pinned_cdk_assets_reads_every_manifest_the_pipeline_publishes(stages, pipeline: Template, synthesized):
    # cdk-assets refuses manifests newer than its schema (4.7.3 reads up to 54.x; this app writes 55.0.0): run the
    # version package.json pins (installed by `npm ci`) on exactly the manifests the asset buildspec names.
    (project_id,) = _asset_projects(stages)
    name = pipeline.find_resources("AWS::CodeBuild::Project")[project_id]["Properties"]["Source"]["BuildSpec"]
    spec = yaml.safe_load((synthesized.outdir / name).read_text())
    manifests = sorted({m for c in spec["phases"]["build"]["commands"] for m in re.findall(r'--path "([^"]+)"', c)})
    assert manifests
    cdk_assets = ROOT / "node_modules" / ".bin" / "cdk-assets"
    for manifest in manifests:
        result = subprocess.run(
            [str(cdk_assets), "--path", manifest, "ls"],
            cwd=synthesized.outdir,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr


_REPORT_ACTIONS = {
    "codebuild:BatchPutCodeCoverages",
    "codebuild:BatchPutTestCases",
    "codebuild:CreateReport",
    "codebuild:CreateReportGroup",
    "codebuild:UpdateReport",
}


def test_asset_publishing_role_reaches_only_its_own_projects(stages, pipeline: Template):
    # A compromised asset job must not be able to start (or stop, or read) the self-mutation project, whose role
    # can assume the deploy roles: its CodeBuild actions name only the asset projects (and, for the report
    # actions, the report groups CodeBuild names '<project>-*' after them), its logs only their log groups.
    assets = _asset_projects(stages)
    projects = pipeline.find_resources("AWS::CodeBuild::Project")
    (role_id,) = {projects[p]["Properties"]["ServiceRole"]["Fn::GetAtt"][0] for p in assets}
    own = "|".join(re.escape(p) for p in assets)
    allowed = {
        "build": rf"<({own})\.Arn>",
        "report": rf"arn:[^:]+:codebuild:[^:]+:\d{{12}}:report-group/<({own})>-\*",
        "logs": rf"arn:[^:]+:logs:[^:]+:\d{{12}}:log-group:/aws/codebuild/<({own})>(:\*)?",
    }
    statements = _role_statements(pipeline, role_id)
    strays = []
    for s in statements:
        actions = set(_as_list(s["Action"]))
        kinds = (
            (["report"] if actions <= _REPORT_ACTIONS else ["build"])
            if any(a.startswith("codebuild:") for a in actions)
            else (["logs"] if any(a.startswith("logs:") for a in actions) else [])
        )
        for kind in kinds:
            strays += [
                (sorted(actions), r)
                for r in map(flatten_reference, _as_list(s["Resource"]))
                if not re.fullmatch(allowed[kind], r)
            ]
    assert strays == []
    starts = [s for s in statements if "codebuild:StartBuild" in _as_list(s["Action"])]
    assert starts and all(_as_list(s["Resource"]) == [{"Fn::GetAtt": [p, "Arn"]} for p in assets] for s in starts)
    (mutate,) = stages["UpdatePipeline"]
    assert _project_of(mutate) not in json.dumps(statements)


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
    orders = _run_orders(stages[PRODUCER_STAGE])
    approvals = [a for a in stages[PRODUCER_STAGE] if a["ActionTypeId"]["Category"] == "Approval"]
    assert [a["Name"] for a in approvals] == [f"{PERMISSIONS_CHECK}.Confirm", APPROVAL_STEP]
    deploys = [a["Name"] for a in stages[PRODUCER_STAGE] if a["ActionTypeId"]["Category"] == "Deploy"]
    assert deploys and all(orders[APPROVAL_STEP] < orders[d] for d in deploys)
    # The gate answers first: nobody is asked to approve what cannot deploy.
    assert orders[f"CdkNagGate{PRODUCER_STAGE}"] < orders[f"{PERMISSIONS_CHECK}.Check"] < orders[APPROVAL_STEP]


@pytest.mark.parametrize("stage", [CONSUMER_STAGE, PRODUCER_STAGE])
def test_permission_broadening_stops_each_stage_for_a_human(stages, pipeline: Template, stage):
    # CDK Pipelines' ConfirmPermissionsBroadening: `cdk diff --security-only --fail` of exactly this stage's stacks,
    # then a manual approval that its Lambda answers only when the diff finds no IAM/security-group broadening.
    orders = _run_orders(stages[stage])
    check = next(a for a in stages[stage] if a["Name"] == f"{PERMISSIONS_CHECK}.Check")
    confirm = next(a for a in stages[stage] if a["Name"] == f"{PERMISSIONS_CHECK}.Confirm")
    assert confirm["ActionTypeId"]["Category"] == "Approval"
    deploys = [a["Name"] for a in stages[stage] if a["ActionTypeId"]["Category"] == "Deploy"]
    assert orders[f"CdkNagGate{stage}"] < orders[check["Name"]] < orders[confirm["Name"]]
    assert all(orders[confirm["Name"]] < orders[d] for d in deploys)
    env = {e["name"]: e["value"] for e in json.loads(_joined(check["Configuration"]["EnvironmentVariables"]))}
    assert env["STAGE_PATH"] == f"Pipeline/{stage}" and env["ACTION_NAME"] == confirm["Name"]
    assert env["NOTIFICATION_ARN"] == "REF"  # the approval topic (checked below)
    topic = json.dumps(check["Configuration"]["EnvironmentVariables"])
    approval = next(a for a in stages[PRODUCER_STAGE] if a["Name"] == APPROVAL_STEP)
    assert json.dumps(approval["Configuration"]["NotificationArn"]) in topic
    spec = _build_spec(pipeline, _project_of(check))
    commands = spec["phases"]["build"]["commands"]
    assert any('cdk diff -a . --security-only --fail ${STACKS:-"$STAGE_PATH/*"};' in c for c in commands)
    # The CLI package.json pins (npm's latest, 3.x, cannot read this assembly), on the pinned Node.
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{_dev_dependency('aws-cdk')}"]
    assert spec["phases"]["install"]["runtime-versions"] == {"nodejs": node_runtime_version()}
    assert not [c for c in commands if "npm install" in c]


def test_pipeline_changes_are_checked_before_self_mutation(stages, pipeline: Template, synthesized):
    # The same check for the pipeline stack and its cross-region support stacks (whatever self-mutation deploys),
    # with the same auto-approval and notification, in a stage right before UpdatePipeline.
    check, confirm = stages[PIPELINE_CHANGES]
    assert (check["Name"], check["RunOrder"]) == (f"{PERMISSIONS_CHECK}.Check", 1)
    assert (confirm["Name"], confirm["RunOrder"], confirm["ActionTypeId"]["Category"]) == (
        f"{PERMISSIONS_CHECK}.Confirm",
        2,
        "Approval",
    )
    (mutate,) = stages["UpdatePipeline"]
    assert check["InputArtifacts"] == mutate["InputArtifacts"]  # the cloud assembly self-mutation deploys
    stack = synthesized.pipeline_stack
    supports = sorted(s.stack.node.path for s in _supports(synthesized).values())
    env = {e["name"]: e["value"] for e in json.loads(_joined(check["Configuration"]["EnvironmentVariables"]))}
    assert env["STACKS"] == " ".join([stack.node.path, *supports])
    assert (env["STAGE_NAME"], env["ACTION_NAME"]) == (PIPELINE_CHANGES, confirm["Name"])
    assert confirm["Configuration"]["CustomData"] == f"#{{{check['Namespace']}.MESSAGE}}"
    # The stages' checks use the same project; its command diffs STACKS when set, else the stage's stacks.
    consumer_check = next(a for a in stages[CONSUMER_STAGE] if a["Name"] == f"{PERMISSIONS_CHECK}.Check")
    assert _project_of(check) == _project_of(consumer_check)
    commands = _build_spec(pipeline, _project_of(check))["phases"]["build"]["commands"]
    assert any('cdk diff -a . --security-only --fail ${STACKS:-"$STAGE_PATH/*"};' in c for c in commands)


def test_auto_approve_answers_only_this_pipeline(pipeline: Template, codepipeline):
    # The Lambda approves a confirmation only on pipelines tagged SECURITY_CHECK=ALLOW_APPROVE: this one.
    assert {"Key": "SECURITY_CHECK", "Value": "ALLOW_APPROVE"} in codepipeline["Tags"]
    statements = [
        s
        for p in pipeline.find_resources("AWS::IAM::Policy").values()
        for s in p["Properties"]["PolicyDocument"]["Statement"]
        if "codepipeline:PutApprovalResult" in _as_list(s["Action"])
    ]
    assert statements
    for s in statements:
        assert s["Condition"] == {"StringEquals": {"aws:ResourceTag/SECURITY_CHECK": "ALLOW_APPROVE"}}


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
    arn = f"arn:aws:codepipeline:{cfg.tooling.region}:{cfg.tooling.account}:{name}"
    # The platform approval and each stage's permissions-broadening confirmation; no other action.
    assert sorted(answer["Resource"]) == sorted(
        [
            f"{arn}/{PRODUCER_STAGE}/{APPROVAL_STEP}",
            *(
                f"{arn}/{stage}/{PERMISSIONS_CHECK}.Confirm"
                for stage in (PIPELINE_CHANGES, CONSUMER_STAGE, PRODUCER_STAGE)
            ),
        ]
    )
    diff = next(s for s in statements if s.get("Sid") == "ReadThePermissionsDiff")
    assert sorted(diff["Action"]) == ["codebuild:BatchGetBuilds", "codebuild:ListBuildsForProject"]
    assert diff["Resource"] == {
        "Fn::GetAtt": [
            synthesized.pipeline_stack.get_logical_id(synthesized.pipeline_stack.security_check.node.default_child),
            "Arn",
        ]
    }
    log = next(s for s in statements if s.get("Sid") == "ReadThePermissionsDiffLog")
    assert log["Action"] == "logs:GetLogEvents"
    # The one unscoped statement: the console's pipeline list (ListPipelines has no resource-level scoping).
    unscoped = [
        s for s in statements if "*" in json.dumps(s["Resource"]) and s.get("Sid") != "ReadThePermissionsDiffLog"
    ]
    assert [(s["Action"], s["Resource"]) for s in unscoped] == [("codepipeline:ListPipelines", "*")]
    see = next(s for s in statements if s.get("Sid") == "SeeThePipeline")
    assert "codepipeline:ListPipelineExecutions" in see["Action"]
    # The approval text asks for a review of the reports: the approver can read them, and only them.
    reports = next(s for s in statements if s.get("Sid") == "ReadTheReportsToReview")
    assert sorted(reports["Resource"]) == sorted(synthesized.pipeline_stack.reports.arns)
    assert all(
        a.startswith("codebuild:BatchGet") or a.startswith(("codebuild:Describe", "codebuild:List"))
        for a in reports["Action"]
    )


def _logs_to_an_sse_s3_bucket(template: Template, bucket_id: str) -> None:
    buckets = template.find_resources("AWS::S3::Bucket")
    logs_id = buckets[bucket_id]["Properties"]["LoggingConfiguration"]["DestinationBucketName"]["Ref"]
    logs = buckets[logs_id]["Properties"]
    # S3 server access log delivery cannot write to SSE-KMS buckets.
    assert logs["BucketEncryption"]["ServerSideEncryptionConfiguration"][0]["ServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "AES256"
    }
    policies = [
        p["Properties"]["PolicyDocument"]["Statement"]
        for p in template.find_resources("AWS::S3::BucketPolicy").values()
        if p["Properties"]["Bucket"] == {"Ref": logs_id}
    ]
    assert any(
        s["Effect"] == "Allow" and s.get("Principal") == {"Service": "logging.s3.amazonaws.com"}
        for statements in policies
        for s in statements
    )


def test_artifact_bucket_writes_server_access_logs(codepipeline, pipeline: Template, cfg):
    stores = _artifact_stores(codepipeline)
    home = stores.get("") or stores[cfg.tooling.region]
    _logs_to_an_sse_s3_bucket(pipeline, home["Location"]["Ref"])


def _supports(synthesized) -> dict[str, Any]:
    """CodePipeline's cross-region support per region; after synthesis it also lists the pipeline's own region
    (its artifact bucket, in the pipeline stack), which is no support stack."""
    supports = synthesized.pipeline_stack.pipeline.pipeline.cross_region_support
    return {region: s for region, s in supports.items() if region != synthesized.cfg.tooling.region}


def test_cross_region_support_stacks_log_their_replication_buckets(synthesized, cfg):
    supports = _supports(synthesized)
    assert set(supports) == _support_regions(cfg)
    for region, support in supports.items():
        assert (support.stack.account, support.stack.region) == (cfg.tooling.account, region)
        template = Template.from_json(
            json.loads((synthesized.outdir / f"{support.stack.artifact_id}.template.json").read_text())
        )
        _logs_to_an_sse_s3_bucket(template, support.stack.get_logical_id(support.replication_bucket.node.default_child))


def test_cross_region_support_stacks_pass_every_registered_pack(synthesized, cfg):
    # The support stacks are children of the app, not of the pipeline stack: check them on their own.
    for support in _supports(synthesized).values():
        for pack in cfg.compliance.packs:
            report = PACKS[pack]().validate_scope(support.stack)
            assert [v.rule_name for v in report.violations] == [], (pack, support.stack.stack_name)


def test_pipeline_targets_the_tooling_account(synthesized, cfg):
    stack = synthesized.pipeline_stack
    assert (stack.account, stack.region) == (cfg.tooling.account, cfg.tooling.region)


def test_cross_region_replication_buckets_are_retained_except_on_create(synthesized, cfg):
    # CodePipeline names the bucket: a failed first create deletes it (the retry can create it again), a later
    # deletion keeps it.
    for support in _supports(synthesized).values():
        template = json.loads((synthesized.outdir / f"{support.stack.artifact_id}.template.json").read_text())
        bucket_id = support.stack.get_logical_id(support.replication_bucket.node.default_child)
        bucket = template["Resources"][bucket_id]
        assert (bucket["DeletionPolicy"], bucket["UpdateReplacePolicy"]) == ("RetainExceptOnCreate", "Retain")


def test_pipeline_role_uses_kms_keys_it_names(synthesized, pipeline: Template, cfg):
    # No KMS grant on '*': the artifact key by ARN; each support region's replication key by its alias, within that
    # region and the tooling account.
    stack = synthesized.pipeline_stack
    role_id = stack.get_logical_id(stack.pipeline.pipeline.role.node.default_child)
    kms = [s for s in _role_statements(pipeline, role_id) if any(a.startswith("kms:") for a in _as_list(s["Action"]))]
    assert kms
    assert all("*" not in _as_list(s["Resource"]) for s in kms)
    supports = _supports(synthesized)
    by_region = {}
    for s in kms:
        for resource in _as_list(s["Resource"]):
            if isinstance(resource, str) and resource.endswith(":key/*"):
                by_region[resource.split(":")[3]] = s
    assert set(by_region) == set(supports)
    for region, support in supports.items():
        statement = by_region[region]
        assert statement["Resource"] == f"arn:aws:kms:{region}:{cfg.tooling.account}:key/*"
        alias = stack.resolve(support.replication_bucket.encryption_key.alias_name)
        assert statement["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}}
        assert alias.startswith("alias/")


def test_cdk_assets_lock_must_pin_the_version_package_json_pins(tmp_path):
    from pipeline.toolchain import CDK_ASSETS_LOCK_DIR, PACKAGE_JSON, cdk_assets_lock

    assert cdk_assets_lock() == CDK_ASSETS_LOCK_DIR
    lock_dir = tmp_path / "lock"
    lock_dir.mkdir()
    (lock_dir / "package.json").write_text(json.dumps({"dependencies": {"cdk-assets": "3.3.0"}}))
    (lock_dir / "package-lock.json").write_text(
        json.dumps({"packages": {"node_modules/cdk-assets": {"version": "3.3.0"}}})
    )
    with pytest.raises(ValueError, match=r"cdk-assets = '3\.3\.0' \(package\.json\), '3\.3\.0' \(package-lock\.json\)"):
        cdk_assets_lock(PACKAGE_JSON, lock_dir)
