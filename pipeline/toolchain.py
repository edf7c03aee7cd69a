"""Versions the pipeline must use, read from the files that pin them for developers.

The pipeline installs its npm tools itself (CDK Pipelines writes the install commands), so the versions come
from ``package.json``: what a developer runs locally after ``npm ci`` is what the pipeline runs.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PACKAGE_JSON = ROOT / "package.json"
# The CDK CLI line that reads aws-cdk-lib 2.x cloud assemblies; 3.x rejects them.
_SUPPORTED_CLI = re.compile(r"^2\.\d+\.\d+$")
_EXACT = re.compile(r"^\d+\.\d+\.\d+$")
# Node.js majors the pipeline's build image (CodeBuild aws/codebuild/standard:7.0) offers as runtime-versions:
# https://docs.aws.amazon.com/codebuild/latest/userguide/available-runtimes.html (nodejs 18, 20, 22, 24 on
# "Ubuntu 22.04 standard:7.0"; the image's own list: aws/aws-codebuild-docker-images ubuntu/standard/7.0/runtimes.yml).
STANDARD_7_0_NODEJS = ("18", "20", "22", "24")


def _dev_dependency(package_json: Path, name: str) -> Any:
    data = json.loads(package_json.read_text())
    return data.get("devDependencies", {}).get(name) or data.get("dependencies", {}).get(name)


def cdk_cli_version(package_json: Path = PACKAGE_JSON) -> str:
    """The exact aws-cdk CLI version from package.json; a range or a 3.x version is refused."""
    version = _dev_dependency(package_json, "aws-cdk")
    if not isinstance(version, str) or not _SUPPORTED_CLI.match(version):
        raise ValueError(
            f"{package_json}: devDependencies.aws-cdk = {version!r}; pin an exact 2.x version "
            "(e.g. 2.1148.1): CDK Pipelines installs this CLI for self-mutation, and npm's 'latest' (3.x) "
            "cannot read this app's cloud assembly"
        )
    return version


def cdk_assets_version(package_json: Path = PACKAGE_JSON) -> str:
    """The exact cdk-assets version from package.json; without it CDK Pipelines installs 'cdk-assets@latest'."""
    version = _dev_dependency(package_json, "cdk-assets")
    if not isinstance(version, str) or not _EXACT.match(version):
        raise ValueError(
            f"{package_json}: devDependencies.cdk-assets = {version!r}; pin an exact version (e.g. 3.3.1): the "
            "pipeline's asset-publishing project installs it, and 'latest' changes under the pipeline (4.7.3 "
            "rejects this app's asset manifests)"
        )
    return version


def node_runtime_version(package_json: Path = PACKAGE_JSON) -> str:
    """The Node.js major of package.json's pinned ``node`` (the one developers run), as a CodeBuild runtime-versions
    value; refused unless the pipeline's build image offers it."""
    version = _dev_dependency(package_json, "node")
    major = version.split(".", 1)[0] if isinstance(version, str) and _EXACT.match(version) else None
    if major not in STANDARD_7_0_NODEJS:
        raise ValueError(
            f"{package_json}: devDependencies.node = {version!r}; pin an exact version whose major is one the "
            f"pipeline's build image offers ({', '.join(STANDARD_7_0_NODEJS)})"
        )
    return major


# The asset-publishing project's cdk-assets: `npm ci` of this folder's lock file (copied into the cloud assembly,
# the project's only input), so no transitive dependency floats.
CDK_ASSETS_LOCK_DIR = ROOT / "pipeline" / "cdk_assets"


def cdk_assets_lock(package_json: Path = PACKAGE_JSON, lock_dir: Path = CDK_ASSETS_LOCK_DIR) -> Path:
    """The folder whose package-lock.json pins cdk-assets and all its dependencies; refused unless it pins exactly the
    version package.json gives developers."""
    version = cdk_assets_version(package_json)
    declared = json.loads((lock_dir / "package.json").read_text()).get("dependencies", {}).get("cdk-assets")
    lock = json.loads((lock_dir / "package-lock.json").read_text())
    locked = lock.get("packages", {}).get("node_modules/cdk-assets", {}).get("version")
    if not declared == locked == version:
        raise ValueError(
            f"{lock_dir}: cdk-assets = {declared!r} (package.json), {locked!r} (package-lock.json); both must be "
            f"{version!r}, the version {package_json} pins: run `npm install --package-lock-only --ignore-scripts` "
            "there after changing it"
        )
    return lock_dir
