from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stage
from constructs import Construct

from consumer.stack import DataLakeStack
from shared.config import AppConfig


class ConsumerStage(Stage):
    """Deployable unit for account B."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=cfg.consumer.account, region=cfg.consumer.region),
            **kwargs,
        )
        self.data_lake = DataLakeStack(self, "DataLake", cfg=cfg, description="Cross-account DynamoDB data lake")
