"""The Athena workgroup analysts use, its results bucket and the saved (named) queries of every table.

The workgroup enforces its configuration, so every query in it writes its results to the results bucket
encrypted with the data-lake key, runs on a pinned engine version, is cancelled past the bytes-scanned cutoff
and publishes CloudWatch metrics, whatever the client asks for ("Workgroup settings override client-side
settings": https://docs.aws.amazon.com/athena/latest/ug/workgroups-settings-override.html; the cutoff and the
metrics: https://docs.aws.amazon.com/athena/latest/ug/workgroups-setting-control-limits-cloudwatch.html).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration, Stack
from aws_cdk import aws_athena as athena
from aws_cdk import aws_glue as glue
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from consumer.buckets import private_kms_bucket
from consumer.queries import NamedQuery
from shared.access_logs import INCOMPLETE_UPLOAD_DAYS
from shared.naming import LakeNames

# Pinned rather than AUTO, so an engine upgrade (and its behaviour changes, e.g. the view and SerDe readers) is
# a reviewed change of this line: "If you configure a workgroup to use a given version, Athena will not change the
# version of the workgroup", until that version is retired (https://docs.aws.amazon.com/athena/latest/ug/
# engine-versions.html; CloudFormation: AWS::Athena::WorkGroup EngineVersion, "Possible values are determined by
# the output of ListEngineVersions").
ENGINE_VERSION = "Athena engine version 3"
MIB = 1024 * 1024


class ResultsBucket(Construct):
    """Query results: KMS-encrypted with the data-lake key (results are copies of lake data), TLS-only, private,
    expiring, access-logged, and retained like every named bucket (a failed first create still cleans up)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: LakeNames,
        key: kms.IKey,
        access_logs: s3.IBucket,
        expiration_days: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = private_kms_bucket(
            self,
            "Bucket",
            name=lake.results_bucket,
            key=key,
            access_logs=access_logs,
            lifecycle_rule=s3.LifecycleRule(
                id="expire-query-results",
                expiration=Duration.days(expiration_days),
                abort_incomplete_multipart_upload_after=Duration.days(INCOMPLETE_UPLOAD_DAYS),
            ),
            versioned=False,
        )


class LakeWorkgroup(Construct):
    """The workgroup and the named queries of every table (``queries``: table name -> its named queries)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        lake: LakeNames,
        key: kms.IKey,
        access_logs: s3.IBucket,
        results_expiration_days: int,
        bytes_scanned_cutoff_mib: int,
        database: glue.CfnDatabase,
        queries: Mapping[str, Sequence[NamedQuery]],
    ) -> None:
        super().__init__(scope, construct_id)
        self.results = ResultsBucket(
            self, "Results", lake=lake, key=key, access_logs=access_logs, expiration_days=results_expiration_days
        ).bucket
        self.workgroup = athena.CfnWorkGroup(
            self,
            "WorkGroup",
            name=lake.workgroup,
            description="Queries over the DynamoDB change data lake: results encrypted with the lake key",
            state="ENABLED",
            # Saved queries and history must not block deleting the stack ("WorkGroup is not empty").
            recursive_delete_option=True,
            work_group_configuration=athena.CfnWorkGroup.WorkGroupConfigurationProperty(
                enforce_work_group_configuration=True,
                engine_version=athena.CfnWorkGroup.EngineVersionProperty(selected_engine_version=ENGINE_VERSION),
                bytes_scanned_cutoff_per_query=bytes_scanned_cutoff_mib * MIB,
                publish_cloud_watch_metrics_enabled=True,
                requester_pays_enabled=False,
                result_configuration=athena.CfnWorkGroup.ResultConfigurationProperty(
                    output_location=f"s3://{lake.results_bucket}/",
                    # Only this account's bucket of that name receives results.
                    expected_bucket_owner=Stack.of(self).account,
                    encryption_configuration=athena.CfnWorkGroup.EncryptionConfigurationProperty(
                        encryption_option="SSE_KMS", kms_key=key.key_arn
                    ),
                ),
            ),
        )
        self.workgroup.node.add_dependency(self.results)
        self.named_queries: dict[str, list[athena.CfnNamedQuery]] = {}
        for table, table_queries in queries.items():
            created = []
            for query in table_queries:
                named = athena.CfnNamedQuery(
                    self,
                    f"{table}-{query.construct_id}",
                    name=query.name,
                    description=query.description,
                    database=lake.database,
                    query_string=query.sql,
                    # The Ref of a workgroup is its name; it also orders the query after the workgroup.
                    work_group=self.workgroup.ref,
                )
                named.add_resource_dependency(database)
                created.append(named)
            self.named_queries[table] = created
