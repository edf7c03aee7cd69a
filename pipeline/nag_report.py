"""Turn the cdk-nag results of a synthesized cloud assembly into per-stage JUnit reports and gates.

Standard library only: it runs in a bare CodeBuild step that has nothing but ``python3`` (3.11+).
It reads a cloud assembly directory (``cdk.out``) and never imports CDK.

CLI::

    python3 -m pipeline.nag_report junit   --assembly cdk.out --out reports/nag [--stage NAME]...
    python3 -m pipeline.nag_report gate    --assembly cdk.out --stage Consumer [--stage NAME]...
    python3 -m pipeline.nag_report summary --assembly cdk.out [--stage NAME]...

``--pack NAME`` (repeatable, default ``AwsSolutions``) names the cdk-nag packs whose findings count.

Groups ("stages")
    Every stack of the root assembly is its own group, named by its display name (``Pipeline``).
    Every nested assembly (``cdk:cloud-assembly`` artifact, i.e. a Stage such as a pipeline stage)
    is one group, named by the last segment of its construct path (``Pipeline/Consumer`` ->
    ``Consumer``). Names come from the manifests, never from a hard-coded list; ``--stage`` also
    accepts the construct path or the assembly directory name (``assembly-Pipeline-Consumer``).
    A finding belongs to the group whose construct path is the longest prefix of its construct path.

What aws-cdk-lib 2.275 + cdk-nag 3.0.2 actually write (verified with toy apps):
    * ``validation-report.json`` (root assembly only): ``pluginReports[]`` with ``pluginName``,
      ``conclusion``, ``violations[]`` (``ruleName``, ``description``, ``severity``, ``fix``,
      ``violatingConstructs[]`` with ``constructPath``) and ``suppressedViolations[]`` (the same plus
      ``acknowledgedId``, ``reason``, ``acknowledgedAt``). cdk-nag groups violations by rule, so one
      violation can list constructs of several stages.
    * Acknowledgments written as ``Acknowledgment(id="AwsSolutions-S1", ...)`` are filtered out by
      cdk-nag itself and leave NO trace in the report. Those written with the plugin namespace
      (``"AwsSolutions::AwsSolutions-S1"``, which is what CDK's console output suggests) are filtered
      by CDK core instead and land in ``suppressedViolations`` with the exact resource and reason.
    * Every acknowledgment is recorded in the stack metadata file (``<stack>.metadata.json``) as
      ``{"type": "aws:cdk:acknowledged-rules", "data": {"Annotation::AwsSolutions-S1": "<reason>"}}``
      at the construct it was made on - including Stages, whose acks sit in the parent stack's file.
    * ``write_suppressions_to_cloud_formation=True`` adds ``Metadata.cdk_nag.rules_to_suppress``
      (``[{"id": ..., "reason": ...}]``, every ack in scope of the resource) to templates, but it is an
      Aspect on the App and Aspects do not cross Stage boundaries: nested stage templates get none.
    So acknowledged findings are taken from, in order: ``suppressedViolations`` (exact), the metadata
    files (the ack and the construct it covers, with its children), and template ``cdk_nag`` metadata
    for resources not already covered.

Why the gate cannot false-green
    ``validation-report.json`` is written whenever any validation plugin ran - and the built-in
    CloudFormation validator always runs - so a clean app and an app that never registered cdk-nag
    produce the same report (``"pluginReports": []``); a plugin that passes is omitted. The report's
    presence proves only that validation ran, so a stage passes only when all of these hold:
      1. the stage's assembly is listed in the manifest (a renamed stage fails);
      2. ``validation-report.json`` exists and is not older than ``manifest.json`` (a report left over
         from an earlier synth, e.g. before ``--no-validation``, fails);
      3. no validation plugin crashed (a crash is a ``failure`` report without violations);
      4. each pack is proven to have checked the stage: either it reported a finding (violation or
         acknowledged) in the stage, or it is proven registered on the App - which makes CDK run it
         over every stack of every nested assembly - because a top-level stack's ``AWS::CDK::Metadata``
         analytics list ``policyValidation.<pack>`` (CDK records there the plugins registered on the
         stack's Stage and its parents, for the App: the App's). A pack registered only on a pipeline
         Stage is never run by CDK and is not listed there. Nested pipeline-stage templates are no
         evidence: CDK Pipelines synthesizes them inside ``add_stage()``, possibly before registration.
         The analytics resource exists only with version reporting on (the CDK CLI's default): do not
         set ``versionReporting: false``;
      5. the stage has no unacknowledged finding of a pack (any severity: cdk-nag 3 fails synth on
         warnings too), no error-severity finding of another plugin, and the report has no
         finding that cannot be attributed to any stage.

Exit codes: 0 ok; 1 findings or unproven validation; 2 unusable input (no assembly, unknown stage).
``junit`` exits like the gate over all groups, after writing the reports.
"""

