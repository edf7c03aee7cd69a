"""pipeline.nag_report on cloud assemblies written here in the shape aws-cdk-lib 2.275 + cdk-nag 3.0.2 write them.

The shapes (manifest artifacts, ``<stack>.metadata.json`` entries, ``validation-report.json`` plugin reports) are
copied from a toy app with a pipeline-like nested Stage and all five packs; ``test_real_synth`` runs the reader on
a real synthesis, so the fakes cannot drift from what CDK writes unnoticed.
"""

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import pytest

from pipeline.nag import assembly, cli, findings

REPO = Path(__file__).resolve().parents[2]
STACKS = {  # construct path -> (assembly directory, artifact id), as CDK names them
    "Pipeline": (".", "Pipeline"),
    "Pipeline/Consumer/Data": ("assembly-Pipeline-Consumer", "PipelineConsumerDataA87A26E1"),
    "Pipeline/Producer/Store": ("assembly-Pipeline-Producer", "PipelineProducerStoreA6E28FB5"),
}
BUCKET = "Pipeline/Consumer/Data/Bucket"
POLICY = "Pipeline/Consumer/Data/Reader/DefaultPolicy/Resource"
TOP = "Pipeline/TopBucket"
STORE = "Pipeline/Producer/Store/Bucket"
S1_REASON = "Toy bucket: access logs are not needed for this experiment."
HIPAA_REASON = "Toy bucket: HIPAA logging is not needed for this experiment."
STAGE_REASON = "Read-only wildcard on the stage, scoped by the bucket policy."


def violation(rule: str, *paths: str, severity: str = "error", text: str = "") -> dict[str, Any]:
    constructs = [{"constructPath": p, "constructFqn": "aws-cdk-lib.aws_s3.CfnBucket"} for p in paths]
    return {
        "ruleName": rule,
        "description": text or f"{rule} text",
        "severity": severity,
        "violatingConstructs": constructs,
    }


def acknowledged(rule: str, path: str, at: str, reason: str, ack_id: str) -> dict[str, Any]:
    return {**violation(rule, path), "acknowledgedId": ack_id, "reason": reason, "acknowledgedAt": at}


def plugin(name: str, violations: list[Any], suppressed: list[Any] | None = None, conclusion: str = "failure") -> Any:
    return {"pluginName": name, "conclusion": conclusion, "violations": violations, "suppressedViolations": suppressed}


HIPAA_ACK = "HIPAA.Security::HIPAA.Security-S3BucketLoggingEnabled"  # namespaced: CDK core keeps it in the report
AWS = plugin(
    "AwsSolutions",
    [violation("AwsSolutions-S10", f"{BUCKET}/Resource"), violation("AwsSolutions-IAM5[Action::s3:Get*]", POLICY)],
)
PLUGINS = [
    AWS,
    plugin(
        "HIPAA.Security",
        [violation("HIPAA.Security-S3BucketVersioningEnabled", f"{TOP}/Resource", f"{BUCKET}/Resource")],
        [acknowledged("HIPAA.Security-S3BucketLoggingEnabled", f"{BUCKET}/Resource", BUCKET, HIPAA_REASON, HIPAA_ACK)],
    ),
    plugin("NIST.800.53.R5", [violation("NIST.800.53.R5-S3BucketLoggingEnabled", f"{BUCKET}/Resource")]),
    plugin("PCI.DSS.321", [violation("PCI.DSS.321-S3DefaultEncryptionKMS", f"{BUCKET}/Resource")]),
    plugin("Serverless", [violation("Serverless-SQSRedrivePolicy", "Pipeline/Consumer/Data/Queue/Resource")]),
    AWS,  # a pack registered twice reports everything twice
    plugin(
        "CloudFormation Validate",
        [violation("F0001", "Pipeline", severity="warning")],  # a passing plugin's warning: synth passed
        [acknowledged("W3045", f"{STORE}/Resource", STORE, "deprecated", "CloudFormation-Validate::W3045")],
        conclusion="success",
    ),
]
ACKS = {  # construct path -> {id as CDK records it: reason}
    BUCKET: {"Annotation::AwsSolutions-S1": S1_REASON, HIPAA_ACK: HIPAA_REASON},
    "Pipeline/Producer": {"Annotation::AwsSolutions-IAM5[Resource::*]": STAGE_REASON},  # on the Stage itself
    TOP: {"Annotation::AwsSolutions-S1": S1_REASON},
    STORE: {"CloudFormation-Validate::W3045": "deprecated"},  # CDK's own, not a pack rule
}


