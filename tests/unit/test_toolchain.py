"""The CLI version the pipeline installs is the one package.json pins, and only a usable one."""

from __future__ import annotations

import json

import pytest

from pipeline.toolchain import cdk_cli_version


def test_reads_the_pinned_version(tmp_path):
    (tmp_path / "package.json").write_text(json.dumps({"devDependencies": {"aws-cdk": "2.1148.1"}}))
    assert cdk_cli_version(tmp_path / "package.json") == "2.1148.1"


@pytest.mark.parametrize("version", ["^2.1148.1", "latest", "3.0.0", "*", None])
def test_refuses_ranges_latest_and_3x(tmp_path, version):
    (tmp_path / "package.json").write_text(json.dumps({"devDependencies": {"aws-cdk": version}}))
    with pytest.raises(ValueError, match=r"pin an exact 2\.x version"):
        cdk_cli_version(tmp_path / "package.json")


def test_repository_pins_a_2x_cli():
    assert cdk_cli_version().startswith("2.1148.")
