"""Findings of one group -> one JUnit file: violations are failures, acknowledgments are skipped with their reason."""

import re
from pathlib import Path
from xml.etree import ElementTree as ET

from pipeline.nag.findings import Finding

PREFIX = "cdk-nag-"


def suite(name: str, path: str, findings: list[Finding], problems: list[str], ids: dict[str, str]) -> ET.Element:
    suites = ET.Element("testsuites", name="cdk-nag")
    test_suite = ET.SubElement(suites, "testsuite", name=f"cdk-nag.{name}", time="0")
    ET.SubElement(ET.SubElement(test_suite, "properties"), "property", name="constructPath", value=path)
    if problems:  # red when the results prove nothing, rather than "no findings"
        case = ET.SubElement(test_suite, "testcase", classname=name, name="cdk-nag results are usable", time="0")
        ET.SubElement(case, "failure", message=problems[0], type="unusable").text = "\n".join(problems)
    elif not findings:
        ET.SubElement(test_suite, "testcase", classname=name, name="no cdk-nag findings", time="0")
    for f in findings:
        # The classname names the pack, so a report viewer groups findings by pack within the stage.
        case = ET.SubElement(test_suite, "testcase", classname=f"{name}/{f.pack}", name=f"{f.rule} {f.path}", time="0")
        if f.acknowledged:
            ET.SubElement(case, "skipped", message=f"acknowledged: {f.message}").text = f.detail or None
        else:
            text = f"{f.rule} at {f.path}" + (f"\nlogical id: {ids[f.path]}" if f.path in ids else "")
            ET.SubElement(case, "failure", message=f.message or f.rule, type=f.severity).text = text
    for element in (suites, test_suite):
        for key, xpath in (("tests", ""), ("failures", "/failure"), ("errors", "/error"), ("skipped", "/skipped")):
            element.set(key, str(len(test_suite.findall(f"testcase{xpath}"))))
    ET.indent(suites)
    return suites


def write(out_dir: Path, suites: dict[str, ET.Element]) -> None:
    """One file per group; old files go first so a renamed stage cannot leave a green report behind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for old in out_dir.glob(f"{PREFIX}*.xml"):
        old.unlink()
    for name, element in suites.items():
        file = out_dir / f"{PREFIX}{re.sub(r'[^A-Za-z0-9_.-]+', '_', name)}.xml"
        ET.ElementTree(element).write(file, encoding="utf-8", xml_declaration=True)
