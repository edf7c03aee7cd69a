"""The smoke test's writer role for one table in account A (``ddb-lake smoke`` in the pipeline assumes it).

It may put, update, delete and get items of this one table, and only items whose partition key starts with
``naming.SMOKE_KEY_PREFIX`` (``dynamodb:LeadingKeys``), so the test can never touch real data. Whom it trusts
is decided by ``pipeline/smoke.py`` (the pipeline's smoke step only).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared import naming
from shared.nag import acknowledge
from shared.naming import TableNames

ITEM_ACTIONS = ("dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem")


class SmokeWriterRole(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        names: TableNames,
        table_key: kms.IKey | None,
        trusted: iam.IPrincipal,
    ) -> None:
        super().__init__(scope, construct_id)
        prefix = naming.SMOKE_KEY_PREFIX + "*"
        # DynamoDB decrypts the table key with the caller's permissions (kms:Decrypt via DynamoDB, in the table's
        # encryption context): https://docs.aws.amazon.com/kms/latest/developerguide/services-dynamodb.html.
        # A table owned elsewhere has a key this stack does not know; the conditions still pin it to this table.
        key_arn = (
            table_key.key_arn
            if table_key
            else f"arn:{names.partition}:kms:{names.producer_region}:{names.producer_account}:key/*"
        )
        policy = iam.PolicyDocument(
            statements=[
                iam.PolicyStatement(
                    sid="SmokeItemsOfThisTableOnly",
                    actions=list(ITEM_ACTIONS),
                    resources=[names.table_arn],
                    conditions={
                        "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [prefix]},
                        # ForAllValues is also true when the key is absent; require it to be there.
                        "Null": {"dynamodb:LeadingKeys": "false"},
                    },
                ),
                iam.PolicyStatement(
                    sid="TableKeyViaDynamoDB",
                    actions=["kms:Decrypt"],
                    resources=[key_arn],
                    conditions={
                        "StringEquals": {
                            "kms:ViaService": f"dynamodb.{names.producer_region}.amazonaws.com",
                            "kms:EncryptionContext:aws:dynamodb:tableName": names.table,
                            "kms:EncryptionContext:aws:dynamodb:subscriberId": names.producer_account,
                        }
                    },
                ),
            ]
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=names.smoke_writer_role,
            description=f"ddb-lake smoke: items '{prefix}' of {names.table} only; assumed by the pipeline step",
            assumed_by=trusted,
            max_session_duration=Duration.hours(1),
        )
        # A customer-managed policy, not an inline one: the regulatory packs refuse inline policies.
        iam.ManagedPolicy(self, "Policy", document=policy, roles=[self.role])
        if table_key is None:
            acknowledge(
                self,
                f"AwsSolutions-IAM5[Resource::{key_arn}]",
                f"The table {names.table} is owned elsewhere and its KMS key is unknown to this stack; kms:Decrypt is "
                "allowed only via DynamoDB in this region and only in this table's encryption context, which is "
                "how DynamoDB reads the table key on the smoke test's behalf.",
            )
