"""Tooling account: the self-mutating pipeline that ships the consumer, then (approved) the producer."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from aws_cdk import ArnFormat, CfnOutput, Duration, RemovalPolicy, Stack, Stage, pipelines
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_codepipeline_actions as codepipeline_actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from consumer.stage import ConsumerStage
from pipeline import compliance
from pipeline.approval import PlatformApproval
from pipeline.nag_acks import PipelineIds, acknowledge_generated_wildcards
from pipeline.reports import ReportGroups
from pipeline.smoke import SmokeTest
from pipeline.toolchain import cdk_assets_lock, cdk_assets_version, cdk_cli_version, node_runtime_version
from producer.stage import ProducerStage
from shared.access_logs import AccessLogBucket
from shared.config import AppConfig
from shared.key_policies import allow_cloudwatch_logs, log_group_arn
from shared.nag import HIPAA, NIST, PCI, REGULATORY, SERVERLESS, acknowledge, acknowledge_rule, in_packs

CONSUMER_STAGE = "Consumer"
# The ConfirmPermissionsBroadening step of each stage (its actions: "<id>.Check", then "<id>.Confirm"), and the
# construct CDK Pipelines puts its shared CodeBuild project and auto-approve Lambda under.
PERMISSIONS_CHECK = "PermissionsBroadening"
# The stage that checks the pipeline's own changes the same way, right before its self-mutation.
PIPELINE_CHANGES = "PipelineChanges"
SECURITY_CHECK_ID = "PipelinesSecurityCheck"
# Where the asset projects find cdk-assets' lock file in the cloud assembly (see _install_cdk_assets_from_lock).
CDK_ASSETS_TOOL_DIR = "cdk-assets-tool"
PRODUCER_STAGE = "Producer"
# Exactly what the README tells a developer to run: no second recipe to drift.
SYNTH_COMMANDS = ["make test", "make synth"]
# What makes Python CDK synth slow on a cold machine: pip wheels, the pinned Node/CLI, jsii's package cache.
CACHE_PATHS = ["/root/.cache/pip/**/*", "/root/.cache/aws/jsii/**/*", "/root/.npm/**/*"]


# Pinned interpreter: the build image offers several; the project needs Python >= 3.11.
RUNTIME_VERSIONS = {"python": "3.12"}
# Runtime versions are per image: every project names the image its pinned runtimes come from.
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0


def npm_tool_options() -> pipelines.CodeBuildOptions:
    """Self-mutation and asset publishing `npm install -g` a pinned tool and run it: pin the Node.js they run on too
    (the major package.json gives developers), not whatever the image defaults to that day."""
    return pipelines.CodeBuildOptions(
        partial_build_spec=codebuild.BuildSpec.from_object(
            {"phases": {"install": {"runtime-versions": {"nodejs": node_runtime_version()}}}}
        )
    )


def nag_gate(
    stage: str, source: pipelines.IFileSetProducer, synth: pipelines.IFileSetProducer
) -> pipelines.CodeBuildStep:
    """Fails the stage before it deploys if its assembly carries any unacknowledged cdk-nag finding."""
    return pipelines.CodeBuildStep(
        f"CdkNagGate{stage}",
        input=source,
        additional_inputs={"cdk.out": synth},
        # Standard library only: runs on the bare build image without installing the project.
        commands=[f"python3 -m pipeline.nag_report gate --assembly cdk.out --stage {stage}"],
        partial_build_spec=codebuild.BuildSpec.from_object(
            {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
        ),
    )


class PipelineStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.pipeline_name = f"{cfg.prefix}-datalake"
        source = pipelines.CodePipelineSource.connection(
            cfg.source.repository,
            cfg.source.branch,
            connection_arn=cfg.source.connection_arn,
            trigger_on_push=True,
        )
        self.reports = ReportGroups(self, "Reports", cfg=cfg)
        synth = pipelines.CodeBuildStep(
            "Synth",
            input=source,
            commands=SYNTH_COMMANDS,
            primary_output_directory="cdk.out",
            build_environment=codebuild.BuildEnvironment(
                build_image=BUILD_IMAGE, compute_type=codebuild.ComputeType.MEDIUM
            ),
            cache=codebuild.Cache.local(codebuild.LocalCacheMode.CUSTOM),
            partial_build_spec=codebuild.BuildSpec.from_object(
                {
                    "phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}},
                    "reports": self.reports.build_spec_reports(),
                    "cache": {"paths": CACHE_PATHS},
                }
            ),
            timeout=Duration.minutes(30),
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=self.pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=synth,
            self_mutation=True,
            cross_account_keys=True,
            enable_key_rotation=True,
            cli_version=cdk_cli_version(),
            # Without it the asset-publishing project runs `npm install -g cdk-assets@latest`.
            cdk_assets_cli_version=cdk_assets_version(),
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(build_image=BUILD_IMAGE)
            ),
            self_mutation_code_build_defaults=npm_tool_options(),
            asset_publishing_code_build_defaults=npm_tool_options(),
            publish_assets_in_parallel=False,
            docker_enabled_for_synth=False,
        )

        notification_key = kms.Key(
            self,
            "NotificationKey",
            description=f"Encrypts the {cfg.prefix} pipeline approval topic",
            enable_key_rotation=True,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # The approval action's role publishes to the topic; CDK grants it this key through IAM.
        self.approval = PlatformApproval(self, "Approval", cfg=cfg, key=notification_key)

        self.consumer_stage = consumer = ConsumerStage(self, CONSUMER_STAGE, cfg=cfg)
        # The smoke test's roles go into the stages before add_stage synthesizes them (pipeline/smoke.py).
        self.smoke = SmokeTest(self.pipeline, cfg, source)
        self.smoke.add_reader(consumer.data_lake)
        # Before each stage deploys: cdk-nag gate, then a human look at any IAM or security-group broadening
        # (docs/deploying-approvals.md).
        consumer_gate = nag_gate(CONSUMER_STAGE, source, synth)
        self.pipeline.add_stage(consumer, pre=[consumer_gate, self._permissions_check(consumer, consumer_gate)])

        self.producer_stage = producer = ProducerStage(self, PRODUCER_STAGE, cfg=cfg)
        self.smoke.add_writers(producer.producer)
        producer_gate = nag_gate(PRODUCER_STAGE, source, synth)
        producer_check = self._permissions_check(producer, producer_gate)
        # Gate first: nobody should be asked to approve what cannot deploy anyway.
        self.approval.step.add_step_dependency(producer_check)
        self.pipeline.add_stage(producer, pre=[producer_gate, producer_check, self.approval.step], post=self.smoke.post)
        CfnOutput(self, "ApprovalTopicArn", value=self.approval.topic.topic_arn)

        # Materialize the generated CodePipeline now so its roles can be inspected and report permissions
        # attached to the synth project.
        self.pipeline.build_pipeline()
        self.security_check = self._pin_security_check(cfg, notification_key)
        if self.security_check is not None:
            self._check_pipeline_changes(self.security_check)
        self.approver_policy = self.approval.approver_policy(
            self.pipeline_name,
            PRODUCER_STAGE,
            self.reports.arns,
            confirmations=[
                f"{stage}/{PERMISSIONS_CHECK}.Confirm" for stage in (PIPELINE_CHANGES, CONSUMER_STAGE, PRODUCER_STAGE)
            ],
            diff_project=self.security_check,
        )
        CfnOutput(self, "ApproverPolicyArn", value=self.approver_policy.managed_policy_arn)
        self._trigger_on_push(cfg)
        self._grant_connection_use(cfg)
        self.asset_projects = self._scope_asset_publishing_roles()
        self._install_cdk_assets_from_lock(self.asset_projects)
        self.reports.tests.grant_write(self.pipeline.synth_project)
        self.reports.nag.grant_write(self.pipeline.synth_project)
        artifacts = self.pipeline.pipeline.artifact_bucket
        self._log_artifact_access(cfg, artifacts)
        replication_buckets = self._log_replication_bucket_access(cfg)
        self.replication_key_statements = self._name_replication_keys()
        self.acknowledged = acknowledge_generated_wildcards(
            self.pipeline,
            PipelineIds(
                artifact_bucket=self.get_logical_id(artifacts.node.default_child),
                keys=(
                    self.get_logical_id(artifacts.encryption_key.node.default_child),
                    self.get_logical_id(notification_key.node.default_child),
                ),
                replication_buckets=replication_buckets,
            ),
        )
        self.compliance = compliance.apply(self, self.pipeline)

    def _permissions_check(self, stage: Stage, after: pipelines.Step) -> pipelines.Step:
        """CDK Pipelines' ConfirmPermissionsBroadening: `cdk diff --security-only` of the stage's stacks against
        what is deployed; a broadening (IAM statements, managed policies, security-group rules) stops at a manual
        approval, announced on the approval topic; no broadening approves itself through CDK's small Lambda."""
        check = pipelines.ConfirmPermissionsBroadening(
            PERMISSIONS_CHECK, stage=stage, notification_topic=self.approval.topic
        )
        check.add_step_dependency(after)
        return check

    def _pin_security_check(self, cfg: AppConfig, key: kms.Key) -> codebuild.Project | None:
        """The permissions check's CodeBuild project runs `npm install -g aws-cdk` (npm's latest, a 3.x CLI that
        cannot read this app's cloud assembly) on an unpinned Node: install the CLI package.json pins on the pinned
        Node instead, as self-mutation does. Returns the project (None without a permissions check)."""
        found = self.pipeline.node.try_find_child(SECURITY_CHECK_ID)
        if found is None:
            return None
        project = found.node.find_child("CDKSecurityCheck")
        assert isinstance(project, codebuild.Project)
        cfn = project.node.default_child
        assert isinstance(cfn, codebuild.CfnProject)
        source = self.resolve(cfn.source)
        # A JSON document rendered as Fn::Join (it names the auto-approve Lambda): edit its first, literal part.
        parts = source["buildSpec"]["Fn::Join"][1]
        stock = '"phases": {\n    "build": {\n      "commands": [\n        "npm install -g aws-cdk",\n'
        install = {
            "runtime-versions": {"nodejs": node_runtime_version()},
            "commands": [f"npm install -g aws-cdk@{cdk_cli_version()}"],
        }
        pinned = f'"phases": {{\n    "install": {json.dumps(install)},\n    "build": {{\n      "commands": [\n'
        assert parts[0].count(stock) == 1, "CDK Pipelines' security check buildspec changed: review this patch"
        # The pipeline's own check (_check_pipeline_changes) names its stacks in STACKS; a stage's check keeps
        # CDK's `<stage path>/*` (quoted: no shell globbing).
        selector = "--security-only --fail $STAGE_PATH/\\\\*"
        assert parts[0].count(selector) == 1, "CDK Pipelines' cdk diff command changed: review this patch"
        parts = [
            parts[0].replace(stock, pinned).replace(selector, '--security-only --fail ${STACKS:-\\"$STAGE_PATH/*\\"}'),
            *parts[1:],
        ]
        cfn.add_property_override("Source.BuildSpec", {"Fn::Join": ["", parts]})
        cfn.add_property_override("Environment.Image", BUILD_IMAGE.image_id)
        self._log_auto_approve(cfg, found, key)
        self._acknowledge_security_check(found, project)
        return project

    def _check_pipeline_changes(self, project: codebuild.Project) -> None:
        """The same permissions check for the pipeline's own stacks, in a stage of its own right before self-mutation
        (CDK Pipelines offers no step before it): `cdk diff --security-only` of the pipeline stack and its
        cross-region support stacks, then a confirmation the auto-approve Lambda answers when nothing broadens."""
        generated = self.pipeline.pipeline
        update = next(stage for stage in generated.stages if stage.stage_name == "UpdatePipeline")
        assembly = update.actions[0].action_properties.inputs[0]
        supports = sorted(s.stack.node.path for r, s in generated.cross_region_support.items() if r != self.region)
        stacks = [self.node.path, *supports]
        namespace = "PipelineChangesCheck"
        check = codepipeline_actions.CodeBuildAction(
            action_name=f"{PERMISSIONS_CHECK}.Check",
            project=project,
            input=assembly,
            run_order=1,
            variables_namespace=namespace,
            environment_variables={
                "STACKS": codebuild.BuildEnvironmentVariable(value=" ".join(stacks)),
                "STAGE_NAME": codebuild.BuildEnvironmentVariable(value=PIPELINE_CHANGES),
                "ACTION_NAME": codebuild.BuildEnvironmentVariable(value=f"{PERMISSIONS_CHECK}.Confirm"),
                "NOTIFICATION_ARN": codebuild.BuildEnvironmentVariable(value=self.approval.topic.topic_arn),
                "NOTIFICATION_SUBJECT": codebuild.BuildEnvironmentVariable(
                    value=f"Confirm permission broadening in {PIPELINE_CHANGES}"
                ),
            },
        )
        confirm = codepipeline_actions.ManualApprovalAction(
            action_name=f"{PERMISSIONS_CHECK}.Confirm",
            run_order=2,
            additional_information=f"#{{{namespace}.MESSAGE}}",
            external_entity_link=f"#{{{namespace}.LINK}}",
        )
        generated.add_stage(
            stage_name=PIPELINE_CHANGES,
            actions=[check, confirm],
            placement=codepipeline.StagePlacement(right_before=update),
        )

    def _log_auto_approve(self, cfg: AppConfig, check: Construct, key: kms.Key) -> None:
        """The auto-approve Lambda comes with an unencrypted /aws/lambda/<name> group: log it instead to a retained
        group encrypted with the pipeline's notification key. The group has a fixed name so that the key policy can
        name it (a reference to a group that refers to the key would be a cycle)."""
        approve = check.node.find_child("CDKPipelinesAutoApprove")
        assert isinstance(approve, lambda_.Function)
        assert approve.node.try_remove_child("LogGroup"), "CDK's auto-approve Lambda no longer has its own log group"
        name = f"/{cfg.prefix}/pipeline/permissions-check-auto-approve"
        group = logs.LogGroup(
            check,
            "AutoApproveLogs",
            log_group_name=name,
            encryption_key=key,
            retention=logs.RetentionDays.ONE_YEAR,
            removal_policy=RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE,
        )
        # CloudWatch Logs encrypts with the key only where its key policy lets the service use it for this group.
        allow_cloudwatch_logs(key, self, "CloudWatchLogsForTheAutoApproveGroup", "ArnEquals", log_group_arn(self, name))
        function = approve.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        function.add_property_override("LoggingConfig", {"LogGroup": group.log_group_name})
        function.add_resource_dependency(group.node.default_child)

    def _acknowledge_security_check(self, check: Construct, project: codebuild.Project) -> None:
        """The findings on what ConfirmPermissionsBroadening generates: its CodeBuild project (cdk diff) and the Lambda
        that approves a stage's confirmation when the diff finds no broadening."""
        approve = check.node.find_child("CDKPipelinesAutoApprove")
        assert isinstance(approve, lambda_.Function)
        function = approve.node.default_child
        assert isinstance(function, lambda_.CfnFunction)
        # Lambda's default 128 MB would do; the Serverless pack asks for an explicit size.
        function.memory_size = 256
        acknowledge(
            check,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]",
            "CDK Pipelines' auto-approve Lambda of the permissions check uses the AWS managed basic execution policy "
            "to write its own CloudWatch logs; it holds no data, its only other grant is answering approvals of "
            "pipelines tagged SECURITY_CHECK=ALLOW_APPROVE (this one).",
        )
        acknowledge(
            check,
            "AwsSolutions-IAM5[Resource::*]",
            "Generated by CDK Pipelines for the permissions check: the auto-approve Lambda may read pipeline state and "
            "answer approvals only of pipelines tagged SECURITY_CHECK=ALLOW_APPROVE (aws:ResourceTag condition: this "
            "pipeline), and the cdk diff project may assume only roles tagged as CDK bootstrap deploy roles "
            "(iam:ResourceTag/aws-cdk:bootstrap-role condition), which is how cdk diff reads the deployed templates.",
        )
        acknowledge(
            check,
            f"AwsSolutions-IAM5[Resource::<{self.get_logical_id(function)}.Arn>:*]",
            "Generated by CDK Pipelines: the cdk diff project may invoke the auto-approve Lambda (its versions and "
            "aliases are the wildcard) and nothing else of Lambda.",
        )
        acknowledge_rule(
            approve,
            "CDK Pipelines' auto-approve Lambda calls the public CodePipeline API once per permissions check to "
            "approve "
            "a stage whose cdk diff found no broadening; the pipeline has no VPC, and outside one the call needs no "
            "network path. It is invoked asynchronously by the check's CodeBuild project: if it fails, the stage's "
            "confirmation simply stays pending for a human (the safe side), so a dead-letter queue would hold "
            "nothing anyone must replay, and one call per check needs no reserved concurrency.",
            *in_packs("LambdaInsideVPC", *REGULATORY),
            *in_packs("LambdaDLQ", HIPAA, NIST, SERVERLESS),
            *in_packs("LambdaConcurrency", HIPAA, NIST),
            "Serverless-LambdaTracing",
        )
        acknowledge_rule(
            project,
            "The permissions check's project has no source of its own: CodePipeline hands it the cloud assembly "
            "artifact (KMS-encrypted) that the Synth step built from the commit fetched through the CodeConnections "
            "connection; it holds no repository URL or credentials.",
            *in_packs("CodeBuildProjectSourceRepoUrl", HIPAA, PCI),
        )

    def _trigger_on_push(self, cfg: AppConfig) -> None:
        """An explicit V2 trigger: pushes to the configured branch (and only those) start the pipeline."""
        source_action = self.pipeline.pipeline.stages[0].actions[0]
        self.pipeline.pipeline.add_trigger(
            provider_type=codepipeline.ProviderType.CODE_STAR_SOURCE_CONNECTION,
            git_configuration=codepipeline.GitConfiguration(
                source_action=source_action,
                push_filter=[codepipeline.GitPushFilter(branches_includes=[cfg.source.branch])],
            ),
        )

    def _grant_connection_use(self, cfg: AppConfig) -> None:
        """CDK grants the source action only `codestar-connections:UseConnection`, but IAM matches an action's service
        prefix to the resource's, and connections created since 2024 are `arn:aws:codeconnections:...`
        (https://docs.aws.amazon.com/dtconsole/latest/userguide/rename.html): grant the action whose prefix matches
        the configured ARN, on that ARN only."""
        stage = self.pipeline.pipeline.stages[0]
        action = stage.actions[0].action_properties
        role = action.role
        if role is None:
            # The pipeline creates the action's role under <stage>/<action> when the action brings none.
            found = (
                self.pipeline.pipeline.node.find_child(stage.stage_name)
                .node.find_child(action.action_name)
                .node.find_child("CodePipelineActionRole")
            )
            assert isinstance(found, iam.Role), found.node.path
            role = found
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=[f"{cfg.source.connection_service}:UseConnection"], resources=[cfg.source.connection_arn]
            )
        )

    def _scope_asset_publishing_roles(self) -> list[codebuild.Project]:
        """CDK Pipelines creates each asset-publishing role before its projects and grants it CodeBuild logs, report
        groups and StartBuild/StopBuild/BatchGetBuilds on every project of the account: a compromised asset job could
        start the self-mutation project, whose role can assume the deploy roles. Narrow those statements to the asset
        projects' own log groups, report groups and builds, as CDK scopes every other project's role.

        The role's policy document is replaced by its resolved form, so this runs after build_pipeline(), when CDK
        Pipelines has finished granting to these roles. Returns the asset-publishing projects."""
        assets = self.pipeline.node.try_find_child("Assets")
        if assets is None:
            return []
        projects = [c for c in assets.node.children if isinstance(c, codebuild.Project)]
        for role in (c for c in assets.node.children if isinstance(c, iam.Role)):
            own = [p for p in projects if p.role is not None and p.role.node.path == role.node.path]
            policy = role.node.find_child("DefaultPolicy").node.default_child
            assert isinstance(policy, iam.CfnPolicy) and own, role.node.path
            document = self.resolve(policy.policy_document)
            document["Statement"] = [self._own_project_resources(s, own) for s in document["Statement"]]
            policy.policy_document = document
        return projects

    def _install_cdk_assets_from_lock(self, projects: list[codebuild.Project]) -> None:
        """CDK Pipelines' asset projects run `npm install -g cdk-assets@<version>`: the tool is pinned, its dependencies
        float. Their buildspec is a file CDK Pipelines has just written into the cloud assembly (their only input):
        put the committed lock file there too and make the buildspec `npm ci` it and run that cdk-assets."""
        outdir = Path(Stage.of(self).outdir)
        lock_dir = cdk_assets_lock()
        target = outdir / CDK_ASSETS_TOOL_DIR
        target.mkdir(parents=True, exist_ok=True)
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(lock_dir / name, target / name)
        stock = f"npm install -g cdk-assets@{cdk_assets_version()}"
        for project in projects:
            cfn = project.node.default_child
            assert isinstance(cfn, codebuild.CfnProject)
            path = outdir / self.resolve(cfn.source)["buildSpec"]
            spec = json.loads(path.read_text())
            install = spec["phases"]["install"]
            assert install["commands"] == [stock], install["commands"]  # what CDK Pipelines 2.275 writes
            install["commands"] = [f"npm ci --prefix {CDK_ASSETS_TOOL_DIR} --ignore-scripts --no-audit --no-fund"]
            build = spec["phases"]["build"]["commands"]
            assert all(c.startswith("cdk-assets ") for c in build), build
            tool = f"{CDK_ASSETS_TOOL_DIR}/node_modules/.bin/cdk-assets"
            spec["phases"]["build"]["commands"] = [tool + c.removeprefix("cdk-assets") for c in build]
            path.write_text(json.dumps(spec, indent=2))

    def _own_project_resources(self, statement: dict[str, Any], projects: list[codebuild.Project]) -> dict[str, Any]:
        """The statement with an account-wide CodeBuild resource replaced by the same resource of ``projects`` only
        (the log group and report-group prefix CodeBuild names after a project, or the projects themselves)."""
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        resource = statement.get("Resource")
        if not isinstance(resource, str):
            return statement
        if resource.endswith(":log-group:/aws/codebuild/*"):
            groups = [
                self.format_arn(
                    service="logs",
                    resource="log-group",
                    arn_format=ArnFormat.COLON_RESOURCE_NAME,
                    resource_name=f"/aws/codebuild/{p.project_name}",
                )
                for p in projects
            ]
            return {**statement, "Resource": [arn for group in groups for arn in (group, f"{group}:*")]}
        if resource.endswith(":report-group/*"):
            return {
                **statement,
                "Resource": [
                    self.format_arn(service="codebuild", resource="report-group", resource_name=f"{p.project_name}-*")
                    for p in projects
                ],
            }
        if resource == "*" and all(a.startswith("codebuild:") for a in actions):
            return {**statement, "Resource": [p.project_arn for p in projects]}
        return statement

    def _log_replication_bucket_access(self, cfg: AppConfig) -> tuple[str, ...]:
        """A stage in another region than the pipeline makes CodePipeline add a support stack there, with a
        replication bucket for the artifacts; give each such bucket server access logs in its own stack and region.
        Returns the buckets' physical names (the pipeline role's generated statements name them)."""
        names = []
        for support in self.pipeline.pipeline.cross_region_support.values():
            bucket = support.replication_bucket
            # CodePipeline names the bucket (a generated physical name): a failed first create must delete it so
            # the retry can create it again; afterwards it is kept like the artifact bucket.
            cfn = bucket.node.default_child
            assert isinstance(cfn, s3.CfnBucket)
            cfn.apply_removal_policy(RemovalPolicy.RETAIN_ON_UPDATE_OR_DELETE)
            self._log_bucket_access(
                support.stack, "ReplicationAccessLogs", bucket, cfg.data_lake.access_log_expiration_days
            )
            names.append(str(self.resolve(bucket.bucket_name)))
        return tuple(names)

    def _name_replication_keys(self) -> list[dict[str, Any]]:
        """CodePipeline grants its service role the KMS actions on '*' for the replication keys of the cross-region
        support stacks (keys in another stack and region, whose ARNs CDK cannot name here). Each support stack's key
        has an alias of a name known at synthesis: grant the same actions on the keys of that region and this account
        that carry one of those aliases (kms:ResourceAliases, documented for keys in the caller's account:
        https://docs.aws.amazon.com/kms/latest/developerguide/conditions-kms.html#conditions-kms-resource-aliases),
        instead of on every key. Returns the new statements (none without a support stack)."""
        aliases: dict[str, str] = {}
        for region, support in self.pipeline.pipeline.cross_region_support.items():
            key = support.replication_bucket.encryption_key
            if region == self.region or key is None or Stack.of(key).node.path == self.node.path:
                continue
            assert isinstance(key, kms.Alias), key
            aliases[region] = str(self.resolve(key.alias_name))
        if not aliases:
            return []
        role = self.pipeline.pipeline.role
        policy = role.node.find_child("DefaultPolicy").node.default_child
        assert isinstance(policy, iam.CfnPolicy)
        document = self.resolve(policy.policy_document)
        added: list[dict[str, Any]] = []
        statements = []
        for statement in document["Statement"]:
            resources = statement.get("Resource")
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            if not (isinstance(resources, list) and "*" in resources and all(a.startswith("kms:") for a in actions)):
                statements.append(statement)
                continue
            # The statement's other resources (the artifact key) stay as they are.
            named = [r for r in resources if r != "*"]
            if named:
                statements.append({**statement, "Resource": named if len(named) > 1 else named[0]})
            for region, alias in sorted(aliases.items()):
                keys = self.format_arn(service="kms", region=region, resource="key", resource_name="*")
                added.append(
                    {
                        **statement,
                        "Resource": keys,
                        "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": alias}},
                    }
                )
        assert added, "CodePipeline no longer grants its role KMS on '*' for cross-region keys: review this method"
        document["Statement"] = statements + added
        policy.policy_document = document
        return added

    def _log_artifact_access(self, cfg: AppConfig, artifacts: s3.IBucket) -> None:
        """Server access logs for the generated artifact bucket (CDK Pipelines offers no option for it)."""
        self._log_bucket_access(self, "ArtifactAccessLogs", artifacts, cfg.data_lake.access_log_expiration_days)

    @staticmethod
    def _log_bucket_access(scope: Construct, construct_id: str, artifacts: s3.IBucket, expiration_days: int) -> None:
        logs = AccessLogBucket(scope, construct_id, bucket_name=None, expiration_days=expiration_days).bucket
        prefix = "artifacts/"
        cfn_bucket = artifacts.node.default_child
        assert isinstance(cfn_bucket, s3.CfnBucket)
        cfn_bucket.logging_configuration = s3.CfnBucket.LoggingConfigurationProperty(
            destination_bucket_name=logs.bucket_name, log_file_prefix=prefix
        )
        logs.add_to_resource_policy(
            iam.PolicyStatement(
                sid="S3ServerAccessLogsFromArtifactBucket",
                principals=[iam.ServicePrincipal("logging.s3.amazonaws.com")],
                actions=["s3:PutObject"],
                resources=[logs.arn_for_objects(f"{prefix}*")],
                conditions={
                    "ArnLike": {"aws:SourceArn": artifacts.bucket_arn},
                    "StringEquals": {"aws:SourceAccount": Stack.of(scope).account},
                },
            )
        )