def write_assembly(root: Path, plugins: list[Any] = PLUGINS, acks: dict[str, Any] = ACKS) -> Path:
    """A root assembly with stack Pipeline and two nested stage assemblies, and its validation report."""
    manifests: dict[str, dict[str, Any]] = {".": {}}
    for stage in ("Consumer", "Producer"):  # CDK lists nested assemblies first
        props = {"directoryName": f"assembly-Pipeline-{stage}", "displayName": f"Pipeline/{stage}"}
        manifests["."][f"assembly-Pipeline-{stage}"] = {"type": "cdk:cloud-assembly", "properties": props}
    for path, (directory, artifact_id) in STACKS.items():
        # CDK records an acknowledgment in the file of the stack containing the construct (a Stage's: its parent's).
        meta: dict[str, list[Any]] = {
            f"/{path}/Bucket/Resource": [{"type": "aws:cdk:logicalId", "data": "Bucket83908E77"}]
        }
        for site, data in acks.items():
            if max((p for p in STACKS if site == p or site.startswith(p + "/")), key=len) == path:
                meta.setdefault(f"/{site}", []).append({"type": "aws:cdk:acknowledged-rules", "data": data})
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory / f"{artifact_id}.metadata.json").write_text(json.dumps(meta))
        stack = {"type": "aws:cloudformation:stack", "additionalMetadataFile": f"{artifact_id}.metadata.json"}
        manifests.setdefault(directory, {})[artifact_id] = {**stack, "displayName": path}
    (root / "validation-report.json").write_text(json.dumps({"version": "55.0.0", "pluginReports": plugins}))
    for directory, artifacts in sorted(manifests.items(), reverse=True):  # the root manifest last, as CDK does
        (root / directory / "manifest.json").write_text(json.dumps({"version": "55.0.0", "artifacts": artifacts}))
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli.main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def junit_cases(path: Path) -> tuple[ET.Element, dict[str, ET.Element]]:
    root = ET.parse(path).getroot()
    (suite,) = root.findall("testsuite")
    # The counts reporters read must match the cases.
    for key, xpath in (("tests", "testcase"), ("failures", "testcase/failure"), ("skipped", "testcase/skipped")):
        assert root.get(key) == suite.get(key) == str(len(suite.findall(xpath)))
    return suite, {c.get("name"): c for c in suite.findall("testcase")}


# ---------------------------------------------------------------- reading


def test_stage_attribution_by_longest_construct_path_prefix(tmp_path: Path) -> None:
    groups, _ = assembly.read(write_assembly(tmp_path))
    assert [(g.name, g.path, g.directory) for g in groups] == [
        ("Consumer", "Pipeline/Consumer", "assembly-Pipeline-Consumer"),
        ("Producer", "Pipeline/Producer", "assembly-Pipeline-Producer"),
        ("Pipeline", "Pipeline", "."),
    ]
    owner = {
        path: getattr(assembly.group_of(groups, path), "name", None)
        for path in (
            f"{BUCKET}/Resource",
            "Pipeline/Producer",
            f"{TOP}/Resource",
            "Pipeline/ConsumerOld/X",
            "Other/X",
        )
    }
    # Pipeline/Consumer is inside the Pipeline stack's scope, and a prefix must end at a path segment.
    assert owner == {
        f"{BUCKET}/Resource": "Consumer",
        "Pipeline/Producer": "Producer",
        f"{TOP}/Resource": "Pipeline",
        "Pipeline/ConsumerOld/X": "Pipeline",
        "Other/X": None,
    }


def test_stages_sharing_a_name_are_named_by_path(tmp_path: Path) -> None:
    artifacts = {}
    for path in ("A/Consumer", "B/Consumer", "B/Producer"):
        directory = path.replace("/", "-")
        (tmp_path / directory).mkdir()
        (tmp_path / directory / "manifest.json").write_text('{"artifacts": {}}')
        props = {"directoryName": directory, "displayName": path}
        artifacts[directory] = {"type": "cdk:cloud-assembly", "properties": props}
    (tmp_path / "manifest.json").write_text(json.dumps({"artifacts": artifacts}))
    assert [g.name for g in assembly.read(tmp_path)[0]] == ["A/Consumer", "B/Consumer", "Producer"]


