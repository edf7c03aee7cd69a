"""The HIPAA, NIST 800-53 R5, PCI DSS 3.2.1 and Serverless findings on the pipeline stack: fixed where a
property does it, acknowledged where the rule does not fit what CDK Pipelines generates.

Called once, last in ``PipelineStack.__init__`` (after ``build_pipeline()``, when every generated resource and
every cross-region support stack exists). Each acknowledgment is made on the resource concerned, only when the
resource has the shape the reason describes; anything else stays a finding.
"""

from __future__ import annotations

from aws_cdk import Stack, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sns as sns
from constructs import IConstruct

from shared.nag import HIPAA, PCI, REGULATORY, acknowledge, acknowledge_rule, in_packs, inline_policy_reason

ARTIFACTS_NOT_REPLICATED = (
    "CodePipeline's artifact store: every object is a per-execution build artifact rebuilt from the git commit on "
    "the next run, so a second copy protects nothing that the repository does not; CodePipeline already copies "
    "what a stage in another region needs into that region's support bucket. The bucket is KMS-encrypted, "
    "versioned, access-logged and blocks public access."
)
CODEPIPELINE_SOURCE = (
    "The project's source type is CODEPIPELINE: it never connects to GitHub or Bitbucket itself and holds no "
    "repository credentials or URL. The pipeline's source action fetches the commit through an AWS CodeConnections "
    "connection (an OAuth-based app installation managed outside this stack) and hands the project a "
    "KMS-encrypted artifact."
)
EMAIL_SUBSCRIPTION = (
    "The approval topic's subscriptions are e-mail addresses: SNS retries e-mail delivery itself, and a "
    "notification it finally drops would wait in a dead-letter queue nobody reads. The approval it announces "
    "stays pending in the pipeline (console and API) until someone answers it, notified or not."
)


def apply(stack: Stack, pipeline: pipelines.CodePipeline) -> dict[str, list[str]]:
    """Fix and acknowledge the other packs' findings on ``stack``; returns {construct path: acknowledged ids}."""
    done: dict[str, list[str]] = {}

    def ack(scope: IConstruct, reason: str, *ids: str) -> None:
        acknowledge_rule(scope, reason, *ids)
        done.setdefault(scope.node.path, []).extend(ids)

    for bucket in _artifact_buckets(pipeline):
        cfn = bucket.node.default_child
        assert isinstance(cfn, s3.CfnBucket), bucket.node.path
        # Fixed: versioning keeps an overwritten or deleted artifact recoverable (CodePipeline writes new keys per
        # execution, so it stores nothing extra).
        cfn.versioning_configuration = s3.CfnBucket.VersioningConfigurationProperty(status="Enabled")
        ack(cfn, ARTIFACTS_NOT_REPLICATED, *in_packs("S3BucketReplicationEnabled", *REGULATORY))

    for node in pipeline.node.find_all():
        if isinstance(node, iam.CfnPolicy):
            role = _describe(node, pipeline)
            ack(node, inline_policy_reason(f"A role CDK Pipelines generates for {role}"), *_ids("IAMNoInlinePolicy"))
        elif isinstance(node, codebuild.CfnProject) and _source_type(stack, node) == "CODEPIPELINE":
            ack(node, CODEPIPELINE_SOURCE, *in_packs("CodeBuildProjectSourceRepoUrl", HIPAA, PCI))

    for node in stack.node.find_all():
        if isinstance(node, sns.CfnSubscription) and node.protocol == "email":
            acknowledge(node, "Serverless-SNSRedrivePolicy", EMAIL_SUBSCRIPTION)
            done.setdefault(node.node.path, []).append("Serverless-SNSRedrivePolicy")
    return done


def _ids(rule: str) -> tuple[str, ...]:
    return in_packs(rule, *REGULATORY)


def _artifact_buckets(pipeline: pipelines.CodePipeline) -> list[s3.IBucket]:
    """The pipeline's artifact bucket and each cross-region support stack's replication bucket."""
    generated = pipeline.pipeline
    return [generated.artifact_bucket, *(s.replication_bucket for s in generated.cross_region_support.values())]


def _source_type(stack: Stack, project: codebuild.CfnProject) -> str | None:
    source = stack.resolve(project.source)
    return source.get("type") if isinstance(source, dict) else None


def _describe(policy: iam.CfnPolicy, root: IConstruct) -> str:
    """The generated role's place in the pipeline, e.g. 'Pipeline/Build/Synth/CdkBuildProject/Role'."""
    role = policy.node.scope.node.scope if policy.node.scope is not None else None
    path = (role or policy).node.path
    return path[len(root.node.path) + 1 :] or path