import argparse
import base64
import binascii
import gzip
import json
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

REPORT_FILE = "validation-report.json"
MANIFEST_FILE = "manifest.json"
ACK_METADATA_TYPE = "aws:cdk:acknowledged-rules"
LOGICAL_ID_METADATA_TYPE = "aws:cdk:logicalId"
DEFAULT_PACKS = ("AwsSolutions",)
JUNIT_PREFIX = "cdk-nag-"
# Zip-based artifact hand-offs (CodePipeline) keep mtimes only to 2 s.
STALE_TOLERANCE_SECONDS = 2.0
# Namespaces CDK uses for acknowledgments given without a plugin prefix.
ANNOTATION_NAMESPACES = frozenset({"Annotation", "annotation", "Construct-Annotations"})
ERROR_SEVERITIES = frozenset({"error", "fatal"})

EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2


class AssemblyError(Exception):
    """The directory is not a readable cloud assembly."""


@dataclass
class StackInfo:
    artifact_id: str
    path: str  # construct path, e.g. "Pipeline/Consumer/Data"
    directory: Path
    template_file: str
    metadata: dict[str, list[dict[str, Any]]]


@dataclass
class Group:
    """A top-level stack or a nested stage assembly."""

    name: str
    path: str  # construct path
    kind: str  # "stack" or "stage"
    assembly: str  # assembly directory relative to the root ("." for the root)
    stacks: list[StackInfo] = field(default_factory=list)


@dataclass
class Finding:
    group: str
    classname: str
    rule_id: str
    construct_path: str
    logical_id: str | None
    status: str  # "violation" or "acknowledged"
    plugin: str
    message: str
    severity: str = ""
    reason: str = ""
    detail: str = ""

    @property
    def name(self) -> str:
        return f"{self.rule_id} {self.construct_path}"


@dataclass
class GroupResult:
    group: Group
    findings: list[Finding]
    problems: list[str]  # reasons why the stage is not proven validated

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "violation"]

    @property
    def acknowledged(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "acknowledged"]

    @property
    def passed(self) -> bool:
        return not self.problems and not self.violations


@dataclass
class Analysis:
    groups: list[GroupResult]
    global_problems: list[str]


# ---------------------------------------------------------------- assembly loading


def _read_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as fh:
        return json.load(fh)


def _is_under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _load_stack(directory: Path, artifact_id: str, artifact: dict[str, Any]) -> StackInfo:
    props = artifact.get("properties") or {}
    metadata: dict[str, list[dict[str, Any]]] = {}
    # Older assemblies inline the metadata; newer ones point to a side file.
    for key, entries in (artifact.get("metadata") or {}).items():
        metadata.setdefault(key, []).extend(entries)
    side_file = artifact.get("additionalMetadataFile")
    if side_file and (directory / side_file).is_file():
        for key, entries in _read_json(directory / side_file).items():
            metadata.setdefault(key, []).extend(entries)
    return StackInfo(
        artifact_id=artifact_id,
        path=artifact.get("displayName") or artifact_id,
        directory=directory,
        template_file=props.get("templateFile", f"{artifact_id}.template.json"),
        metadata=metadata,
    )


def _walk_assembly(root: Path, rel: Path, stage: Group | None, groups: list[Group]) -> None:
    directory = root / rel
    manifest_path = directory / MANIFEST_FILE
    if not manifest_path.is_file():
        raise AssemblyError(f"{manifest_path} is missing")
    artifacts: dict[str, dict[str, Any]] = _read_json(manifest_path).get("artifacts") or {}
    for artifact_id, artifact in artifacts.items():
        kind = artifact.get("type")
        if kind == "aws:cloudformation:stack":
            stack = _load_stack(directory, artifact_id, artifact)
            if stage is None:
                groups.append(Group(stack.path, stack.path, "stack", ".", [stack]))
            else:
                stage.stacks.append(stack)
        elif kind == "cdk:cloud-assembly":
            props = artifact.get("properties") or {}
            sub_rel = rel / props.get("directoryName", artifact_id)
            path = props.get("displayName") or artifact_id
            sub = Group(path.rsplit("/", 1)[-1], path, "stage", sub_rel.as_posix())
            groups.append(sub)
            _walk_assembly(root, sub_rel, sub, groups)


