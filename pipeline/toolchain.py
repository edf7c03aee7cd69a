"""Versions the pipeline must use, read from the files that pin them for developers."""

from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The CDK CLI line that reads aws-cdk-lib 2.x cloud assemblies; 3.x rejects them.
_SUPPORTED_CLI = re.compile(r"^2\.\d+\.\d+$")


def cdk_cli_version(package_json: Path = ROOT / "package.json") -> str:
    """The exact aws-cdk CLI version from package.json; a range or a 3.x version is refused."""
    data = json.loads(package_json.read_text())
    version = data.get("devDependencies", {}).get("aws-cdk") or data.get("dependencies", {}).get("aws-cdk")
    if not isinstance(version, str) or not _SUPPORTED_CLI.match(version):
        raise ValueError(
            f"{package_json}: devDependencies.aws-cdk = {version!r}; pin an exact 2.x version "
            "(e.g. 2.1148.1): CDK Pipelines installs this CLI for self-mutation, and npm's 'latest' (3.x) "
            "cannot read this app's cloud assembly"
        )
    return version
