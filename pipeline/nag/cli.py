"""The command line: ``junit``, ``gate`` and ``summary`` over the groups (stages) of a cloud assembly."""

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline.nag import assembly, findings, junit
from pipeline.nag.assembly import AssemblyError, Group
from pipeline.nag.findings import Finding

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2
HINT = "  Fix it, or acknowledge it: Validations.of(construct).acknowledge(Acknowledgment(id=<rule>, reason=<why>))"


@dataclass(frozen=True)
class Result:
    group: Group
    findings: list[Finding]
    problems: list[str]  # why the results prove nothing; shared by every group

    @property
    def violations(self) -> list[Finding]:
        return [f for f in self.findings if not f.acknowledged]

    @property
    def passed(self) -> bool:
        return not self.problems and not self.violations

    def summary(self) -> str:
        line = f"{self.group.name}: {len(self.violations)} violations, {len(self.findings) - len(self.violations)}"
        return line + " acknowledged" + (" - RESULTS UNUSABLE" if self.problems else "")


def analyze(root: Path) -> tuple[list[Result], dict[str, str]]:
    """Every group's findings, and construct path -> logical id."""
    groups, metadata = assembly.read(root)
    report, problems = findings.load_report(root)
    reported, crashed = findings.from_report(report)
    problems += crashed
    per_group: dict[str, list[Finding]] = {g.name: [] for g in groups}
    for f in findings.dedupe([*reported, *findings.from_metadata(metadata, report)]):
        group = assembly.group_of(groups, f.path)
        if group is not None:
            per_group[group.name].append(f)
        elif not f.acknowledged:  # a violation no group owns must fail every group
            problems.append(f"{f.pack} finding {f.rule} at {f.path!r} belongs to no stack or stage")
    return [Result(g, per_group[g.name], problems) for g in groups], assembly.logical_ids(metadata)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="nag_report", description="cdk-nag results per stage: JUnit and gate.")
    parser.add_argument("command", choices=("junit", "gate", "summary"))
    parser.add_argument("--assembly", type=Path, default=Path("cdk.out"), help="cloud assembly directory")
    parser.add_argument("--out", type=Path, default=Path("reports/nag"), help="JUnit output directory")
    parser.add_argument("--stage", action="append", default=[], help="name, construct path or assembly directory")
    args = parser.parse_args(argv)
    if args.command == "gate" and not args.stage:
        parser.error("gate needs --stage (named explicitly, so a renamed stage cannot pass unnoticed)")
    try:
        results, ids = analyze(args.assembly)
    except (AssemblyError, OSError, ValueError) as exc:
        print(f"nag_report: {exc}", file=sys.stderr)
        if args.command == "junit":
            junit.write(args.out, {"assembly": junit.suite("assembly", str(args.assembly), [], [str(exc)], {})})
        return EXIT_USAGE

    by_group = {r.group: r for r in results}
    wanted = [assembly.find(list(by_group), stage) for stage in args.stage]
    if None in wanted:
        unknown = args.stage[wanted.index(None)]
        known = ", ".join(g.name for g in by_group)
        print(f"nag_report: stage {unknown!r} is not in the cloud assembly (known: {known})", file=sys.stderr)
        return EXIT_USAGE
    selected = [by_group[g] for g in wanted if g is not None] or results

    if args.command == "junit":
        suites = {r.group.name: junit.suite(r.group.name, r.group.path, r.findings, r.problems, ids) for r in selected}
        junit.write(args.out, suites)
    for r in selected:
        lines = [r.summary(), *(f"  UNUSABLE: {p}" for p in r.problems)]
        if args.command == "gate" and r.violations:
            lines += [f"  VIOLATION {f.rule} ({f.pack}) at {f.path}: {f.message}" for f in r.violations] + [HINT]
        print("\n".join(lines), file=sys.stdout if r.passed or args.command == "summary" else sys.stderr)
    if args.command == "summary":
        return EXIT_OK
    return EXIT_OK if all(r.passed for r in selected) else EXIT_FINDINGS
