"""The smoke test's reach into account B: a probe Lambda that runs in B, and the reader role the pipeline's smoke
step assumes, which may only invoke that probe.

Why a probe: Athena reads with the caller's S3 permissions, and S3 grants by key prefix, not by item, so any role
allowed to read a table's objects can read every item in them. The probe (``lambdas/smoke_probe/handler.py``) reads
``data/<table>/`` itself and returns only the lines whose partition key is the smoke test's own key (a value starting
with ``naming.SMOKE_KEY_PREFIX``; it refuses any other), and runs ``SELECT * FROM <view> LIMIT 0`` on each of the
table's views, and each named query wrapped the same way, through the workgroup, returning Athena's outcome. What
the tooling account can read of B afterwards: the smoke items' own change lines, the names of the objects holding
them, and whether each view and named query compiles (with Athena's error message if not); no object, no query
result, no other item.

The probe is named like the reader role (``LakeNames.smoke_reader_role``): the only principal allowed to invoke it,
so both names come from one place. Whom the reader role trusts is decided by ``pipeline/smoke.py``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from lambdas.transform.flatten import top_level_column
from shared import naming
from shared.key_policies import allow_cloudwatch_logs, log_group_arn
from shared.nag import HIPAA, NIST, REGULATORY, SERVERLESS, acknowledge, acknowledge_rule, in_packs
from shared.naming import LakeNames, TableNames

PROBE_DIR = Path(__file__).resolve().parents[1] / "lambdas" / "smoke_probe"
PROBE_TIMEOUT = Duration.minutes(5)
PROBE_MEMORY_MB = 512
LOG_RETENTION = logs.RetentionDays.ONE_YEAR


def views_of(stack: Stack, names: TableNames) -> list[str]:
    """The table's views that ``stack`` defines (Glue tables of type VIRTUAL_VIEW), in the order naming lists them."""
    wanted = [names.history_view, names.current_view, names.raw_history_view, names.raw_current_view]
    defined = set()
    for node in stack.node.find_all():
        if isinstance(node, glue.CfnTable):
            table_input = stack.resolve(node.table_input)
            if table_input.get("tableType") == "VIRTUAL_VIEW":
                defined.add(table_input.get("name"))
    return [view for view in wanted if view in defined]


def named_queries_of(stack: Stack, names: TableNames) -> list[str]:
    """The names of the table's named (saved) queries that ``stack`` defines (consumer/workgroup.py names them
    "<glue table>: ...")."""
    return sorted(
        str(node.name)
        for node in stack.node.find_all()
        if isinstance(node, athena.CfnNamedQuery) and str(node.name).startswith(f"{names.glue_table}: ")
    )


