"""The platform team's gate between the consumer and the producer deployment."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import ArnFormat, Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

from pipeline.nag_acks import flatten_reference
from shared.config import AppConfig
from shared.nag import acknowledge

APPROVAL_STEP = "PlatformApproval"


class PlatformApproval(Construct):
    """A manual approval that notifies the platform team, and the managed policy that lets them answer it."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, key: kms.IKey) -> None:
        super().__init__(scope, construct_id)
        self.topic = sns.Topic(
            self,
            "Topic",
            display_name=f"{cfg.prefix}: approve producer deployment",
            master_key=key,
            enforce_ssl=True,
        )
        for email in cfg.notifications.approval_emails:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        repo_url = f"https://github.com/{cfg.source.repository}/commits/{cfg.source.branch}"
        self.step = pipelines.ManualApprovalStep(
            APPROVAL_STEP,
            comment=(
                f"The data lake in account {cfg.consumer.account} is deployed. Approve to deploy change capture "
                f"into producer account {cfg.producer.account}: review the commits and the cdk-nag report "
                "(CodeBuild > Report groups) first."
            ),
            review_url=repo_url,
            notification_topic=self.topic,
        )

    def approver_policy(
        self,
        pipeline_name: str,
        stage_name: str,
        report_groups: list[str],
        *,
        confirmations: Sequence[str] = (),
        diff_project: codebuild.IProject | None = None,
    ) -> iam.ManagedPolicy:
        """Allows answering exactly this approval action and the permissions-broadening confirmations
        (``confirmations``: "<stage>/<action>"), viewing the pipeline, reading the test and cdk-nag reports the
        approval asks the approver to review, and the permissions check's builds (``diff_project``: its cdk diff)."""
        stack = Stack.of(self)
        pipeline_arn = stack.format_arn(service="codepipeline", resource=pipeline_name)
        answerable = [f"{pipeline_arn}/{stage_name}/{APPROVAL_STEP}", *(f"{pipeline_arn}/{c}" for c in confirmations)]
        diff = []
        diff_log = ""
        if diff_project is not None:
            group = stack.format_arn(
                service="logs",
                resource="log-group",
                arn_format=ArnFormat.COLON_RESOURCE_NAME,
                resource_name=f"/aws/codebuild/{diff_project.project_name}",
            )
            diff_log = f"{group}:*"
            diff = [
                iam.PolicyStatement(
                    sid="ReadThePermissionsDiff",
                    actions=["codebuild:BatchGetBuilds", "codebuild:ListBuildsForProject"],
                    resources=[diff_project.project_arn],
                ),
                # The build page shows the cdk diff from the project's log group (CodeBuild names it after the
                # project); the wildcard is its log streams.
                iam.PolicyStatement(
                    sid="ReadThePermissionsDiffLog", actions=["logs:GetLogEvents"], resources=[diff_log]
                ),
            ]
        policy = iam.ManagedPolicy(
            self,
            "ApproverPolicy",
            description=f"Attach to the platform team: approve or reject {pipeline_name} / {stage_name}",
            statements=[
                iam.PolicyStatement(
                    sid="AnswerThisApprovalOnly",
                    actions=["codepipeline:PutApprovalResult"],
                    resources=answerable,
                ),
                iam.PolicyStatement(
                    sid="SeeThePipeline",
                    actions=[
                        "codepipeline:GetPipeline",
                        "codepipeline:GetPipelineState",
                        "codepipeline:GetPipelineExecution",
                        "codepipeline:ListPipelineExecutions",
                        "codepipeline:ListActionExecutions",
                    ],
                    resources=[pipeline_arn],
                ),
                # The console's pipeline list (the way to the Review button); the action has no resource scoping.
                iam.PolicyStatement(
                    sid="ListPipelinesInTheConsole", actions=["codepipeline:ListPipelines"], resources=["*"]
                ),
                iam.PolicyStatement(
                    sid="ReadTheReportsToReview",
                    actions=[
                        "codebuild:BatchGetReportGroups",
                        "codebuild:BatchGetReports",
                        "codebuild:DescribeTestCases",
                        "codebuild:ListReportsForReportGroup",
                    ],
                    resources=report_groups,
                ),
                *diff,
            ],
        )
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "codepipeline:ListPipelines, which the console needs to show the pipeline list on the way to the approval, "
            "supports no resource-level permissions and only lists pipeline names; every other statement names this "
            "pipeline, its approval action or its report groups.",
        )
        if diff_project is not None:
            acknowledge(
                policy,
                f"AwsSolutions-IAM5[Resource::{flatten_reference(stack.resolve(diff_log))}]",
                "The approver reads the permissions check's cdk diff in its CodeBuild log group (named after that one "
                "project); the wildcard is the group's log streams, GetLogEvents only.",
            )
        return policy