@pytest.mark.parametrize(
    ("ack_id", "expected"),
    [
        ("Annotation::AwsSolutions-S1", ("AwsSolutions", "AwsSolutions-S1")),
        ("Annotation::AwsSolutions-IAM5[Resource::*]", ("AwsSolutions", "AwsSolutions-IAM5[Resource::*]")),
        (
            "AwsSolutions-IAM5[Resource::arn:aws:s3:::b/*]",
            ("AwsSolutions", "AwsSolutions-IAM5[Resource::arn:aws:s3:::b/*]"),
        ),
        (
            "NIST.800.53.R5::NIST.800.53.R5-S3BucketLoggingEnabled",
            ("NIST.800.53.R5", "NIST.800.53.R5-S3BucketLoggingEnabled"),
        ),
        ("Annotation::PCI.DSS.321-S3DefaultEncryptionKMS", ("PCI.DSS.321", "PCI.DSS.321-S3DefaultEncryptionKMS")),
        ("Annotation::Serverless-LambdaDLQ", ("Serverless", "Serverless-LambdaDLQ")),
        ("CloudFormation-Validate::W3045", None),
        ("Annotation::@aws-cdk/aws-iam:someWarning", None),
    ],
)
def test_acknowledgment_ids(ack_id: str, expected: tuple[str, str] | None) -> None:
    metadata = {"A/B": [{"type": "aws:cdk:acknowledged-rules", "data": {ack_id: "why"}}]}
    found = [(f.pack, f.rule) for f in findings.from_metadata(metadata, {})]
    assert found == ([expected] if expected else [])


def test_deduplication(tmp_path: Path) -> None:
    results, _ = cli.analyze(write_assembly(tmp_path))
    consumer = next(r for r in results if r.group.name == "Consumer")
    keys = [(f.pack, f.rule, f.path, f.acknowledged) for f in consumer.findings]
    assert len(keys) == len(set(keys))
    # AwsSolutions came twice; S10 counts once.
    assert [f.rule for f in consumer.violations].count("AwsSolutions-S10") == 1
    # The namespaced HIPAA acknowledgment is both in the report (exact resource) and the metadata (its site):
    # reported once, with the resource the report names.
    hipaa = [f for f in consumer.findings if f.rule == "HIPAA.Security-S3BucketLoggingEnabled"]
    assert [(f.path, f.acknowledged, f.message) for f in hipaa] == [(f"{BUCKET}/Resource", True, HIPAA_REASON)]


# ---------------------------------------------------------------- JUnit


def test_junit_one_file_per_stage_every_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nag"
    out.mkdir()
    (out / "cdk-nag-Renamed.xml").write_text("<testsuites/>")  # a green report of a stage that no longer exists
    code, stdout, stderr = run(capsys, "junit", "--assembly", str(write_assembly(tmp_path / "a")), "--out", str(out))
    assert code == 1
    assert stdout.splitlines() == ["Producer: 0 violations, 1 acknowledged"]
    assert stderr.splitlines() == ["Consumer: 6 violations, 2 acknowledged", "Pipeline: 1 violations, 1 acknowledged"]
    assert sorted(p.name for p in out.iterdir()) == [
        "cdk-nag-Consumer.xml",
        "cdk-nag-Pipeline.xml",
        "cdk-nag-Producer.xml",
    ]

    suite, cases = junit_cases(out / "cdk-nag-Consumer.xml")
    assert [suite.get(k) for k in ("name", "tests", "failures", "skipped")] == ["cdk-nag.Consumer", "8", "6", "2"]
    assert {c.get("classname") for c in cases.values()} == {
        f"Consumer/{p}" for p in ("AwsSolutions", "HIPAA.Security", "NIST.800.53.R5", "PCI.DSS.321", "Serverless")
    }
    s10 = cases[f"AwsSolutions-S10 {BUCKET}/Resource"].find("failure")
    assert (s10.get("message"), s10.get("type")) == ("AwsSolutions-S10 text", "error")
    assert s10.text == f"AwsSolutions-S10 at {BUCKET}/Resource\nlogical id: Bucket83908E77"
    # cdk-nag left this acknowledgment out of the report: it is listed at the construct it was made on.
    s1 = cases[f"AwsSolutions-S1 {BUCKET}"].find("skipped")
    assert s1.get("message") == f"acknowledged: {S1_REASON}"
    assert cases[f"HIPAA.Security-S3BucketLoggingEnabled {BUCKET}/Resource"].find("skipped") is not None

    _, cases = junit_cases(out / "cdk-nag-Producer.xml")
    (stage_ack,) = cases.values()  # CDK's own W3045 acknowledgment is not listed
    assert stage_ack.get("name") == "AwsSolutions-IAM5[Resource::*] Pipeline/Producer"
    assert stage_ack.find("skipped").get("message") == f"acknowledged: {STAGE_REASON}"
    # One violation of one rule spanning two stages lands in each.
    _, cases = junit_cases(out / "cdk-nag-Pipeline.xml")
    assert cases[f"HIPAA.Security-S3BucketVersioningEnabled {TOP}/Resource"].find("failure") is not None