def load_groups(root: Path) -> list[Group]:
    """Discover top-level stacks and (nested) stage assemblies from the manifests."""
    groups: list[Group] = []
    _walk_assembly(root, Path("."), None, groups)
    # Two stages can share a last path segment (A/Consumer, B/Consumer): fall back to full paths.
    counts: dict[str, int] = {}
    for g in groups:
        counts[g.name] = counts.get(g.name, 0) + 1
    for g in groups:
        if counts[g.name] > 1:
            g.name = g.path
    return groups


def find_group(groups: Sequence[Group], wanted: str) -> Group | None:
    for g in groups:
        if wanted in (g.name, g.path, Path(g.assembly).name):
            return g
    return None


# ---------------------------------------------------------------- analytics (CDKMetadata)


def _expand_prefix_encoding(text: str) -> list[str]:
    """Expand CDK's prefix-encoded trie ("a.{b,c.{d,e}}") into ["a.b", "a.c.d", "a.c.e"].

    With ``@aws-cdk/core:enableAdditionalMetadataCollection`` a construct's entry is followed by a JSON
    array (``TopicPolicy[{"topics":["*"]}]``) that may hold braces and commas; it is skipped.
    """
    decoder = json.JSONDecoder()

    def parse_list(i: int) -> tuple[list[str], int]:
        out: list[str] = []
        while True:
            chars: list[str] = []
            while i < len(text) and text[i] not in ",{}":
                if text[i] == "[":
                    _, i = decoder.raw_decode(text, i)  # raises ValueError on malformed input
                    continue
                chars.append(text[i])
                i += 1
            prefix = "".join(chars)
            if i < len(text) and text[i] == "{":
                inner, i = parse_list(i + 1)
                if i >= len(text) or text[i] != "}":
                    raise ValueError("unbalanced braces")
                i += 1
                out.extend(prefix + item for item in inner)
            else:
                out.append(prefix)
            if i < len(text) and text[i] == ",":
                i += 1
                continue
            return out, i

    items, end = parse_list(0)
    if end != len(text):
        raise ValueError("trailing data")
    return items


def analytics_entries(template: dict[str, Any]) -> list[str] | None:
    """Decoded ``AWS::CDK::Metadata`` analytics entries, or None if the template has none."""
    for resource in (template.get("Resources") or {}).values():
        if resource.get("Type") != "AWS::CDK::Metadata":
            continue
        raw = (resource.get("Properties") or {}).get("Analytics")
        if not isinstance(raw, str) or not raw.startswith("v2:deflate64:"):
            return None
        try:
            text = gzip.decompress(base64.b64decode(raw[len("v2:deflate64:") :])).decode("utf-8")
            return _expand_prefix_encoding(text)
        except (OSError, ValueError, binascii.Error, EOFError):
            return None
    return None


def analytics_lists_pack(entries: Iterable[str], pack: str) -> bool:
    # Entries look like "0.0.0!policyValidation.AwsSolutions[.<ruleIds joined by |>]".
    pattern = re.compile(r"[^!]*!policyValidation\." + re.escape(pack) + r"(\..*)?")
    return any(pattern.fullmatch(e) for e in entries)


# ---------------------------------------------------------------- analysis


def _split_rule_id(qualified: str) -> tuple[str | None, str]:
    """Split "ns::Rule[Action::x]" at the first "::" outside brackets, like CDK does."""
    depth = 0
    for i, ch in enumerate(qualified):
        if ch in "[({":
            depth += 1
        elif ch in "])}":
            depth -= 1
        elif ch == ":" and depth == 0 and qualified[i : i + 2] == "::":
            return qualified[:i], qualified[i + 2 :]
    return None, qualified


def _pack_of(rule: str, packs: Sequence[str]) -> str:
    return next((p for p in packs if rule.startswith(f"{p}-")), "?")


