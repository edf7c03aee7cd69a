"""validation-report.json and the acknowledgments recorded in stack metadata -> deduplicated findings."""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.nag.assembly import MANIFEST, Metadata, read_json

REPORT = "validation-report.json"
# cdk-nag rule ids are "<pack>-<rule>": AwsSolutions-S1, HIPAA.Security-..., NIST.800.53.R5-..., PCI.DSS.321-...
RULE_ID = re.compile(r"(?P<pack>[A-Za-z][A-Za-z0-9.]*)-[A-Za-z0-9].*")
STALE_TOLERANCE_SECONDS = 2.0  # zip hand-offs between CodePipeline actions keep mtimes to 2 s


@dataclass(frozen=True)
class Finding:
    pack: str  # plugin name in the report: "AwsSolutions", "HIPAA.Security", "CloudFormation Validate"
    rule: str  # "AwsSolutions-IAM5[Resource::*]"
    path: str  # construct path of the resource, or of the construct an acknowledgment was made on
    acknowledged: bool
    message: str  # a violation's description, an acknowledgment's reason
    severity: str = "error"
    detail: str = ""


def load_report(root: Path) -> tuple[dict[str, Any], list[str]]:
    """The report, and why it proves nothing: missing (validation did not run) or older than the assembly."""
    report = root / REPORT
    if not report.is_file():
        return {}, [f"{REPORT} is missing: synth ran without validation or crashed, so nothing was checked"]
    if report.stat().st_mtime + STALE_TOLERANCE_SECONDS < (root / MANIFEST).stat().st_mtime:
        return {}, [f"{REPORT} is older than {MANIFEST}: left over from an earlier synth"]
    return read_json(report), []


def from_report(report: dict[str, Any]) -> tuple[list[Finding], list[str]]:
    """Violations of every plugin and acknowledged pack findings; a problem for each plugin that crashed."""
    found: list[Finding] = []
    problems: list[str] = []
    for plugin in report.get("pluginReports") or []:
        pack, failed = plugin.get("pluginName", "?"), plugin.get("conclusion") == "failure"
        if failed and not plugin.get("violations"):
            problems.append(f"validation plugin {pack!r} crashed: {(plugin.get('metadata') or {}).get('error', '?')}")
        for v in plugin.get("violations") or []:
            # A failed plugin's findings count at any severity (cdk-nag 3 fails synth on warnings too); a passing
            # plugin's warnings (CloudFormation Validate's F0001 on an empty stack) did not fail synth.
            if failed or v.get("severity") in ("error", "fatal"):
                fix = f" Fix: {v['fix']}" if v.get("fix") else ""
                found += _per_construct(pack, v, False, v.get("description", "") + fix)
        for v in plugin.get("suppressedViolations") or []:
            # Pack rules only: CDK acknowledges some CloudFormation Validate rules itself (W3045 on log buckets).
            if RULE_ID.fullmatch(v.get("ruleName", "")):
                found += _per_construct(pack, v, True, v.get("reason", ""))
    return found, problems


def _per_construct(pack: str, v: dict[str, Any], acked: bool, message: str) -> Iterator[Finding]:
    # cdk-nag groups a rule's violations: one entry can name constructs of several stages.
    detail = f"acknowledged at {v['acknowledgedAt']}" if v.get("acknowledgedAt") else ""
    for construct in v.get("violatingConstructs") or [{}]:
        path = construct.get("constructPath", "")
        yield Finding(pack, v.get("ruleName", "?"), path, acked, message, str(v.get("severity", "error")), detail)


def from_metadata(metadata: Metadata, report: dict[str, Any]) -> Iterator[Finding]:
    """Acknowledgments as CDK recorded them, at the construct they were made on: cdk-nag drops those with a
    plain id ("AwsSolutions-S1") from the report, while namespaced ones are already there, exactly."""
    in_report = {
        (v.get("acknowledgedAt"), v.get("acknowledgedId"))
        for plugin in report.get("pluginReports") or []
        for v in plugin.get("suppressedViolations") or []
    }
    for site, entries in metadata.items():
        for entry in entries:
            if entry.get("type") != "aws:cdk:acknowledged-rules":
                continue
            for ack_id, reason in entry["data"].items():
                # "Annotation::AwsSolutions-S1", "HIPAA.Security::HIPAA.Security-..."; granular ids hold "::" too
                # ("AwsSolutions-IAM5[Resource::*]"), but only after a "[".
                namespace, sep, rest = ack_id.partition("::")
                match = RULE_ID.fullmatch(rest if sep and "[" not in namespace else ack_id)
                if match and (site, ack_id) not in in_report:
                    detail = f"acknowledged at {site} (covers it and its children)"
                    yield Finding(match["pack"], match[0], site, True, str(reason), "", detail)


def dedupe(findings: Iterable[Finding]) -> list[Finding]:
    """One per pack, rule, construct and status (a pack registered twice reports everything twice), sorted."""
    unique: dict[tuple[str, str, str, bool], Finding] = {}
    for f in findings:
        unique.setdefault((f.pack, f.rule, f.path, f.acknowledged), f)
    return sorted(unique.values(), key=lambda f: (f.acknowledged, f.pack, f.rule, f.path))
