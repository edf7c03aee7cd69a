"""pipeline.nag_report against assemblies synthesized here with cdk-nag 3 (no hand-written fixtures).

One module-scoped synth builds three apps in a tmp dir:
  * "nag": AwsSolutionsChecks on the App; stack Pipeline (one acknowledged finding), stage Consumer
    (two violations, one ack cdk-nag filters itself, one namespaced ack CDK core filters) and a clean
    stage Producer;
  * "nonag": the clean stage without cdk-nag, and "stageonly": cdk-nag registered on that stage only
    (CDK never runs it) - the cases that must not pass the gate.
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from aws_cdk import Acknowledgment, App, Stack, Stage, Validations
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from cdk_nag import AwsSolutionsChecks

from pipeline import nag_report

REPO = Path(__file__).resolve().parents[2]
S1_REASON = "Access logs of this toy bucket are not needed."
IAM5_REASON = "Read-only wildcard is scoped by the bucket policy."
TOP_REASON = "Top-level bucket logs elsewhere."
CONSUMER_ASSEMBLY = "assembly-Pipeline-Consumer"


class ConsumerStage(Stage):
    def __init__(self, scope: Stack, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack(self, "Data")
        bucket = s3.Bucket(stack, "Bucket")  # S1 (acknowledged) and S10 (violation)
        Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=S1_REASON))
        user = iam.User(stack, "Reader")
        user.add_to_policy(iam.PolicyStatement(actions=["s3:Get*"], resources=["*"]))
        # Namespaced id: CDK core (not cdk-nag) suppresses it, so it lands in the report.
        Validations.of(user).acknowledge(
            Acknowledgment(id="AwsSolutions::AwsSolutions-IAM5[Resource::*]", reason=IAM5_REASON)
        )


class ProducerStage(Stage):
    def __init__(self, scope: Stack, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        stack = Stack(self, "Store")
        s3.Bucket(stack, "Bucket", enforce_ssl=True, server_access_logs_prefix="logs/")


def _synth(outdir: Path, *, nag_on: str) -> None:
    # analytics_reporting mirrors the CDK CLI default (it writes AWS::CDK::Metadata).
    app = App(outdir=str(outdir), analytics_reporting=True)
    pipeline = Stack(app, "Pipeline")
    if nag_on == "app":
        top = s3.Bucket(pipeline, "TopBucket", enforce_ssl=True)
        Validations.of(top).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=TOP_REASON))
        ConsumerStage(pipeline, "Consumer")
    else:
        iam.CfnGroup(pipeline, "Group")
    producer = ProducerStage(pipeline, "Producer")
    # Registered last, like app.py does.
    if nag_on in ("app", "stage"):
        scope = app if nag_on == "app" else producer
        Validations.of(scope).add_plugins(AwsSolutionsChecks(scope, write_suppressions_to_cloud_formation=True))
    app.synth()


@pytest.fixture(scope="module")
def assemblies(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("nag")
    # Unacknowledged findings fail synth; jsii surfaces the JS ValidationFailed error as RuntimeError,
    # after the assembly and validation-report.json are written.
    with pytest.raises(RuntimeError, match="ValidationFailed"):
        _synth(base / "nag", nag_on="app")
    _synth(base / "nonag", nag_on="none")
    _synth(base / "stageonly", nag_on="stage")
    return {name: base / name for name in ("nag", "nonag", "stageonly")}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.nag_report", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


# ---------------------------------------------------------------- JUnit schema shape

SUITE_COUNTS = ("tests", "failures", "errors", "skipped")


def assert_junit_shape(root: ET.Element) -> None:
    """The subset of the JUnit XSD that CodeBuild, GitHub and Jenkins reporters read."""
    assert root.tag == "testsuites"
    assert set(root.attrib) <= {"name", "tests", "failures", "errors", "skipped", "time"}
    suites = list(root)
    assert suites and all(s.tag == "testsuite" for s in suites)
    for suite in suites:
        assert {"name", *SUITE_COUNTS} <= set(suite.attrib)
        cases = suite.findall("testcase")
        assert [c.tag for c in suite if c.tag != "properties"] == ["testcase"] * len(cases)
        for case in cases:
            assert {"classname", "name"} <= set(case.attrib)
            outcome = [c.tag for c in case]
            assert outcome in ([], ["failure"], ["skipped"], ["error"]), outcome
            for child in case:
                assert child.get("message"), f"{child.tag} without message in {case.get('name')}"
        assert int(suite.get("tests")) == len(cases)
        assert int(suite.get("failures")) == len(suite.findall("testcase/failure"))
        assert int(suite.get("errors")) == len(suite.findall("testcase/error"))
        assert int(suite.get("skipped")) == len(suite.findall("testcase/skipped"))
    for key in SUITE_COUNTS:
        assert int(root.get(key)) == sum(int(s.get(key)) for s in suites)


def _cases(path: Path) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = ET.parse(path).getroot()
    assert_junit_shape(root)
    (suite,) = root.findall("testsuite")
    return suite, {c.get("name"): c for c in suite.findall("testcase")}


@pytest.fixture(scope="module")
def junit_dir(assemblies: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("junit")
    (out / "cdk-nag-Renamed.xml").write_text("<testsuites/>")  # a stale report from a renamed stage
    result = _cli("junit", "--assembly", str(assemblies["nag"]), "--out", str(out))
    assert result.returncode == 1, result.stderr  # Consumer has violations
    assert result.stdout.splitlines() == [
        "Consumer: 2 violations, 2 acknowledged",
        "Producer: 0 violations, 0 acknowledged",
        "Pipeline: 0 violations, 1 acknowledged",
    ]
    return out


# ---------------------------------------------------------------- what CDK / cdk-nag write


@pytest.mark.infra
def test_validation_report_structure(assemblies: dict[str, Path]) -> None:
    report = json.loads((assemblies["nag"] / "validation-report.json").read_text())
    (nag,) = [r for r in report["pluginReports"] if r["pluginName"] == "AwsSolutions"]
    assert nag["conclusion"] == "failure"
    violated = {(v["ruleName"], c["constructPath"]) for v in nag["violations"] for c in v["violatingConstructs"]}
    assert violated == {
        ("AwsSolutions-S10", "Pipeline/Consumer/Data/Bucket/Resource"),
        ("AwsSolutions-IAM5[Action::s3:Get*]", "Pipeline/Consumer/Data/Reader/DefaultPolicy/Resource"),
    }
    (suppressed,) = nag["suppressedViolations"]
    assert suppressed["ruleName"] == "AwsSolutions-IAM5[Resource::*]"
    assert suppressed["reason"] == IAM5_REASON
    assert suppressed["acknowledgedAt"] == "Pipeline/Consumer/Data/Reader"


@pytest.mark.infra
def test_report_is_written_without_cdk_nag_too(assemblies: dict[str, Path]) -> None:
    # Why the gate needs more evidence than the report: the built-in CloudFormation validator always
    # writes it, and a pack that finds nothing is left out - a missing cdk-nag looks like a clean app.
    report = json.loads((assemblies["nonag"] / "validation-report.json").read_text())
    assert "AwsSolutions" not in {r["pluginName"] for r in report["pluginReports"]}


@pytest.mark.infra
def test_suppressions_metadata_reaches_top_level_templates_only(assemblies: dict[str, Path]) -> None:
    top = json.loads((assemblies["nag"] / "Pipeline.template.json").read_text())
    metadata = [r.get("Metadata", {}).get("cdk_nag") for r in top["Resources"].values()]
    assert {"rules_to_suppress": [{"id": "AwsSolutions-S1", "reason": TOP_REASON}]} in metadata
    # The Aspect is added to the App, and Aspects do not cross Stage boundaries.
    nested = next((assemblies["nag"] / CONSUMER_ASSEMBLY).glob("*.template.json"))
    resources = json.loads(nested.read_text())["Resources"].values()
    assert not any("cdk_nag" in r.get("Metadata", {}) for r in resources)


# ---------------------------------------------------------------- JUnit conversion


@pytest.mark.infra
def test_one_junit_file_per_stage(junit_dir: Path) -> None:
    assert sorted(p.name for p in junit_dir.iterdir()) == [
        "cdk-nag-Consumer.xml",
        "cdk-nag-Pipeline.xml",
        "cdk-nag-Producer.xml",
    ]


@pytest.mark.infra
def test_junit_violating_stage(junit_dir: Path) -> None:
    suite, cases = _cases(junit_dir / "cdk-nag-Consumer.xml")
    assert suite.get("name") == "cdk-nag.Consumer"
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("4", "2", "2")
    bucket = "Pipeline/Consumer/Data/Bucket"
    policy = "Pipeline/Consumer/Data/Reader/DefaultPolicy/Resource"
    assert set(cases) == {
        f"AwsSolutions-S10 {bucket}/Resource",
        f"AwsSolutions-IAM5[Action::s3:Get*] {policy}",
        f"AwsSolutions-S1 {bucket}",  # the acknowledgment's construct: cdk-nag filtered it itself
        f"AwsSolutions-IAM5[Resource::*] {policy}",  # exact, from suppressedViolations
    }
    assert {c.get("classname") for c in cases.values()} == {"Consumer/Data"}
    s10 = cases[f"AwsSolutions-S10 {bucket}/Resource"].find("failure")
    assert s10.get("message") == "The S3 Bucket or bucket policy does not require requests to use SSL."
    assert "logical id: Bucket" in s10.text
    iam5 = cases[f"AwsSolutions-IAM5[Action::s3:Get*] {policy}"].find("failure")
    assert iam5.get("message").startswith("The IAM entity contains wildcard permissions")
    assert cases[f"AwsSolutions-S1 {bucket}"].find("skipped").get("message") == f"acknowledged: {S1_REASON}"
    acked = cases[f"AwsSolutions-IAM5[Resource::*] {policy}"].find("skipped")
    assert acked.get("message") == f"acknowledged: {IAM5_REASON}"


@pytest.mark.infra
def test_junit_clean_stage_has_one_passing_case(junit_dir: Path) -> None:
    suite, cases = _cases(junit_dir / "cdk-nag-Producer.xml")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "0")
    assert list(cases) == ["no cdk-nag findings"]
    assert list(cases["no cdk-nag findings"]) == []


@pytest.mark.infra
def test_junit_top_level_stack_reads_template_acknowledgment(junit_dir: Path) -> None:
    suite, cases = _cases(junit_dir / "cdk-nag-Pipeline.xml")
    assert (suite.get("tests"), suite.get("failures"), suite.get("skipped")) == ("1", "0", "1")
    skipped = cases["AwsSolutions-S1 Pipeline/TopBucket"].find("skipped")
    assert skipped.get("message") == f"acknowledged: {TOP_REASON}"


# ---------------------------------------------------------------- gate


@pytest.mark.infra
@pytest.mark.parametrize(
    ("stage", "code"),
    [
        ("Consumer", 1),
        (CONSUMER_ASSEMBLY, 1),
        ("Producer", 0),
        ("Pipeline/Producer", 0),
        ("Pipeline", 0),
        ("Unknown", 2),
    ],
)
def test_gate_exit_codes(assemblies: dict[str, Path], stage: str, code: int) -> None:
    result = _cli("gate", "--assembly", str(assemblies["nag"]), "--stage", stage)
    assert result.returncode == code, result.stdout + result.stderr


@pytest.mark.infra
def test_gate_lists_each_violation(assemblies: dict[str, Path]) -> None:
    result = _cli("gate", "--assembly", str(assemblies["nag"]), "--stage", "Consumer")
    violations = [line for line in result.stderr.splitlines() if "VIOLATION" in line]
    assert len(violations) == 2
    assert any("AwsSolutions-S10 at Pipeline/Consumer/Data/Bucket/Resource" in v for v in violations)


@pytest.mark.infra
@pytest.mark.parametrize("app", ["nonag", "stageonly"])
def test_gate_rejects_stage_cdk_nag_never_checked(assemblies: dict[str, Path], app: str) -> None:
    result = _cli("gate", "--assembly", str(assemblies[app]), "--stage", "Producer")
    assert result.returncode == 1
    assert "cannot prove cdk-nag pack 'AwsSolutions' checked Pipeline/Producer" in result.stderr


@pytest.mark.infra
def test_gate_rejects_missing_or_stale_report(assemblies: dict[str, Path], tmp_path: Path) -> None:
    copy = tmp_path / "cdk.out"
    shutil.copytree(assemblies["nag"], copy)
    report = copy / "validation-report.json"
    manifest = (copy / "manifest.json").stat()
    stale = manifest.st_mtime - 60
    os.utime(report, (stale, stale))
    result = _cli("gate", "--assembly", str(copy), "--stage", "Producer")
    assert result.returncode == 1
    assert "older than manifest.json" in result.stderr

    report.unlink()
    result = _cli("gate", "--assembly", str(copy), "--stage", "Producer")
    assert result.returncode == 1
    assert "validation-report.json is missing" in result.stderr


@pytest.mark.infra
def test_missing_assembly(tmp_path: Path) -> None:
    assert _cli("gate", "--assembly", str(tmp_path / "nope"), "--stage", "Consumer").returncode == 2
    result = _cli("junit", "--assembly", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    _, cases = _cases(tmp_path / "out" / "cdk-nag-assembly.xml")
    assert cases["cloud assembly readable"].find("failure") is not None


# ---------------------------------------------------------------- helpers (no synth)


def test_prefix_encoding_expands_like_cdk_analytics() -> None:
    text = "2.275.0!aws-cdk-lib.{Stack,aws_s3.{Bucket,CfnBucket}},0.0.0!policyValidation.{AwsSolutions,Serverless}"
    entries = nag_report._expand_prefix_encoding(text)
    assert entries == [
        "2.275.0!aws-cdk-lib.Stack",
        "2.275.0!aws-cdk-lib.aws_s3.Bucket",
        "2.275.0!aws-cdk-lib.aws_s3.CfnBucket",
        "0.0.0!policyValidation.AwsSolutions",
        "0.0.0!policyValidation.Serverless",
    ]
    assert nag_report.analytics_lists_pack(entries, "AwsSolutions")
    assert nag_report.analytics_lists_pack(entries, "Serverless")
    assert not nag_report.analytics_lists_pack(entries, "AwsSolutionsX")
    assert not nag_report.analytics_lists_pack(["2.275.0!aws-cdk-lib.Stack"], "AwsSolutions")


@pytest.mark.parametrize(
    ("ack_id", "rule"),
    [
        ("Annotation::AwsSolutions-S1", "AwsSolutions-S1"),
        ("AwsSolutions::AwsSolutions-IAM5[Action::s3:Get*]", "AwsSolutions-IAM5[Action::s3:Get*]"),
        ("AwsSolutions-IAM5[Resource::*]", "AwsSolutions-IAM5[Resource::*]"),
        ("CloudFormation-Validate::W3045", None),
        ("Annotation::@aws-cdk/aws-iam:someWarning", None),
    ],
)
def test_pack_rule(ack_id: str, rule: str | None) -> None:
    assert nag_report.pack_rule(ack_id, ("AwsSolutions",)) == rule


def test_prefix_encoding_skips_additional_metadata_json() -> None:
    # @aws-cdk/core:enableAdditionalMetadataCollection appends JSON holding braces and commas.
    text = (
        '2.275.0!aws-cdk-lib.{aws_sns.{TopicPolicy[{"topics":["*"]}],CfnTopicPolicy},'
        'Resource["*","*"]},0.0.0!policyValidation.AwsSolutions'
    )
    assert nag_report._expand_prefix_encoding(text) == [
        "2.275.0!aws-cdk-lib.aws_sns.TopicPolicy",
        "2.275.0!aws-cdk-lib.aws_sns.CfnTopicPolicy",
        "2.275.0!aws-cdk-lib.Resource",
        "0.0.0!policyValidation.AwsSolutions",
    ]
    with pytest.raises(ValueError):
        nag_report._expand_prefix_encoding('a.{b[{"x":1},c')
