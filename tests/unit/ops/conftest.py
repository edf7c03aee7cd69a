"""In-process AWS (moto) with fake credentials, a cdk.json per test, a fake clock, and stubs for the APIs
moto does not implement (Lambda GetAccountSettings, CodeConnections GetConnection, AWS Backup's settings)."""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber
from moto import mock_aws
from typer.testing import CliRunner

from ops import aws, common
from tests import configs

TOOLING, CONSUMER, PRODUCER = configs.TOOLING, configs.CONSUMER, configs.PRODUCER
REGION = "eu-west-1"
STUBBED = {"lambda", "codeconnections", "codestar-connections", "backup"}


class FakeClock:
    """Moves only when slept on; ``on_sleep`` runs after each advance (the outside world acting meanwhile)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime.now(UTC)
        self._origin = self._now
        self._lock = threading.Lock()
        self.on_sleep: Callable[[FakeClock], None] | None = None
        self.slept = 0.0

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return (self._now - self._origin).total_seconds()

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=max(seconds, 0.0))
            self.slept += max(seconds, 0.0)
        if self.on_sleep:
            self.on_sleep(self)


@pytest.fixture(autouse=True)
def fake_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    # Never a real credential or endpoint: fake keys, no profile, config files that do not exist.
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION", "1")
    with mock_aws():
        yield


@pytest.fixture
def clock() -> Iterator[FakeClock]:
    fake = FakeClock()
    previous = common.use_clock(fake)
    yield fake
    common.use_clock(previous)


@pytest.fixture
def runner(monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    # A wide "terminal", so table cells and messages keep their text on one line for the assertions.
    for console in (common.out, common.err):
        monkeypatch.setattr(console, "width", 400)
    return CliRunner()


def write_cdk_json(path: Path, raw: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"app": "python3 app.py", "context": {"datalake": raw}}))
    return path


@pytest.fixture
def cdk_json(tmp_path: Path) -> Path:
    return write_cdk_json(tmp_path / "cdk.json", configs.variant("default"))


def role_arn(account: str, name: str = "ops") -> str:
    return f"arn:aws:iam::{account}:role/{name}"


def account_session(account: str, region: str = REGION) -> boto3.Session:
    """Credentials that moto maps to ``account`` (it keeps one backend per account)."""
    return aws.assume(boto3.Session(region_name=region), role_arn(account, "test-setup"), region)


class Stubs:
    """Canned answers, per service, for the APIs moto lacks; unanswered calls fail the test."""

    def __init__(self) -> None:
        self.responses: dict[str, list[tuple[str, dict[str, Any] | Exception]]] = defaultdict(list)
        self.stubbers: list[Stubber] = []

    def add(self, service: str, method: str, answer: dict[str, Any] | Exception) -> None:
        self.responses[service].append((method, answer))

    def client(
        self, session: boto3.Session, service: str, region: str | None = None, config: Any = aws.CLIENT_CONFIG
    ) -> Any:
        real = session.client(service, region_name=region or session.region_name, config=config)
        if service not in STUBBED:
            return real
        stubber = Stubber(real)
        for method, answer in self.responses[service]:
            if isinstance(answer, Exception):
                stubber.add_client_error(method, service_error_code=str(answer), http_status_code=400)
            else:
                stubber.add_response(method, answer)
        self.responses[service] = []
        stubber.activate()
        self.stubbers.append(stubber)
        return real


@pytest.fixture
def stubs(monkeypatch: pytest.MonkeyPatch) -> Stubs:
    found = Stubs()
    monkeypatch.setattr(aws, "client", found.client)
    return found
