"""The smoke test's roles and pipeline step, for every configuration: exact names from shared.naming, the
smoke-key-only DynamoDB condition, the data/-only S3 conditions, and trust limited to the pipeline step's role."""

from __future__ import annotations

import json
from typing import Any

from aws_cdk.assertions import Template

from pipeline.smoke import SMOKE_COMMAND, STEP_ID
from pipeline.stack import PRODUCER_STAGE
from shared import naming
from shared.smoke_targets import LAKEHOUSE_FIRST_RUN_SECONDS, smoke_tables, smoke_timeout_seconds


def _role(template: Template, name: str) -> dict[str, Any]:
    """The role's properties, with ``Statements``: every statement of every policy attached to it, by Sid."""
    found = template.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": name}})
    assert len(found) == 1, f"expected one role named {name}, found {list(found)}"
    ((role_id, role),) = found.items()
    assert "Policies" not in role["Properties"]  # no inline policy (the regulatory packs refuse them)
    attached = template.find_resources("AWS::IAM::ManagedPolicy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    assert not template.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    statements = [s for p in attached.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    return {**role["Properties"], "Statements": {s["Sid"]: s for s in statements}}


def _statements(role: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return role["Statements"]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _assert_trusts_only_the_step(role: dict[str, Any], cfg) -> None:
    (statement,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert statement["Effect"] == "Allow" and statement["Action"] == "sts:AssumeRole"
    assert statement["Principal"] == {"AWS": f"arn:{cfg.tooling.partition}:iam::{cfg.tooling.account}:root"}
    assert statement["Condition"] == {"ArnEquals": {"aws:PrincipalArn": naming.tooling(cfg).smoke_step_role_arn}}
    assert naming.tooling(cfg).smoke_step_role_arn.endswith(":role/" + naming.tooling(cfg).smoke_step_role)


def test_each_smoke_table_has_a_writer_role_limited_to_smoke_keys(producer: Template, cfg):
    tested = {spec.name for spec in smoke_tables(cfg)}
    assert tested, "every configuration under test has a table the smoke test can use"
    for spec, names in naming.tables(cfg):
        found = producer.find_resources("AWS::IAM::Role", {"Properties": {"RoleName": names.smoke_writer_role}})
        if spec.name not in tested:
            assert not found  # e.g. a numeric partition key cannot carry the smoke prefix: no role at all
            continue
        role = _role(producer, names.smoke_writer_role)
        _assert_trusts_only_the_step(role, cfg)
        statements = _statements(role)
        items = statements["SmokeItemsOfThisTableOnly"]
        assert sorted(items["Action"]) == sorted(
            ["dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:GetItem"]
        )
        assert items["Resource"] == names.table_arn
        assert items["Condition"] == {
            "ForAllValues:StringLike": {"dynamodb:LeadingKeys": [naming.SMOKE_KEY_PREFIX + "*"]},
            "Null": {"dynamodb:LeadingKeys": "false"},
        }
        key = statements["TableKeyViaDynamoDB"]
        assert key["Action"] == "kms:Decrypt"
        assert key["Condition"]["StringEquals"] == {
            "kms:ViaService": f"dynamodb.{cfg.producer.region}.amazonaws.com",
            "kms:EncryptionContext:aws:dynamodb:tableName": names.table,
            "kms:EncryptionContext:aws:dynamodb:subscriberId": cfg.producer.account,
        }
        if spec.existing_table_name is None:
            assert "Fn::GetAtt" in key["Resource"]  # the stack's own key, not a wildcard
        assert set(statements) == {"SmokeItemsOfThisTableOnly", "TableKeyViaDynamoDB"}


def _probe(consumer: Template, cfg) -> tuple[str, dict[str, Any]]:
    lake = naming.lake(cfg)
    found = consumer.find_resources("AWS::Lambda::Function", {"Properties": {"FunctionName": lake.smoke_reader_role}})
    assert len(found) == 1
    return next(iter(found.items()))


def test_reader_role_may_only_invoke_the_probe(consumer: Template, cfg):
    # The tooling account reads nothing of B itself: no S3, no KMS, no Athena; only the probe, which answers with
    # the smoke items' own lines and the views' outcomes (consumer/smoke.py).
    lake = naming.lake(cfg)
    role = _role(consumer, lake.smoke_reader_role)
    _assert_trusts_only_the_step(role, cfg)
    probe_id, _ = _probe(consumer, cfg)
    assert _statements(role) == {
        "InvokeTheSmokeProbeOnly": {
            "Sid": "InvokeTheSmokeProbeOnly",
            "Effect": "Allow",
            "Action": "lambda:InvokeFunction",
            "Resource": {"Fn::GetAtt": [probe_id, "Arn"]},
        }
    }
    # No resource policy opens the probe to anyone else.
    permissions = consumer.find_resources("AWS::Lambda::Permission")
    assert [p for p in permissions.values() if probe_id in json.dumps(p["Properties"]["FunctionName"])] == []


def test_probe_knows_each_smoke_table_its_key_column_and_its_views(consumer: Template, cfg):
    from lambdas.smoke_probe.handler import parameter_count
    from lambdas.transform.flatten import top_level_column

    lake = naming.lake(cfg)
    _, probe = _probe(consumer, cfg)
    props = probe["Properties"]
    assert (props["Runtime"], props["Architectures"], props["Handler"]) == ("python3.14", ["arm64"], "handler.handler")
    env = props["Environment"]["Variables"]
    assert (env["BUCKET"], env["DATABASE"], env["WORKGROUP"]) == (lake.bucket, lake.database, lake.workgroup)
    assert env["SMOKE_PREFIX"] == naming.SMOKE_KEY_PREFIX
    tables = json.loads(env["TABLES"])
    views = {
        r["Properties"]["TableInput"]["Name"]
        for r in consumer.find_resources("AWS::Glue::Table").values()
        if r["Properties"]["TableInput"].get("TableType") == "VIRTUAL_VIEW"
    }
    expected = {}
    for spec in smoke_tables(cfg):
        names = naming.table(cfg, spec)
        wanted = [names.history_view, names.current_view, names.raw_history_view, names.raw_current_view]
        queries = {
            r["Properties"]["Name"]: r["Properties"]["QueryString"]
            for r in consumer.find_resources("AWS::Athena::NamedQuery").values()
            if r["Properties"]["Name"].startswith(f"{names.glue_table}: ")
        }
        expected[names.key] = {
            "root": names.root(naming.DATA),
            "column": top_level_column(spec.partition_key),
            "views": [view for view in wanted if view in views],
            "queries": sorted(queries),
            # With the lakehouse on, the Iceberg tables the views read, and the state machine that creates them.
            "lakehouse": {
                "root": f"lakehouse/{names.key}/",
                "tables": [names.iceberg_history_table, names.iceberg_state_table],
                "state_machine": f"arn:aws:states:{cfg.consumer.region}:{cfg.consumer.account}:stateMachine:"
                f"{names.maintenance_state_machine}",
            }
            if cfg.lakehouse.enabled
            else None,
        }
        if cfg.lakehouse.enabled:
            machine = {"Properties": {"StateMachineName": names.maintenance_state_machine}}
            machines = consumer.find_resources("AWS::StepFunctions::StateMachine", machine)
            assert len(machines) == 1
        # The probe sets each placeholder, and finds them all: the item's key columns, none, or the two window
        # bounds twice (consumer/queries.py).
        counts = {name.split(": ", 1)[1]: parameter_count(sql) for name, sql in queries.items()}
        keys = 1 + bool(spec.sort_key)
        assert counts == {"one item's history": keys, "current state": 0, "changes per hour": 4}
        # History and current state at least: every view the smoke step queries exists in the stack.
        assert {names.history_view, names.current_view} <= set(expected[names.key]["views"])
    assert tables == expected


def test_probe_reads_only_the_smoke_tables_data_and_queries_through_the_workgroup(consumer: Template, cfg):
    lake = naming.lake(cfg)
    _, probe = _probe(consumer, cfg)
    role_id = probe["Properties"]["Role"]["Fn::GetAtt"][0]
    (trust,) = consumer.find_resources("AWS::IAM::Role")[role_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert "Condition" not in trust
    attached = consumer.find_resources("AWS::IAM::ManagedPolicy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    statements = {s["Sid"]: s for p in attached.values() for s in p["Properties"]["PolicyDocument"]["Statement"]}
    tables = [naming.table(cfg, spec) for spec in smoke_tables(cfg)]
    roots = [names.root(naming.DATA) for names in tables]
    assert all(root.startswith("data/") for root in roots)
    # The lakehouse tables' folders too (Athena plans a view over Iceberg from its metadata files).
    if cfg.lakehouse.enabled:
        roots += [f"lakehouse/{names.key}/" for names in tables]
    listing = statements["ListSmokeTablesDataOnly"]
    assert listing["Action"] == "s3:ListBucket" and listing["Resource"] == lake.bucket_arn
    assert listing["Condition"] == {"StringLike": {"s3:prefix": [root + "*" for root in roots]}}
    assert statements["ReadSmokeTablesData"]["Action"] == "s3:GetObject"
    assert _as_list(statements["ReadSmokeTablesData"]["Resource"]) == [f"{lake.bucket_arn}/{root}*" for root in roots]
    athena = statements["RunViewQueriesInTheWorkgroup"]
    assert json.dumps(athena["Resource"]).endswith(f':workgroup/{lake.workgroup}"]]}}') or athena["Resource"].endswith(
        f":workgroup/{lake.workgroup}"
    )
    assert all(a.startswith("athena:") and "*" not in a for a in _as_list(athena["Action"]))
    assert all(a.startswith("glue:Get") for a in _as_list(statements["ReadTheLakeCatalog"]["Action"]))
    results = f"arn:{cfg.consumer.partition}:s3:::{lake.results_bucket}"
    assert statements["WriteQueryResultObjects"]["Resource"] == f"{results}/*"
    assert statements["LakeKeyViaS3"]["Condition"] == {
        "StringEquals": {"kms:ViaService": f"s3.{cfg.consumer.region}.amazonaws.com"}
    }
    if cfg.lakehouse.enabled:
        start = statements.pop("StartTheFirstLakehouseRun")
        assert start["Action"] == "states:StartExecution"
        assert sorted(_as_list(start["Resource"])) == sorted(
            naming.lake(cfg).state_machine_arn(names.maintenance_state_machine) for names in tables
        )
    assert set(statements) == {
        "ListSmokeTablesDataOnly",
        "ReadSmokeTablesData",
        "RunViewQueriesInTheWorkgroup",
        "ReadTheLakeCatalog",
        "WriteQueryResults",
        "WriteQueryResultObjects",
        "LakeKeyViaS3",
        "WriteOwnLogs",
    }
    # Its log group is encrypted with the lake key, which lets CloudWatch Logs use it for that group only.
    group_name = f"/aws/lambda/{lake.smoke_reader_role}"
    assert probe["Properties"]["LoggingConfig"]["LogGroup"]["Ref"] in consumer.find_resources(
        "AWS::Logs::LogGroup", {"Properties": {"LogGroupName": group_name}}
    )


def test_pipeline_step_runs_the_smoke_test_after_the_producer_deploys(pipeline: Template, cfg):
    (codepipeline,) = pipeline.find_resources("AWS::CodePipeline::Pipeline").values()
    stage = next(s for s in codepipeline["Properties"]["Stages"] if s["Name"] == PRODUCER_STAGE)
    orders = {a["Name"]: a["RunOrder"] for a in stage["Actions"]}
    deploys = [a["Name"] for a in stage["Actions"] if a["ActionTypeId"]["Category"] == "Deploy"]
    assert deploys and all(orders[STEP_ID] > orders[d] for d in deploys)
    action = next(a for a in stage["Actions"] if a["Name"] == STEP_ID)
    project = pipeline.find_resources("AWS::CodeBuild::Project")[action["Configuration"]["ProjectName"]["Ref"]]
    spec = json.loads(project["Properties"]["Source"]["BuildSpec"])
    assert spec["phases"]["build"]["commands"] == [SMOKE_COMMAND]
    assert spec["phases"]["install"]["commands"] == ["python -m pip install --quiet -e ."]
    # The delivery, and the lakehouse's first run when the view check has to wait for it.
    longest = max(smoke_timeout_seconds(cfg, spec) for spec in smoke_tables(cfg))
    waits = longest + (LAKEHOUSE_FIRST_RUN_SECONDS if cfg.lakehouse.enabled else 0)
    assert project["Properties"]["TimeoutInMinutes"] * 60 > waits

    # The project runs as the role with the fixed name, and that role may assume exactly the smoke roles.
    role_id = project["Properties"]["ServiceRole"]["Fn::GetAtt"][0]
    role = pipeline.find_resources("AWS::IAM::Role")[role_id]["Properties"]
    assert role["RoleName"] == naming.tooling(cfg).smoke_step_role
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "codebuild.amazonaws.com"}
    # Confused deputy: only CodeBuild acting for this account's smoke project (fixed name, so no reference cycle).
    name = naming.tooling(cfg).smoke_step_role
    assert project["Properties"]["Name"] == name
    where = f"arn:aws:codebuild:{cfg.tooling.region}:{cfg.tooling.account}"
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": cfg.tooling.account},
        "ArnLike": {"aws:SourceArn": [f"{where}:project/{name}", f"{where}:build/{name}:*"]},
    }
    policies = pipeline.find_resources("AWS::IAM::Policy", {"Properties": {"Roles": [{"Ref": role_id}]}})
    statements = [s for p in policies.values() for s in p["Properties"]["PolicyDocument"]["Statement"]]
    assume = [s for s in statements if "sts:AssumeRole" in _as_list(s["Action"])]
    assert len(assume) == 1
    expected = [naming.table(cfg, spec).smoke_writer_role_arn for spec in smoke_tables(cfg)]
    assert sorted(_as_list(assume[0]["Resource"])) == sorted([*expected, naming.lake(cfg).smoke_reader_role_arn])


def test_sandbox_has_no_smoke_roles(sandboxed):
    # The roles exist for the pipeline's step only; a sandbox deploys without a pipeline.
    from tests.conftest import template_of

    assert sandboxed.sandbox is not None
    for stack in (sandboxed.sandbox.data_lake, sandboxed.sandbox.producer):
        roles = template_of(stack).find_resources("AWS::IAM::Role")
        assert not [r for r in roles.values() if "smoke" in str(r["Properties"].get("RoleName", ""))]