def pack_rule(qualified: str, packs: Sequence[str]) -> str | None:
    """The bare rule id if an acknowledgment id targets one of the packs, else None."""
    namespace, rule = _split_rule_id(qualified)
    own_namespaces = ANNOTATION_NAMESPACES | {p.replace(" ", "-") for p in packs}
    if namespace is not None and namespace not in own_namespaces:
        return None  # e.g. "CloudFormation-Validate::W3045"
    return rule if any(rule.startswith(f"{p}-") for p in packs) else None


class _Index:
    """Construct path lookups across all assemblies."""

    def __init__(self, groups: Sequence[Group]) -> None:
        self.groups = sorted(groups, key=lambda g: len(g.path), reverse=True)
        self.stacks = sorted((s for g in groups for s in g.stacks), key=lambda s: len(s.path), reverse=True)
        self.logical_ids: dict[str, str] = {}
        self.templates: dict[str, dict[str, Any]] = {}
        for stack in self.stacks:
            for key, entries in stack.metadata.items():
                for entry in entries:
                    if entry.get("type") == LOGICAL_ID_METADATA_TYPE and isinstance(entry.get("data"), str):
                        self.logical_ids[key.lstrip("/")] = entry["data"]
            template_path = stack.directory / stack.template_file
            self.templates[stack.artifact_id] = _read_json(template_path) if template_path.is_file() else {}

    def group_of(self, path: str) -> Group | None:
        return next((g for g in self.groups if _is_under(path, g.path)), None)

    def stack_of(self, path: str, group: Group) -> StackInfo | None:
        # Only the group's own stacks: a pipeline stage sits inside the pipeline stack's construct scope.
        return next((s for s in self.stacks if s in group.stacks and _is_under(path, s.path)), None)

    def classname(self, group: Group, path: str) -> str:
        stack = self.stack_of(path, group)
        if stack is None or stack.path == group.path:
            return group.name
        return f"{group.name}/{stack.path[len(group.path) + 1 :]}"

    def path_from_template(self, root: Path, template_path: str, logical_id: str) -> str | None:
        # Report template paths are relative to the root assembly (absolute ones resolve the same).
        wanted = (root / template_path).resolve()
        for stack in self.stacks:
            if (stack.directory / stack.template_file).resolve() == wanted:
                for path, lid in self.logical_ids.items():
                    if lid == logical_id and _is_under(path, stack.path):
                        return path
        return None


def _describe(stack: StackInfo | None, logical_id: str | None) -> str:
    parts = []
    if logical_id:
        parts.append(f"logical id: {logical_id}")
    if stack is not None:
        parts.append(f"stack: {stack.artifact_id} ({stack.template_file})")
    return "\n".join(parts)


