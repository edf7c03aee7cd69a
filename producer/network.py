"""An isolated VPC for the transform Lambda: no internet gateway, no NAT, no endpoints.

The function calls no AWS API: Firehose invokes it through the Lambda service and the Lambda service
ships its logs, so nothing inside the VPC needs a route anywhere.
"""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy, Stack
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from constructs import Construct

from shared.nag import REGULATORY, acknowledge_rule, in_packs, inline_policy_reason

FLOW_LOG_RETENTION = logs.RetentionDays.ONE_YEAR


class IsolatedNetwork(Construct):
    def __init__(
        self, scope: Construct, construct_id: str, *, vpc_cidr: str, zones: Sequence[str], key: kms.IKey
    ) -> None:
        super().__init__(scope, construct_id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(vpc_cidr),
            # Explicit zones: no context lookup, so synth works offline and is reproducible.
            availability_zones=list(zones),
            nat_gateways=0,
            subnet_configuration=[
                ec2.SubnetConfiguration(name="isolated", subnet_type=ec2.SubnetType.PRIVATE_ISOLATED)
            ],
            restrict_default_security_group=True,
        )
        flow_logs = logs.LogGroup(
            self,
            "FlowLogs",
            encryption_key=key,
            retention=FLOW_LOG_RETENTION,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        flow_log = self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        # Confused deputy: the flow-log service may assume the role only for flow logs of this account and region
        # (https://docs.aws.amazon.com/vpc/latest/userguide/flow-logs-iam-role.html, "aws:SourceAccount" and
        # "aws:SourceArn" in the trust policy). CDK writes the one trust statement; the conditions are added to it.
        stack = Stack.of(self)
        role = flow_log.node.find_child("IAMRole").node.default_child
        assert isinstance(role, iam.CfnRole)
        role.add_property_override(
            "AssumeRolePolicyDocument.Statement.0.Condition",
            flow_log_trust_conditions(stack.partition, stack.region, stack.account),
        )
        acknowledge_rule(
            flow_log,
            inline_policy_reason(
                "The flow-log role CDK generates for VPC Flow Logs (write to this VPC's flow-log group only)"
            ),
            *in_packs("IAMNoInlinePolicy", *REGULATORY),
        )
        self.function_security_group = ec2.SecurityGroup(
            self,
            "TransformFunction",
            vpc=self.vpc,
            description="Transform Lambda: no ingress, no egress (Firehose invokes it via the Lambda service)",
            allow_all_outbound=False,
        )


def flow_log_trust_conditions(partition: str, region: str, account: str) -> dict[str, dict[str, str]]:
    return {
        "StringEquals": {"aws:SourceAccount": account},
        "ArnLike": {"aws:SourceArn": f"arn:{partition}:ec2:{region}:{account}:vpc-flow-log/*"},
    }
