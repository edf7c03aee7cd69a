"""Amazon Data Firehose from the table's change stream, through its transform Lambda, into account B's data lake.

The delivery role is written here by hand instead of letting the Firehose L2 grant: the L2 grants
read/write/delete on the whole bucket, no s3:PutObjectAcl, and cannot express a key in another account.
The L2 is handed an immutable view of the role so its own grants are dropped.

No KMS key is given to Firehose. Its writes then carry no SSE headers and account B's bucket default (SSE-KMS
with B's key, named by its key ARN, Bucket Keys on) applies. Naming B's key by its alias ARN instead is fragile
across accounts: S3 documents that cross-account SSE-KMS requests must use a fully qualified key ARN, because an
alias is resolved in the requester's account
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucket-encryption.html, "Using SSE-KMS for cross-account
operations"). The role keeps the KMS permissions S3 uses on its behalf for that key.
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy, Size, Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kinesis as kinesis
from aws_cdk import aws_kinesisfirehose as firehose
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from shared.config import FIREHOSE_PROCESSOR_BUFFER_SECONDS, DeliverySettings
from shared.nag import REGULATORY, acknowledge, acknowledge_rule, in_packs, inline_policy_reason
from shared.naming import LakeNames, TableNames
from shared.permissions import DELIVERY_BUCKET_ACTIONS, DELIVERY_KEY_ACTIONS, DELIVERY_OBJECT_ACTIONS

# The transform sees at most 1 MiB or 60 s of records per call: well inside Lambda's 6 MB payload.
PROCESSOR_BUFFER_INTERVAL = Duration.seconds(FIREHOSE_PROCESSOR_BUFFER_SECONDS)
PROCESSOR_BUFFER_SIZE = Size.mebibytes(1)
PROCESSOR_RETRIES = 3
LOG_RETENTION = logs.RetentionDays.THREE_MONTHS
_COMPRESSION = {
    "GZIP": firehose.Compression.GZIP,
    "HADOOP_SNAPPY": firehose.Compression.HADOOP_SNAPPY,
    "UNCOMPRESSED": firehose.Compression.UNCOMPRESSED,
}
STREAM_READ_ACTIONS = (
    "kinesis:DescribeStream",
    "kinesis:DescribeStreamSummary",
    "kinesis:GetShardIterator",
    "kinesis:GetRecords",
    "kinesis:ListShards",
)


class Delivery(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: TableNames,
        lake: LakeNames,
        settings: DeliverySettings,
        stream: kinesis.IStream,
        stream_key: kms.IKey,
        log_key: kms.IKey,
        function: lambda_.IFunction,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        bucket = s3.Bucket.from_bucket_attributes(
            self, "DataLakeBucket", bucket_arn=lake.bucket_arn, account=lake.account, region=lake.region
        )

        self.log_group = logs.LogGroup(
            self,
            "Logs",
            encryption_key=log_key,
            retention=LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

        self.role = iam.Role(
            self,
            "Role",
            role_name=names.delivery_role,
            description="Firehose delivery from the change stream into the cross-account data lake",
            # The external id stops another account's Firehose from assuming this role (confused deputy).
            assumed_by=iam.ServicePrincipal(
                "firehose.amazonaws.com", conditions={"StringEquals": {"sts:ExternalId": stack.account}}
            ),
        )
        self._grant(names, lake, stream, stream_key, function)

        logging = firehose.EnableLogging(self.log_group)
        role = self.role.without_policy_updates()
        destination = firehose.S3Bucket(
            bucket,
            role=role,
            buffering_interval=Duration.seconds(settings.buffer_interval_seconds),
            buffering_size=Size.mebibytes(settings.buffer_size_mib),
            compression=_COMPRESSION[settings.compression],
            data_output_prefix=names.data_prefix,
            error_output_prefix=names.error_prefix,
            logging_config=logging,
            processors=[
                firehose.LambdaFunctionProcessor(
                    function,
                    buffer_interval=PROCESSOR_BUFFER_INTERVAL,
                    buffer_size=PROCESSOR_BUFFER_SIZE,
                    retries=PROCESSOR_RETRIES,
                )
            ],
            # The untransformed records, so any day can be replayed through a fixed transform.
            s3_backup=firehose.DestinationS3BackupProps(
                mode=firehose.BackupMode.ALL,
                bucket=bucket,
                data_output_prefix=names.raw_prefix,
                error_output_prefix=names.error_prefix,
                compression=firehose.Compression.GZIP,
                buffering_interval=Duration.seconds(settings.buffer_interval_seconds),
                buffering_size=Size.mebibytes(settings.buffer_size_mib),
                logging_config=logging,
            ),
        )
        self.delivery_stream = firehose.DeliveryStream(
            self,
            "DeliveryStream",
            delivery_stream_name=names.delivery_stream,
            source=firehose.KinesisStreamSource(stream),
            destination=destination,
            role=role,
        )
        # Firehose checks its permissions when the stream is created: the policy must exist first.
        self.delivery_stream.node.add_dependency(self.role.node.find_child("DefaultPolicy"))
        acknowledge(
            self.delivery_stream,
            "AwsSolutions-KDF1",
            "Firehose does not allow server-side encryption of a delivery stream whose source is a Kinesis "
            "stream; the source stream is encrypted with the producer CMK and every object is written with "
            "the data lake's CMK, so records are encrypted at rest end to end.",
        )

    def _grant(
        self,
        names: TableNames,
        lake: LakeNames,
        stream: kinesis.IStream,
        stream_key: kms.IKey,
        function: lambda_.IFunction,
    ) -> None:
        stack = Stack.of(self)
        bucket_arn = lake.bucket_arn
        any_key_of_b = f"arn:{lake.partition}:kms:{lake.region}:{lake.account}:key/*"
        in_lake_account = {"StringEquals": {"aws:ResourceAccount": lake.account}}
        statements = [
            iam.PolicyStatement(
                sid="ReadChangeStream", actions=list(STREAM_READ_ACTIONS), resources=[stream.stream_arn]
            ),
            iam.PolicyStatement(
                sid="DecryptChangeStream",
                actions=["kms:Decrypt"],
                resources=[stream_key.key_arn],
                conditions={"StringEquals": {"kms:ViaService": f"kinesis.{stack.region}.amazonaws.com"}},
            ),
            iam.PolicyStatement(
                sid="InvokeTransform",
                actions=["lambda:InvokeFunction", "lambda:GetFunctionConfiguration"],
                resources=[function.function_arn],
            ),
            # The lake is another account's: every S3 statement also pins that account (aws:ResourceAccount,
            # https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html#condition-keys-resourceaccount),
            # so a bucket of the same name in any other account is never reachable with this role.
            iam.PolicyStatement(
                sid="DataLakeBucket",
                actions=list(DELIVERY_BUCKET_ACTIONS),
                resources=[bucket_arn],
                conditions=in_lake_account,
            ),
            iam.PolicyStatement(
                sid="DataLakeObjectsOfThisTable",
                actions=list(DELIVERY_OBJECT_ACTIONS),
                resources=[f"{bucket_arn}/{prefix}*" for prefix in names.roots],
                conditions=in_lake_account,
            ),
            # What S3 does with B's key on this role's behalf when the bucket default encrypts its writes. B's key
            # ID is unknown at synth time: any key of B's account and region (the resource ARN and
            # aws:ResourceAccount), used only through S3 in that region (kms:ViaService) and only for the data-lake
            # bucket (S3's encryption context is the bucket ARN with Bucket Keys). All three are documented for
            # cross-account use of a key: an external account's IAM policy names the key by ARN, wildcards allowed
            # (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-modifying-external-accounts.html), and
            # kms:ViaService and kms:EncryptionContext:* are conditions of the operation, whatever account the key
            # is in (https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service,
            # https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#encryption-context).
            # No kms:ResourceAliases: the KMS docs do not say it is evaluated for a key of another account.
            iam.PolicyStatement(
                sid="DataLakeKeyViaS3",
                actions=list(DELIVERY_KEY_ACTIONS),
                resources=[any_key_of_b],
                conditions={
                    "StringEquals": {
                        "aws:ResourceAccount": lake.account,
                        "kms:ViaService": f"s3.{lake.region}.amazonaws.com",
                        "kms:EncryptionContext:aws:s3:arn": bucket_arn,
                    },
                },
            ),
            iam.PolicyStatement(
                sid="WriteDeliveryErrorLogs",
                actions=["logs:PutLogEvents"],
                resources=[f"{self.log_group.log_group_arn}"],
            ),
        ]
        for statement in statements:
            self.role.add_to_policy(statement)

        acknowledge(
            self.role,
            f"AwsSolutions-IAM5[Resource::{any_key_of_b}]",
            "The data-lake key lives in the consumer account and its key ID is not known when the producer "
            "synthesizes; the statement is limited to keys of that account and region (aws:ResourceAccount), used "
            "through S3 (kms:ViaService) for the data-lake bucket only (S3's encryption context, the bucket ARN).",
        )
        for prefix in names.roots:
            acknowledge(
                self.role,
                f"AwsSolutions-IAM5[Resource::{bucket_arn}/{prefix}*]",
                f"Firehose writes time-partitioned object keys under '{prefix}' whose names it generates at "
                "delivery time; the grant is limited to this table's prefix of the data-lake bucket.",
            )
        acknowledge_rule(
            self.role,
            inline_policy_reason(
                "The table's Firehose delivery role (its stream, its transform, its prefixes of the lake bucket)"
            ),
            *in_packs("IAMNoInlinePolicy", *REGULATORY),
        )