def analyze(root: Path, packs: Sequence[str] = DEFAULT_PACKS) -> Analysis:
    """Collect findings and validation evidence for every group of the assembly at ``root``."""
    groups = load_groups(root)
    index = _Index(groups)
    findings: dict[str, list[Finding]] = {g.name: [] for g in groups}
    global_problems: list[str] = []
    packs_in_report: dict[str, set[str]] = {p: set() for p in packs}  # pack -> groups with findings
    used_acks: set[tuple[str, str]] = set()  # (ack site path, rule) covered by exact report entries

    def add(path: str, *, evidence: bool, **kwargs: Any) -> None:
        # evidence=True only for what the plugin itself reported; recorded acks exist without it.
        group = index.group_of(path)
        if group is None:
            if kwargs["status"] == "violation":  # an unattributable violation must fail every stage
                global_problems.append(f"finding {kwargs['rule_id']} at '{path}' belongs to no stack or stage")
            return
        stack = index.stack_of(path, group)
        logical_id = kwargs.pop("logical_id", None) or index.logical_ids.get(path)
        detail = "\n".join(x for x in (kwargs.pop("detail", ""), _describe(stack, logical_id)) if x)
        findings[group.name].append(
            Finding(
                group=group.name,
                classname=index.classname(group, path),
                construct_path=path,
                logical_id=logical_id,
                detail=detail,
                **kwargs,
            )
        )
        if evidence and kwargs["plugin"] in packs_in_report:
            packs_in_report[kwargs["plugin"]].add(group.name)

    # 1. The validation report: violations and acknowledged (namespaced) findings.
    report_path = root / REPORT_FILE
    report: dict[str, Any] | None = None
    if not report_path.is_file():
        global_problems.append(
            f"{REPORT_FILE} is missing: synth did not run validation (--no-validation, CDK_VALIDATION=false, "
            "or synth crashed), so nothing proves cdk-nag checked this assembly"
        )
    else:
        manifest_mtime = (root / MANIFEST_FILE).stat().st_mtime
        if report_path.stat().st_mtime + STALE_TOLERANCE_SECONDS < manifest_mtime:
            global_problems.append(f"{REPORT_FILE} is older than {MANIFEST_FILE}: left over from an earlier synth")
        report = _read_json(report_path)

    for plugin_report in (report or {}).get("pluginReports") or []:
        plugin = plugin_report.get("pluginName", "?")
        is_pack = plugin in packs
        violations = plugin_report.get("violations") or []
        if plugin_report.get("conclusion") == "failure" and not violations:
            error = (plugin_report.get("metadata") or {}).get("error", "failed without reporting violations")
            global_problems.append(f"validation plugin '{plugin}' crashed: {error}")
        for status, entries in (
            ("violation", violations),
            ("acknowledged", plugin_report.get("suppressedViolations")),
        ):
            for v in entries or []:
                severity = str(v.get("severity", "error"))
                if status == "violation" and not is_pack and severity not in ERROR_SEVERITIES:
                    continue  # other plugins' warnings (e.g. CloudFormation Validate) do not fail synth
                if status == "acknowledged" and not is_pack:
                    continue
                # Other plugins' rules carry CDK's acknowledgment namespace, e.g. "CloudFormation-Validate::E3001".
                rule = v.get("ruleName", "?") if is_pack else f"{plugin.replace(' ', '-')}::{v.get('ruleName', '?')}"
                message = v.get("description", "")
                if v.get("fix"):
                    message += f" Fix: {v['fix']}"
                for construct in v.get("violatingConstructs") or [{}]:
                    cfn = construct.get("cloudFormationResource") or {}
                    path = construct.get("constructPath") or index.path_from_template(
                        root, cfn.get("templatePath", ""), cfn.get("logicalId", "")
                    )
                    if not path:
                        global_problems.append(f"{plugin} finding {rule} names no construct")
                        continue
                    reason = v.get("reason", "") if status == "acknowledged" else ""
                    detail = f"acknowledged at: {v['acknowledgedAt']}" if v.get("acknowledgedAt") else ""
                    add(
                        path,
                        evidence=True,
                        rule_id=rule,
                        status=status,
                        plugin=plugin,
                        message=message,
                        severity=severity,
                        reason=reason,
                        logical_id=cfn.get("logicalId"),
                        detail=detail,
                    )
                    if status == "acknowledged":
                        used_acks.add((v.get("acknowledgedAt", ""), v.get("ruleName", "")))

    # 2. Acknowledgments recorded in stack metadata (covers acks cdk-nag filtered itself).
    declared: list[tuple[str, str, str]] = []  # (site path, rule, reason)
    for stack in index.stacks:
        for key, entries in stack.metadata.items():
            for entry in entries:
                if entry.get("type") != ACK_METADATA_TYPE or not isinstance(entry.get("data"), dict):
                    continue
                for qualified, reason in entry["data"].items():
                    rule = pack_rule(qualified, packs)
                    if rule is not None:
                        declared.append((key.lstrip("/"), rule, str(reason)))
    for site, rule, reason in dict.fromkeys(declared):
        if (site, rule) in used_acks:
            continue
        add(
            site,
            evidence=False,
            rule_id=rule,
            status="acknowledged",
            plugin=_pack_of(rule, packs),
            message="",
            reason=reason,
            detail=f"acknowledgment on {site} (covers this construct and its children)",
        )

    # 3. Template cdk_nag metadata, for resources no recorded ack covers.
    for stack in index.stacks:
        resources = index.templates[stack.artifact_id].get("Resources") or {}
        for logical_id, resource in resources.items():
            rules = ((resource.get("Metadata") or {}).get("cdk_nag") or {}).get("rules_to_suppress") or []
            path = (resource.get("Metadata") or {}).get("aws:cdk:path") or next(
                (p for p, lid in index.logical_ids.items() if lid == logical_id and _is_under(p, stack.path)),
                f"{stack.path}/{logical_id}",
            )
            for item in rules:
                rule = pack_rule(str(item.get("id", "")), packs)
                if rule is None or any(r == rule and _is_under(path, site) for site, r, _ in declared):
                    continue
                add(
                    path,
                    evidence=False,
                    rule_id=rule,
                    status="acknowledged",
                    plugin=_pack_of(rule, packs),
                    message="",
                    reason=str(item.get("reason", "")),
                    logical_id=logical_id,
                    detail="from template Metadata cdk_nag.rules_to_suppress",
                )

    # 4. Evidence that each pack checked each group. CDK runs a plugin registered on the App over every
    #    stack of every nested assembly (and cdk-nag walks the whole construct tree), so proof that the
    #    pack is registered on the App covers every group in the manifest. Root-assembly stacks are
    #    synthesized last, by app.synth(), so their analytics see a registration made anywhere in the app;
    #    nested pipeline stages are synthesized inside add_stage() and may predate it.
    def listed(stack: StackInfo, pack: str) -> bool:
        entries = analytics_entries(index.templates[stack.artifact_id])
        return entries is not None and analytics_lists_pack(entries, pack)

    root_stacks = [s for g in groups if g.kind == "stack" for s in g.stacks]
    results: list[GroupResult] = []
    for group in groups:
        problems = list(global_problems)
        for pack in packs:
            if group.name in packs_in_report[pack] or any(listed(s, pack) for s in root_stacks):
                continue
            # An app without top-level stacks has nowhere else to record an App registration.
            if not root_stacks and any(listed(s, pack) for s in group.stacks):
                continue
            problems.append(
                f"cannot prove cdk-nag pack '{pack}' checked {group.path}: it reported no finding there and no "
                f"top-level stack carries AWS::CDK::Metadata analytics listing policyValidation.{pack}, so "
                "nothing shows it is registered on the App (not registered, registered only on a Stage - which "
                "CDK never runs - or version reporting disabled). Register it with "
                "Validations.of(app).add_plugins(...) and keep version reporting on."
            )
        results.append(GroupResult(group, _sorted(findings[group.name]), problems))
    return Analysis(results, global_problems)


