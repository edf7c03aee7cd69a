"""AWS Backup for the tables this stack creates: a CMK-encrypted vault, a daily and a monthly rule, and one
selection listing every created table by ARN; optionally a copy of every recovery point into a vault in
another account.

Only tables the stack creates are selected. An existing table (``tables[].existing_table_name``) is owned
elsewhere, and so are its backups: this stack only turns its streaming destination on.

Encryption (https://docs.aws.amazon.com/aws-backup/latest/devguide/encryption.html): with *advanced DynamoDB
backup* the recovery points are encrypted with the vault's key, here a key of their own, so the backups do not
depend on the key that encrypts the tables, streams and logs, and a copy to another account never needs that
key shared. Without advanced backup (accounts that had a vault before 2021-11-21 and never opted in,
https://docs.aws.amazon.com/aws-backup/latest/devguide/advanced-ddb-backup.html) DynamoDB encrypts backups
with the table's key, and "you must add the permissions kms:Decrypt and kms:GenerateDataKey to the IAM role
used for backup": the role gets both, on the table key only.

Cross-account copy (``backup.copy_to_vault_arn``) works only when, outside this stack
(https://docs.aws.amazon.com/aws-backup/latest/devguide/create-cross-account-backup.html):
  1. both accounts belong to the same AWS Organization ("Copy job failed. Both source and destination account
     must be a member of the same organization" otherwise);
  2. cross-account backup is turned on in the organization's management account (``UpdateGlobalSettings``
     ``isCrossAccountBackupEnabled=true``; it "returns an error if the account is not an Organizations
     management account");
  3. the destination vault's access policy allows this account ``backup:CopyIntoBackupVault``, and the
     destination vault has a customer managed key ("AWS Backup re-encrypts your copy using the customer managed
     key of your destination vault");
  4. advanced DynamoDB backup is on in this account (copies are an advanced feature);
  5. the source key is shared with the destination account: this vault key's policy does that below when a
     copy is configured.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_backup as backup
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from constructs import Construct

from shared.config import BackupConfig
from shared.nag import HIPAA, NIST, acknowledge, acknowledge_rule, in_packs

# Both rules run in the early UTC morning; the monthly one on the 1st. AWS Backup's default windows apply
# (start within 8 hours, complete within 7 days); a DynamoDB backup is a snapshot and takes minutes.
DAILY = events.Schedule.cron(minute="0", hour="3")
MONTHLY = events.Schedule.cron(minute="0", hour="4", day="1")
BACKUP_POLICY = "service-role/AWSBackupServiceRolePolicyForBackup"
# What another account needs of the source key to copy a recovery point encrypted with it.
COPY_KEY_ACTIONS = (
    "kms:Decrypt",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:ReEncrypt*",
)
COPY_GRANT_ACTIONS = ("kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant")


def copy_destination_account(vault_arn: str) -> str:
    return vault_arn.split(":")[4]


class TableBackup(Construct):
    """The backup plan of the stack's created tables (nothing at all when there are none)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        name: str,
        settings: BackupConfig,
        tables: Sequence[dynamodb.ITable],
        table_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        self.plan: backup.BackupPlan | None = None
        if not tables:
            return
        if not settings.enabled:
            for table in tables:
                acknowledge_rule(
                    table,
                    "backup.enabled is false in this configuration, so no AWS Backup plan selects this table. "
                    "It keeps point-in-time recovery (any second of the last 35 days), deletion protection and "
                    "retention on stack deletion; set backup.enabled to true for daily and monthly recovery points.",
                    *in_packs("DynamoDBInBackupPlan", HIPAA, NIST),
                )
            return
        stack = Stack.of(self)
        self.key = kms.Key(
            self,
            "VaultKey",
            description=f"Encrypts the AWS Backup recovery points of the tables of {stack.stack_name}",
            enable_key_rotation=True,
            # Without it, no recovery point in the vault can be restored.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        self.vault = backup.BackupVault(
            self,
            "Vault",
            backup_vault_name=name,
            encryption_key=self.key,
            # Recovery points leave only by their rule's retention: nobody may delete them early or shorten it.
            block_recovery_point_deletion=True,
            # A vault holding recovery points cannot be deleted anyway; a failed first create still cleans up.
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )

        copy = settings.copy_to_vault_arn
        destination = (
            backup.BackupVault.from_backup_vault_arn(self, "CopyDestination", copy) if copy is not None else None
        )
        if copy is not None and copy_destination_account(copy) != stack.account:
            account = iam.AccountPrincipal(copy_destination_account(copy))
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCopyDestinationAccountToUseTheKey",
                    principals=[account],
                    actions=list(COPY_KEY_ACTIONS),
                    resources=["*"],
                )
            )
            self.key.add_to_resource_policy(
                iam.PolicyStatement(
                    sid="AllowCopyDestinationAccountGrantsForAwsResources",
                    principals=[account],
                    actions=list(COPY_GRANT_ACTIONS),
                    resources=["*"],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}},
                )
            )

        def rule(name: str, schedule: events.Schedule, days: int) -> backup.BackupPlanRule:
            return backup.BackupPlanRule(
                rule_name=name,
                backup_vault=self.vault,
                schedule_expression=schedule,
                delete_after=Duration.days(days),
                copy_actions=(
                    [
                        backup.BackupPlanCopyActionProps(
                            destination_backup_vault=destination, delete_after=Duration.days(days)
                        )
                    ]
                    if destination is not None
                    else None
                ),
            )

        self.plan = backup.BackupPlan(
            self,
            "Plan",
            backup_plan_name=name,
            backup_vault=self.vault,
            backup_plan_rules=[
                rule("Daily", DAILY, settings.daily_retention_days),
                rule("Monthly", MONTHLY, settings.monthly_retention_days),
            ],
        )

        # No aws:SourceArn/aws:SourceAccount condition on this trust: AWS Backup's developer guide documents them for
        # vault access policies and notifications, not for the role a backup plan passes, and a condition the service
        # does not send would make every backup job fail. Only a principal of this account allowed iam:PassRole on
        # this role can hand it to AWS Backup (a role cannot be passed to another account's service calls).
        self.role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal("backup.amazonaws.com"),
            description="AWS Backup: back up this stack's DynamoDB tables into its vault",
            managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(BACKUP_POLICY)],
        )
        # The keys are used by AWS Backup and, for backups without advanced DynamoDB backup, by DynamoDB on the role's
        # behalf (https://docs.aws.amazon.com/aws-backup/latest/devguide/encryption.html): only through those two
        # services of this region (kms:ViaService,
        # https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-via-service).
        via = {"StringEquals": {"kms:ViaService": backup_via_services(stack.region)}}
        # A customer managed policy (not inline): the role's key permissions, on exactly the two keys.
        iam.ManagedPolicy(
            self,
            "KeyAccess",
            description="AWS Backup: the table key (backups without advanced DynamoDB backup) and the vault key",
            roles=[self.role],
            statements=[
                iam.PolicyStatement(
                    sid="TableKeyForDynamoDbBackups",
                    actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[table_key.key_arn],
                    conditions=via,
                ),
                iam.PolicyStatement(
                    sid="VaultKey",
                    actions=["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"],
                    resources=[self.key.key_arn],
                    conditions=via,
                ),
                iam.PolicyStatement(
                    sid="VaultKeyGrantsForAwsBackup",
                    actions=["kms:CreateGrant"],
                    resources=[self.key.key_arn],
                    conditions={"Bool": {"kms:GrantIsForAWSResource": "true"}, **via},
                ),
            ],
        )
        acknowledge(
            self.role,
            f"AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/{BACKUP_POLICY}]",
            "AWS Backup's own service-role policy, which the AWS Backup developer guide tells custom roles to "
            "carry: AWS keeps it in step with what each service's backup needs (a hand-copied list goes stale "
            "and a missing permission lets a job succeed without backing anything up). Only AWS Backup can "
            "assume the role; its key permissions are separate and name the two keys.",
        )
        self.selection = self.plan.add_selection(
            "Tables",
            resources=[backup.BackupResource.from_dynamo_db_table(table) for table in tables],
            role=self.role,
        )


def backup_via_services(region: str) -> list[str]:
    return [f"backup.{region}.amazonaws.com", f"dynamodb.{region}.amazonaws.com"]
