"""CodeBuild report groups: pytest results and the per-stage cdk-nag results, as JUnit."""

from __future__ import annotations

from aws_cdk import RemovalPolicy
from aws_cdk import aws_codebuild as codebuild
from constructs import Construct

from shared.config import AppConfig

# Paths written by `make test` and `make synth` (see the Makefile).
REPORTS_DIR = "reports"
PYTEST_FILES = ["pytest.xml"]
NAG_FILES = ["nag/*.xml"]


class ReportGroups(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig) -> None:
        super().__init__(scope, construct_id)
        t = cfg.tooling
        self._arn_base = f"arn:{t.partition}:codebuild:{t.region}:{t.account}:report-group/"
        self.names = {"tests": f"{cfg.prefix}-pipeline-pytest", "nag": f"{cfg.prefix}-pipeline-cdk-nag"}
        self.tests = codebuild.ReportGroup(
            self,
            "Tests",
            report_group_name=self.names["tests"],
            type=codebuild.ReportGroupType.TEST,
            removal_policy=RemovalPolicy.DESTROY,
        )
        self.nag = codebuild.ReportGroup(
            self,
            "CdkNag",
            report_group_name=self.names["nag"],
            type=codebuild.ReportGroupType.TEST,
            removal_policy=RemovalPolicy.DESTROY,
        )

    @property
    def arns(self) -> list[str]:
        return [self._arn_base + name for name in self.names.values()]

    def build_spec_reports(self) -> dict[str, dict[str, object]]:
        """The buildspec `reports` section. Keyed by ARN so CodeBuild uses these groups instead of creating
        its own (which would need codebuild:CreateReportGroup). The ARNs are spelled out from config because
        buildspec keys cannot be CloudFormation tokens."""
        return {
            self._arn_base + self.names["tests"]: _junit(PYTEST_FILES),
            self._arn_base + self.names["nag"]: _junit(NAG_FILES),
        }


def _junit(files: list[str]) -> dict[str, object]:
    return {"files": files, "base-directory": REPORTS_DIR, "file-format": "JUNITXML"}