def _sorted(findings: list[Finding]) -> list[Finding]:
    return sorted(findings, key=lambda f: (f.status != "violation", f.classname, f.rule_id, f.construct_path))


# ---------------------------------------------------------------- output


def summary_line(result: GroupResult) -> str:
    line = f"{result.group.name}: {len(result.violations)} violations, {len(result.acknowledged)} acknowledged"
    if result.problems:
        line += " - NOT PROVEN VALIDATED"
    return line


def junit_tree(result: GroupResult) -> ET.ElementTree:
    group = result.group
    suites = ET.Element("testsuites", name="cdk-nag")
    suite = ET.SubElement(suites, "testsuite", name=f"cdk-nag.{group.name}")
    props = ET.SubElement(suite, "properties")
    ET.SubElement(props, "property", name="constructPath", value=group.path)
    ET.SubElement(props, "property", name="assembly", value=group.assembly)
    cases = 0
    failures = 0
    skipped = 0
    if result.problems:
        # The stage is reported red when nothing proves it was checked, not "no findings".
        case = ET.SubElement(suite, "testcase", classname=group.name, name="cdk-nag validated this stage", time="0")
        failure = ET.SubElement(case, "failure", message=result.problems[0], type="unproven")
        failure.text = "\n".join(result.problems)
        cases += 1
        failures += 1
    elif not result.findings:
        ET.SubElement(suite, "testcase", classname=group.name, name="no cdk-nag findings", time="0")
        cases += 1
    for f in result.findings:
        case = ET.SubElement(suite, "testcase", classname=f.classname, name=f.name, time="0")
        cases += 1
        if f.status == "violation":
            failure = ET.SubElement(case, "failure", message=f.message or f.rule_id, type=f.severity or "error")
            failure.text = f"{f.rule_id} at {f.construct_path}\n{f.detail}".strip()
            failures += 1
        else:
            skip = ET.SubElement(case, "skipped", message=f"acknowledged: {f.reason}")
            skip.text = f.detail or None
            skipped += 1
    for element in (suites, suite):
        element.set("tests", str(cases))
        element.set("failures", str(failures))
        element.set("errors", "0")
        element.set("skipped", str(skipped))
    suite.set("time", "0")
    ET.indent(suites)
    return ET.ElementTree(suites)


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def write_junit(results: Sequence[GroupResult], out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    # Drop reports of stages that no longer exist so a renamed stage cannot leave a green file behind.
    for old in out_dir.glob(f"{JUNIT_PREFIX}*.xml"):
        old.unlink()
    written = []
    for result in results:
        path = out_dir / f"{JUNIT_PREFIX}{_safe(result.group.name)}.xml"
        junit_tree(result).write(path, encoding="utf-8", xml_declaration=True)
        written.append(path)
    return written


def _write_broken_assembly_junit(out_dir: Path, problem: str) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{JUNIT_PREFIX}*.xml"):
        old.unlink()
    suites = ET.Element("testsuites", name="cdk-nag", tests="1", failures="1", errors="0", skipped="0")
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="cdk-nag.assembly",
        tests="1",
        failures="1",
        errors="0",
        skipped="0",
        time="0",
    )
    case = ET.SubElement(suite, "testcase", classname="assembly", name="cloud assembly readable", time="0")
    ET.SubElement(case, "failure", message=problem, type="unproven").text = problem
    ET.indent(suites)
    ET.ElementTree(suites).write(out_dir / f"{JUNIT_PREFIX}assembly.xml", encoding="utf-8", xml_declaration=True)


