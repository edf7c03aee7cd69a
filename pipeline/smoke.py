"""The producer stage's post step: ``ddb-lake smoke`` proves, after every producer deployment, that a change in
account A reaches account B's lake, flattened and right. Also the roles it assumes in A and B.

Trust, precisely: the roles in A and B trust the tooling account's root principal with the condition
``ArnEquals aws:PrincipalArn = arn:aws:iam::<tooling>:role/<prefix>-smoke-step-<region>``, the step's CodeBuild
role, whose name is fixed for that reason. A root principal alone would let any principal of the tooling account
that is allowed sts:AssumeRole in; the condition narrows it to that one role (an assumed-role session's
``aws:PrincipalArn`` is its role's ARN). The role ARN is not the principal itself because IAM stores a role
principal as the role's unique ID: recreating the step role would silently break the trust, and naming a role that
does not exist yet is refused (the sandbox stage deploys without any pipeline).
"""

from __future__ import annotations

import math

from aws_cdk import Duration, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from constructs import Construct

from consumer.smoke import SmokeReaderRole
from consumer.stack import DataLakeStack
from pipeline.toolchain import node_runtime_version
from producer.capture.smoke import SmokeWriterRole
from producer.stack import ProducerStack
from shared import naming
from shared.config import AppConfig
from shared.smoke_targets import smoke_tables, smoke_timeout_seconds, smoke_views_seconds

STEP_ID = "SmokeTest"
SMOKE_COMMAND = "ddb-lake smoke --use-smoke-roles"
# Python as pipeline/stack.py's steps; Node pinned like every other project of the pipeline (nothing floats).
RUNTIME_VERSIONS = {"python": "3.12", "nodejs": node_runtime_version()}
INSTALL_MINUTES = 15


class SmokeTest:
    """Built before the stages are added: ``add_reader``/``add_writers`` put the roles into the stage stacks
    (before ``add_stage`` synthesizes them), ``post`` is the step list for the producer stage."""

    def __init__(self, scope: Construct, cfg: AppConfig, source: pipelines.IFileSetProducer) -> None:
        self.cfg = cfg
        self.tables = smoke_tables(cfg)
        self.trusted = iam.AccountPrincipal(cfg.tooling.account).with_conditions(
            {"ArnEquals": {"aws:PrincipalArn": naming.tooling(cfg).smoke_step_role_arn}}
        )
        self.step: pipelines.CodeBuildStep | None = None
        if not self.tables:
            return  # nothing can be smoke-tested (see shared.smoke_targets.smoke_problem): no roles, no step
        lake = naming.lake(cfg)
        targets = [naming.table(cfg, spec).smoke_writer_role_arn for spec in self.tables] + [lake.smoke_reader_role_arn]
        tooling = naming.tooling(cfg)
        # The step's project gets the role's (fixed) name too, so the role's trust can name the project without a
        # reference to it (the project refers to the role: a reference back would be a cycle).
        self.project_name = tooling.smoke_step_role
        stack = Stack.of(scope)
        project_arn = stack.format_arn(service="codebuild", resource="project", resource_name=self.project_name)
        build_arns = stack.format_arn(service="codebuild", resource="build", resource_name=f"{self.project_name}:*")
        # Under the pipeline construct, so the pipeline's own acknowledgments cover what CDK Pipelines adds to it.
        self.role = iam.Role(
            scope,
            "SmokeTestRole",
            role_name=tooling.smoke_step_role,
            description="The pipeline's ddb-lake smoke step: may assume the smoke roles in the producer and consumer",
            # Confused-deputy conditions: CodeBuild may assume this role only for this account's smoke project.
            # CodeBuild's service-role page shows the trust with aws:SourceAccount/aws:SourceArn
            # (https://docs.aws.amazon.com/codebuild/latest/userguide/setting-up-service-role.html), and CloudTrail
            # shows aws:SourceArn set when CodeBuild assumes a project's role, but absent from a build's own
            # AssumeRole calls (awslabs/aws-deployment-framework pull request 247): so the smoke roles in A and B
            # cannot use it and keep their aws:PrincipalArn condition. The project's and its builds' ARNs both match.
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com").with_conditions(
                {
                    "StringEquals": {"aws:SourceAccount": cfg.tooling.account},
                    "ArnLike": {"aws:SourceArn": [project_arn, build_arns]},
                }
            ),
        )
        self.role.add_to_policy(
            iam.PolicyStatement(sid="AssumeTheSmokeRoles", actions=["sts:AssumeRole"], resources=targets)
        )
        minutes = max(
            math.ceil((smoke_timeout_seconds(cfg, spec) + smoke_views_seconds(cfg)) / 60) for spec in self.tables
        )
        self.step = pipelines.CodeBuildStep(
            STEP_ID,
            input=source,
            project_name=self.project_name,
            role=self.role,
            # pip installs the pinned versions from pyproject.toml, and with them the ddb-lake script.
            install_commands=["python -m pip install --quiet -e ."],
            commands=[SMOKE_COMMAND],
            partial_build_spec=codebuild.BuildSpec.from_object(
                {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
            ),
            timeout=Duration.minutes(minutes + INSTALL_MINUTES),
        )

    def add_reader(self, data_lake: DataLakeStack) -> None:
        if self.tables:
            SmokeReaderRole(
                data_lake,
                "SmokeReader",
                lake=naming.lake(self.cfg),
                tables=[(naming.table(self.cfg, spec), spec.partition_key) for spec in self.tables],
                key=data_lake.key,
                trusted=self.trusted,
                lakehouse=self.cfg.lakehouse.enabled,
            )

    def add_writers(self, producer: ProducerStack) -> None:
        for spec in self.tables:
            capture = producer.captures[spec.name]
            SmokeWriterRole(
                capture,
                "SmokeWriter",
                names=capture.names,
                table_key=None if spec.existing_table_name else capture.table.encryption_key,
                trusted=self.trusted,
            )

    @property
    def post(self) -> list[pipelines.Step]:
        return [self.step] if self.step else []
