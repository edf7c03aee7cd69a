"""Sessions and clients. Everything goes through boto3's standard credential chain, so profiles, environment
credentials, ``AWS_REGION`` and ``AWS_ENDPOINT_URL`` work as in any AWS tool; a command's ``--profile-*`` and
``--role-*`` options only choose which credentials reach which account."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from ops.common import ExitCode, OpsError

# Standard-mode retries (with more attempts) absorb throttling; our own loops handle the rest (PutRecords entries).
CLIENT_CONFIG = Config(retries={"mode": "standard", "max_attempts": 8}, user_agent_extra="ddb-lake")
SESSION_NAME = "ddb-lake"


@dataclass(frozen=True)
class Credentials:
    """Which credentials reach one account: a named profile (else the default chain), then optionally a role
    assumed with them."""

    profile: str | None = None
    role_arn: str | None = None

    def describe(self) -> str:
        base = f"profile {self.profile!r}" if self.profile else "the default credentials"
        return f"role {self.role_arn} assumed with {base}" if self.role_arn else base


def session(credentials: Credentials, region: str | None = None) -> boto3.Session:
    try:
        base = boto3.Session(profile_name=credentials.profile, region_name=region)
    except ProfileNotFound as error:
        raise OpsError(f"{error}: check ~/.aws/config or the --profile-* option", ExitCode.USAGE) from None
    if not credentials.role_arn:
        return base
    return assume(base, credentials.role_arn, region)


def assume(base: boto3.Session, role_arn: str, region: str | None = None) -> boto3.Session:
    """A session with ``role_arn``'s temporary credentials (one hour: longer than any smoke test)."""
    try:
        answer = client(base, "sts", region).assume_role(RoleArn=role_arn, RoleSessionName=SESSION_NAME)
    except (ClientError, BotoCoreError) as error:
        raise OpsError(f"cannot assume {role_arn}: {describe(error)}", ExitCode.AWS) from None
    creds = answer["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region or base.region_name,
    )


def client(session: boto3.Session, service: str, region: str | None = None) -> Any:
    """A client; tests replace this function to stub services moto does not implement."""
    return session.client(service, region_name=region or session.region_name, config=CLIENT_CONFIG)


def error_code(error: Exception) -> str:
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


def describe(error: Exception) -> str:
    """One line for an AWS failure: the operation, the code and AWS's own message."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "call")
        message = " ".join(str(info.get("Message", "")).split())
        return f"{operation}: {info.get('Code', 'error')}" + (f": {message}" if message else "")
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE, pass --profile-*, or export credentials)"
    return " ".join(str(error).split()) or type(error).__name__