def _gate_text(result: GroupResult) -> str:
    lines = [summary_line(result)]
    for problem in result.problems:
        lines.append(f"  NOT PROVEN: {problem}")
    for f in result.violations:
        where = f" ({f.logical_id})" if f.logical_id else ""
        lines.append(f"  VIOLATION {f.rule_id} at {f.construct_path}{where}: {f.message}")
    if result.violations:
        lines.append(
            "  Fix the resource, or acknowledge a finding with "
            "Validations.of(construct).acknowledge(Acknowledgment(id=<rule id>, reason=<why>))."
        )
    return "\n".join(lines)


# ---------------------------------------------------------------- CLI


def _select(analysis: Analysis, stages: Sequence[str] | None) -> list[GroupResult] | str:
    if not stages:
        return analysis.groups
    groups = [r.group for r in analysis.groups]
    selected = []
    for wanted in stages:
        group = find_group(groups, wanted)
        if group is None:
            known = ", ".join(g.name for g in groups) or "none"
            return f"stage '{wanted}' is not in the cloud assembly (known: {known})"
        selected.append(next(r for r in analysis.groups if r.group is group))
    return selected


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="nag_report",
        description="cdk-nag results of a cloud assembly as per-stage JUnit reports and gates.",
    )
    parser.add_argument("command", choices=("junit", "gate", "summary"))
    parser.add_argument("--assembly", type=Path, default=Path("cdk.out"), help="cloud assembly directory")
    parser.add_argument("--out", type=Path, default=Path("reports/nag"), help="JUnit output directory")
    parser.add_argument("--stage", action="append", help="stage name, construct path or assembly directory")
    parser.add_argument("--pack", action="append", help=f"cdk-nag pack name (default: {', '.join(DEFAULT_PACKS)})")
    args = parser.parse_args(argv)
    packs = tuple(args.pack or DEFAULT_PACKS)

    if args.command == "gate" and not args.stage:
        parser.error("gate needs --stage (name each stage explicitly so a renamed one cannot pass silently)")
    try:
        if not (args.assembly / MANIFEST_FILE).is_file():
            raise AssemblyError(f"{args.assembly} is not a cloud assembly ({MANIFEST_FILE} missing)")
        analysis = analyze(args.assembly, packs)
    except (AssemblyError, OSError, ValueError) as exc:
        print(f"nag_report: {exc}", file=sys.stderr)
        if args.command == "junit":
            _write_broken_assembly_junit(args.out, str(exc))
        return EXIT_USAGE

    selected = _select(analysis, args.stage)
    if isinstance(selected, str):
        print(f"nag_report: {selected}", file=sys.stderr)
        return EXIT_USAGE

    if args.command == "junit":
        write_junit(selected, args.out)
    for result in selected:
        if args.command == "gate":
            print(_gate_text(result), file=sys.stdout if result.passed else sys.stderr)
        else:
            print(summary_line(result))
            # cdk synth prints violations itself, but not why a stage counts as unchecked.
            for problem in result.problems:
                print(f"  NOT PROVEN: {problem}", file=sys.stderr)
    if args.command == "summary":
        return EXIT_OK
    return EXIT_OK if all(r.passed for r in selected) else EXIT_FINDINGS


if __name__ == "__main__":
    sys.exit(main())