def test_junit_clean_stage_has_one_passing_case(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_assembly(tmp_path / "a", plugins=[], acks={})
    assert run(capsys, "junit", "--assembly", str(root), "--out", str(tmp_path / "out"))[0] == 0
    _, cases = junit_cases(tmp_path / "out" / "cdk-nag-Producer.xml")
    assert list(cases) == ["no cdk-nag findings"] and list(cases["no cdk-nag findings"]) == []


# ---------------------------------------------------------------- gate


@pytest.mark.parametrize(
    ("stage", "code"),
    [
        ("Consumer", 1),
        ("assembly-Pipeline-Consumer", 1),
        ("Producer", 0),
        ("Pipeline/Producer", 0),
        ("Pipeline", 1),
        ("Unknown", 2),
    ],
)
def test_gate_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str], stage: str, code: int) -> None:
    assert run(capsys, "gate", "--assembly", str(write_assembly(tmp_path)), "--stage", stage)[0] == code


def test_gate_needs_a_stage(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["gate", "--assembly", str(write_assembly(tmp_path))])
    assert exit_info.value.code == 2


def test_gate_lists_each_violation_with_its_pack(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, _, stderr = run(capsys, "gate", "--assembly", str(write_assembly(tmp_path)), "--stage", "Consumer")
    lines = [line for line in stderr.splitlines() if "VIOLATION" in line]
    assert len(lines) == 6
    assert (
        "  VIOLATION Serverless-SQSRedrivePolicy (Serverless) at Pipeline/Consumer/Data/Queue/Resource: "
        "Serverless-SQSRedrivePolicy text" in lines
    )


@pytest.mark.parametrize(
    ("plugins", "code"),
    [
        ([plugin("AwsSolutions", [violation("AwsSolutions-S1", f"{STORE}/Resource", severity="warning")])], 1),
        ([plugin("CloudFormation Validate", [violation("E3001", f"{STORE}/Resource")], conclusion="success")], 1),
        (
            [
                plugin(
                    "CloudFormation Validate",
                    [violation("W1", f"{STORE}/Resource", severity="warning")],
                    conclusion="success",
                )
            ],
            0,
        ),
        ([plugin("Custom Plugin", [violation("X-1", f"{STORE}/Resource", severity="warning")])], 1),
    ],
    ids=["pack-warning", "other-plugin-error", "passing-plugin-warning", "any-failing-plugin"],
)
def test_which_violations_fail(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plugins: list[Any], code: int
) -> None:
    root = write_assembly(tmp_path, plugins=plugins, acks={})
    assert run(capsys, "gate", "--assembly", str(root), "--stage", "Producer")[0] == code


@pytest.mark.parametrize(
    ("plugins", "message"),
    [
        ([plugin("AwsSolutions", [])], "validation plugin 'AwsSolutions' crashed"),
        (
            [plugin("HIPAA.Security", [violation("HIPAA.Security-X", "Elsewhere/Thing")])],
            "belongs to no stack or stage",
        ),
        ([plugin("HIPAA.Security", [violation("HIPAA.Security-X")])], "belongs to no stack or stage"),
    ],
    ids=["crash", "outside-every-stage", "no-construct"],
)
def test_unusable_results_fail_every_stage(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], plugins: list[Any], message: str
) -> None:
    code, _, stderr = run(
        capsys, "gate", "--assembly", str(write_assembly(tmp_path, plugins=plugins, acks={})), "--stage", "Producer"
    )
    assert code == 1 and message in stderr


