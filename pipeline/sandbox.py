"""Both halves in one developer account, deployed directly (no pipeline) to try a change before pushing.

npx cdk deploy 'Sandbox/*' -c sandbox_account=123456789012 [-c sandbox_region=eu-west-1]
"""

from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stage
from constructs import Construct

from consumer.stack import DataLakeStack
from producer.stack import ProducerStack
from shared.config import AppConfig


class SandboxStage(Stage):
    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        env = Environment(account=cfg.producer.account, region=cfg.producer.region)
        super().__init__(scope, construct_id, env=env, **kwargs)
        # Stack names carry the (per-developer) prefix: two sandboxes in one account never update each other.
        self.data_lake = DataLakeStack(self, "DataLake", cfg=cfg, stack_name=f"{cfg.prefix}-sandbox-datalake")
        self.producer = ProducerStack(self, "ChangeCapture", cfg=cfg, stack_name=f"{cfg.prefix}-sandbox-capture")
        # No construct references (the names come from shared.naming), only the order: bucket and key first.
        self.producer.add_stack_dependency(self.data_lake)