class SmokeReaderRole(Construct):
    """``tables``: each smoke-tested table's names and its partition-key attribute; ``lakehouse``: whether the
    lakehouse is on (its views then read Iceberg tables, which the probe may have to get created)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: LakeNames,
        tables: Sequence[tuple[TableNames, str]],
        key: kms.Key,
        trusted: iam.IPrincipal,
        lakehouse: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.function_name = lake.smoke_reader_role
        self.config = {
            names.key: {
                "root": names.root(naming.DATA),
                "column": top_level_column(partition_key),
                "views": views_of(stack, names),
                "queries": named_queries_of(stack, names),
                "lakehouse": {
                    "root": names.lakehouse_root,
                    "tables": [names.iceberg_history_table, names.iceberg_state_table],
                    "state_machine": lake.state_machine_arn(names.maintenance_state_machine),
                }
                if lakehouse
                else None,
            }
            for names, partition_key in tables
        }
        log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=log_group_name,
            encryption_key=key,
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # CloudWatch Logs may use the lake key for this one group only.
        allow_cloudwatch_logs(
            key, stack, "CloudWatchLogsForTheSmokeProbe", "ArnEquals", log_group_arn(stack, log_group_name)
        )
        self.probe_role = iam.Role(
            self,
            "ProbeRole",
            # No aws:SourceAccount/SourceArn here: Lambda does not document them for assuming an execution role, and
            # only this stack's function can be given this role (iam:PassRole in B).
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description="ddb-lake smoke probe: reads the smoke tables' data/ objects and compiles their views in B",
        )
        iam.ManagedPolicy(self, "ProbePolicy", document=self._probe_policy(stack, lake, key), roles=[self.probe_role])
        self.function = lambda_.Function(
            self,
            "Probe",
            function_name=self.function_name,
            description="ddb-lake smoke: finds the smoke items' lines in the lake and compiles the views",
            runtime=lambda_.Runtime.PYTHON_3_14,
            architecture=lambda_.Architecture.ARM_64,
            # Plain files, standard library and boto3 only: no bundling, no Docker.
            code=lambda_.Code.from_asset(str(PROBE_DIR), exclude=["**/__pycache__", "**/*.pyc"]),
            handler="handler.handler",
            memory_size=PROBE_MEMORY_MB,
            timeout=PROBE_TIMEOUT,
            role=self.probe_role,
            log_group=self.log_group,
            environment={
                "BUCKET": lake.bucket,
                "DATABASE": lake.database,
                "WORKGROUP": lake.workgroup,
                "SMOKE_PREFIX": naming.SMOKE_KEY_PREFIX,
                "TABLES": json.dumps(self.config, sort_keys=True),
            },
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=lake.smoke_reader_role,
            description="ddb-lake smoke: may only invoke the smoke probe in B; assumed by the pipeline step",
            assumed_by=trusted,
            max_session_duration=Duration.hours(1),
        )
        iam.ManagedPolicy(
            self,
            "Policy",
            document=iam.PolicyDocument(
                statements=[
                    iam.PolicyStatement(
                        sid="InvokeTheSmokeProbeOnly",
                        actions=["lambda:InvokeFunction"],
                        resources=[self.function.function_arn],
                    )
                ]
            ),
            roles=[self.role],
        )
        self._acknowledge(lake)

    def _lakehouses(self) -> list[dict[str, Any]]:
        return [table["lakehouse"] for table in self.config.values() if table["lakehouse"]]

    def _probe_policy(self, stack: Stack, lake: LakeNames, key: kms.IKey) -> iam.PolicyDocument:
        # Athena plans a query of an Iceberg view from the table's metadata files (LIMIT 0 included): the probe
        # reads the lakehouse tables' folders as it reads data/ (it returns no data to the caller either way).
        lakehouses = self._lakehouses()
        roots = [table["root"] for table in self.config.values()] + [h["root"] for h in lakehouses]
        glue_arn = f"arn:{lake.partition}:glue:{lake.region}:{lake.account}"
        # Only while a lakehouse table is missing (the first deployment): one maintenance run per smoke run.
        first_run = iam.PolicyStatement(
            sid="StartTheFirstLakehouseRun",
            actions=["states:StartExecution"],
            resources=[h["state_machine"] for h in lakehouses],
        )
        return iam.PolicyDocument(
            statements=[
                *([first_run] if lakehouses else []),
                iam.PolicyStatement(
                    sid="ListSmokeTablesDataOnly",
                    actions=["s3:ListBucket"],
                    resources=[lake.bucket_arn],
                    conditions={"StringLike": {"s3:prefix": [root + "*" for root in roots]}},
                ),
                iam.PolicyStatement(
                    sid="ReadSmokeTablesData",
                    actions=["s3:GetObject"],
                    resources=[f"{lake.bucket_arn}/{root}*" for root in roots],
                ),
                iam.PolicyStatement(
                    sid="RunViewQueriesInTheWorkgroup",
                    actions=[
                        "athena:StartQueryExecution",
                        "athena:GetQueryExecution",
                        "athena:StopQueryExecution",
                        # The named queries' SQL, read from the workgroup by name.
                        "athena:ListNamedQueries",
                        "athena:BatchGetNamedQuery",
                    ],
                    resources=[
                        stack.format_arn(
                            service="athena", region=lake.region, resource="workgroup", resource_name=lake.workgroup
                        )
                    ],
                ),
                # Athena reads the views' and their tables' definitions from the catalog.
                iam.PolicyStatement(
                    sid="ReadTheLakeCatalog",
                    actions=["glue:GetDatabase", "glue:GetTable", "glue:GetPartitions"],
                    resources=[
                        f"{glue_arn}:catalog",
                        f"{glue_arn}:database/{lake.database}",
                        f"{glue_arn}:table/{lake.database}/*",
                    ],
                ),
                # The workgroup writes every query's results (for LIMIT 0, a header) to its results bucket.
                iam.PolicyStatement(
                    sid="WriteQueryResults",
                    actions=["s3:GetBucketLocation", "s3:ListBucket"],
                    resources=[f"arn:{lake.partition}:s3:::{lake.results_bucket}"],
                ),
                iam.PolicyStatement(
                    sid="WriteQueryResultObjects",
                    actions=["s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"],
                    resources=[f"arn:{lake.partition}:s3:::{lake.results_bucket}/*"],
                ),
                iam.PolicyStatement(
                    sid="LakeKeyViaS3",
                    actions=["kms:Decrypt", "kms:GenerateDataKey"],
                    resources=[key.key_arn],
                    conditions={"StringEquals": {"kms:ViaService": f"s3.{lake.region}.amazonaws.com"}},
                ),
                iam.PolicyStatement(
                    sid="WriteOwnLogs",
                    actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                    resources=[self.log_group.log_group_arn],
                ),
            ]
        )

    def _acknowledge(self, lake: LakeNames) -> None:
        for root in (table["root"] for table in self.config.values()):
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{lake.bucket_arn}/{root}*]",
                "Firehose names each data object at delivery time, so the smoke probe can only read them by prefix: "
                "the wildcard is the object keys under one smoke-tested table's data/ folder (GetObject only). The "
                "probe returns only the smoke test's own lines to the tooling account.",
            )
        for root in (h["root"] for h in self._lakehouses()):
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{lake.bucket_arn}/{root}*]",
                "Athena names an Iceberg table's metadata and data files as it commits, and plans a query of the "
                "table's views (LIMIT 0 included) from its metadata files: the wildcard is one smoke-tested table's "
                "lakehouse/ folder (GetObject only). The probe returns only whether each view compiles.",
            )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::arn:{lake.partition}:glue:{lake.region}:{lake.account}:table/"
            f"{lake.database}/*]",
            "Athena reads a view's definition and those of the tables it selects from in the catalog; the wildcard "
            "is the tables of the lake database only (GetTable/GetPartitions, read-only metadata).",
        )
        acknowledge(
            self,
            f"AwsSolutions-IAM5[Resource::arn:{lake.partition}:s3:::{lake.results_bucket}/*]",
            "Athena names each query's result object after the query id: the wildcard is the object keys of the "
            "workgroup's own results bucket, where the probe's LIMIT 0 queries write their (empty) results.",
        )
        acknowledge_rule(
            self.function,
            "The smoke probe runs only while the pipeline's smoke step waits for it (a few calls per deployment) and "
            "calls the public S3 and Athena APIs; the data lake account has no VPC for it to run in. It is invoked "
            "synchronously by the smoke step, which reports any failure and fails the pipeline: a dead-letter "
            "queue would hold nothing anyone must replay, and a few calls need no reserved concurrency. Each call "
            "logs to its KMS-encrypted log group.",
            *in_packs("LambdaInsideVPC", *REGULATORY),
            *in_packs("LambdaDLQ", HIPAA, NIST, SERVERLESS),
            *in_packs("LambdaConcurrency", HIPAA, NIST),
            "Serverless-LambdaTracing",
        )
