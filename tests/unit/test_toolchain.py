"""The tool versions the pipeline installs are the ones package.json pins, and only usable ones."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.toolchain import STANDARD_7_0_NODEJS, cdk_assets_version, cdk_cli_version, node_runtime_version


def _package_json(tmp_path: Path, **dev_dependencies: object) -> Path:
    path = tmp_path / "package.json"
    path.write_text(json.dumps({"devDependencies": dev_dependencies}))
    return path


def test_reads_the_pinned_versions(tmp_path):
    path = _package_json(tmp_path, **{"aws-cdk": "2.1148.1", "cdk-assets": "3.3.1", "node": "24.21.0"})
    assert cdk_cli_version(path) == "2.1148.1"
    assert cdk_assets_version(path) == "3.3.1"
    assert node_runtime_version(path) == "24"


@pytest.mark.parametrize("version", ["^2.1148.1", "latest", "3.0.0", "*", None])
def test_refuses_cli_ranges_latest_and_3x(tmp_path, version):
    with pytest.raises(ValueError, match=r"pin an exact 2\.x version"):
        cdk_cli_version(_package_json(tmp_path, **{"aws-cdk": version}))


@pytest.mark.parametrize("version", ["^3.3.1", "~3.3.1", "latest", "3", "3.x", "", None])
def test_refuses_cdk_assets_ranges_and_latest(tmp_path, version):
    # Unpinned, CDK Pipelines' asset-publishing project would run `npm install -g cdk-assets@latest`.
    with pytest.raises(ValueError, match="pin an exact version"):
        cdk_assets_version(_package_json(tmp_path, **{"cdk-assets": version}))


@pytest.mark.parametrize("version", ["16.20.2", "21.7.3", "25.0.0", "^24.21.0", "24", None])
def test_refuses_a_node_the_build_image_does_not_offer(tmp_path, version):
    with pytest.raises(ValueError, match="build image offers"):
        node_runtime_version(_package_json(tmp_path, node=version))


def test_repository_pins_a_2x_cli_a_cdk_assets_and_a_node_the_image_offers():
    assert cdk_cli_version().startswith("2.1148.")
    assert cdk_assets_version()
    assert node_runtime_version() in STANDARD_7_0_NODEJS