def test_stale_or_missing_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_assembly(tmp_path, plugins=[], acks={})
    manifest = (root / "manifest.json").stat().st_mtime
    report = root / "validation-report.json"
    os.utime(report, (manifest - 1, manifest - 1))  # CodePipeline's zip hand-offs round mtimes to 2 s
    assert run(capsys, "gate", "--assembly", str(root), "--stage", "Producer")[0] == 0
    os.utime(report, (manifest - 60, manifest - 60))
    code, _, stderr = run(capsys, "gate", "--assembly", str(root), "--stage", "Producer")
    assert code == 1 and "older than manifest.json" in stderr
    report.unlink()
    code, _, stderr = run(capsys, "gate", "--assembly", str(root), "--stage", "Producer")
    assert code == 1 and "validation-report.json is missing" in stderr


def test_missing_assembly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "gate", "--assembly", str(tmp_path / "nope"), "--stage", "Consumer")[0] == 2
    assert run(capsys, "junit", "--assembly", str(tmp_path / "nope"), "--out", str(tmp_path / "out"))[0] == 2
    _, cases = junit_cases(tmp_path / "out" / "cdk-nag-assembly.xml")
    assert cases["cdk-nag results are usable"].find("failure") is not None


def test_summary_always_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, stdout, _ = run(capsys, "summary", "--assembly", str(write_assembly(tmp_path)))
    assert code == 0 and "Consumer: 6 violations, 2 acknowledged" in stdout


# ---------------------------------------------------------------- the entry point a bare CodeBuild step runs


def test_entry_point_runs_on_the_standard_library_alone(tmp_path: Path) -> None:
    root = write_assembly(tmp_path)
    probe = (
        "import sys, runpy; sys.argv = ['nag_report', 'gate', '--assembly', sys.argv[1], '--stage', 'Producer']\n"
        "try: runpy.run_module('pipeline.nag_report', run_name='__main__')\n"
        "except SystemExit as e: code = e.code\n"
        "top = {m.split('.')[0] for m in sys.modules}\n"
        "print(code, sorted(top - set(sys.stdlib_module_names) - {'pipeline', '__main__'}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-S", "-c", probe, str(root)], cwd=REPO, capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.splitlines()[-1] == "0 []"


# ---------------------------------------------------------------- a real synthesis


@pytest.mark.infra
def test_real_synth(tmp_path: Path) -> None:
    from aws_cdk import Acknowledgment, App, Stack, Stage, Validations
    from aws_cdk import aws_s3 as s3
    from aws_cdk import aws_sqs as sqs
    from cdk_nag import AwsSolutionsChecks, HIPAASecurityChecks

    app = App(outdir=str(tmp_path))
    pipeline = Stack(app, "Pipeline")
    consumer = Stack(Stage(pipeline, "Consumer"), "Data")
    bucket = s3.Bucket(consumer, "Bucket", enforce_ssl=True)
    Validations.of(bucket).acknowledge(Acknowledgment(id="AwsSolutions-S1", reason=S1_REASON))
    Validations.of(bucket).acknowledge(Acknowledgment(id=HIPAA_ACK, reason=HIPAA_REASON))
    sqs.Queue(consumer, "Queue", enforce_ssl=True)  # AwsSolutions-SQS3: no dead-letter queue
    Validations.of(app).add_plugins(AwsSolutionsChecks(app), HIPAASecurityChecks(app))
    with pytest.raises(RuntimeError, match="ValidationFailed"):  # written before synth fails
        app.synth()

    results, _ = cli.analyze(tmp_path)
    (result,) = [r for r in results if r.group.name == "Consumer"]
    assert {(f.pack, f.rule, f.path, f.acknowledged) for f in result.findings} >= {
        ("AwsSolutions", "AwsSolutions-SQS3", "Pipeline/Consumer/Data/Queue/Resource", False),
        ("AwsSolutions", "AwsSolutions-S1", "Pipeline/Consumer/Data/Bucket", True),
        ("HIPAA.Security", "HIPAA.Security-S3BucketLoggingEnabled", "Pipeline/Consumer/Data/Bucket/Resource", True),
        ("HIPAA.Security", "HIPAA.Security-S3BucketVersioningEnabled", "Pipeline/Consumer/Data/Bucket/Resource", False),
    }
    # The namespaced acknowledgment is in the report and in the metadata: listed once, at the resource.
    assert ("HIPAA.Security", "HIPAA.Security-S3BucketLoggingEnabled", "Pipeline/Consumer/Data/Bucket") not in {
        (f.pack, f.rule, f.path) for f in result.findings
    }
    assert not result.passed and not result.problems
