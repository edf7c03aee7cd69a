from __future__ import annotations

from typing import Any

from aws_cdk import Environment, Stage
from constructs import Construct

from producer.stack import ProducerStack
from shared.config import AppConfig


class ProducerStage(Stage):
    """Deployable unit for account A."""

    def __init__(self, scope: Construct, construct_id: str, *, cfg: AppConfig, **kwargs: Any) -> None:
        super().__init__(
            scope,
            construct_id,
            env=Environment(account=cfg.producer.account, region=cfg.producer.region),
            **kwargs,
        )
        self.producer = ProducerStack(
            self, "ChangeCapture", cfg=cfg, description="DynamoDB change capture into the data lake"
        )
