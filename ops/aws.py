"""Sessions and clients. Everything goes through boto3's standard credential chain, so profiles, environment
credentials and ``AWS_ENDPOINT_URL`` work as in any AWS tool; a command's ``--profile-*`` and ``--role-*`` options
only choose which credentials reach which account. Every session that touches an account is checked to belong to
the configured account (STS GetCallerIdentity) before anything else is called."""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ProfileNotFound,
    ProxyConnectionError,
    ReadTimeoutError,
)
from botocore.parsers import ResponseParserError

from ops.common import ExitCode, OpsError
from shared.config import KNOWN_REGIONS

# An interactive tool must not hang: botocore's defaults are 60 s to connect, 60 s to read, and (legacy mode) up to
# 5 attempts, which made an unreachable endpoint cost minutes. A connection that takes 5 s will not succeed, 30 s
# covers any single answer these commands wait for, and 3 standard-mode attempts absorb a throttle or a blip
# (https://docs.aws.amazon.com/sdkref/latest/guide/feature-retry-behavior.html,
# https://botocore.amazonaws.com/v1/documentation/api/latest/reference/config.html).
CONNECT_TIMEOUT_SECONDS = 5
READ_TIMEOUT_SECONDS = 30
CLIENT_CONFIG = Config(
    connect_timeout=CONNECT_TIMEOUT_SECONDS,
    read_timeout=READ_TIMEOUT_SECONDS,
    retries={"mode": "standard", "total_max_attempts": 3},
    user_agent_extra="ddb-lake",
)
# The backfill's own loop retries failed PutRecords entries and throttled requests; a scan page, though, is one
# call that may be throttled on a busy table: more attempts there (same timeouts).
BULK_CONFIG = CLIENT_CONFIG.merge(Config(retries={"mode": "standard", "total_max_attempts": 8}))
SESSION_NAME = "ddb-lake"
# Region variables in the order the AWS SDKs and CLI read them
# (https://docs.aws.amazon.com/sdkref/latest/guide/feature-region.html); boto3 itself reads only the second.
REGION_VARIABLES = ("AWS_REGION", "AWS_DEFAULT_REGION")
CONNECTION_ERRORS = (
    # Something answered that is not AWS (a proxy, a captive portal, a wrong AWS_ENDPOINT_URL); botocore does not
    # derive this one from BotoCoreError, so it is named here and in ERRORS.
    ResponseParserError,
    EndpointConnectionError,
    ConnectTimeoutError,
    ReadTimeoutError,
    ConnectionClosedError,
    ProxyConnectionError,
)

# Everything a failed AWS call raises: caught as the command's exit 3 or as a preflight check's ✗.
ERRORS = (ClientError, BotoCoreError, ResponseParserError)


@dataclass(frozen=True)
class Credentials:
    """Which credentials reach one account: a named profile (else the default chain), then optionally a role
    assumed with them."""

    profile: str | None = None
    role_arn: str | None = None

    def describe(self) -> str:
        base = f"profile {self.profile!r}" if self.profile else "the default credentials"
        return f"role {self.role_arn} assumed with {base}" if self.role_arn else base


def check_region(region: str, source: str) -> str:
    """``region`` if it is one this project knows (offline: no call is made with a typo), else a usage error
    naming where it came from and the closest known region."""
    if region in KNOWN_REGIONS:
        return region
    close = difflib.get_close_matches(region, KNOWN_REGIONS, n=1)
    hint = f"; did you mean {close[0]}?" if close else f"; known regions: {', '.join(KNOWN_REGIONS)}"
    raise OpsError(f"{source} {region!r} is not an AWS region{hint}", ExitCode.USAGE)


def resolve_region(option: str | None, profile: str | None, fallback: str | None = None) -> str:
    """The region for a command with a ``--region`` option: the option, else ``AWS_REGION``, else
    ``AWS_DEFAULT_REGION``, else the profile's ``region``, else ``fallback``; validated offline."""
    if option:
        return check_region(option, "--region")
    for variable in REGION_VARIABLES:
        if os.environ.get(variable):
            return check_region(os.environ[variable], variable)
    try:
        configured = boto3.Session(profile_name=profile).region_name
    except ProfileNotFound as error:
        raise OpsError(f"{error}: check ~/.aws/config or the --profile option", ExitCode.USAGE) from None
    if configured:
        return check_region(configured, f"the profile's region (profile {profile or 'default'})")
    if fallback:
        return check_region(fallback, "the configured region")
    raise OpsError("no region: pass --region or set AWS_REGION", ExitCode.USAGE)


def session(credentials: Credentials, region: str | None = None) -> boto3.Session:
    if region:
        check_region(region, "region")
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
    except ERRORS as error:
        raise OpsError(f"cannot assume {role_arn}: {describe(error)}", ExitCode.AWS) from None
    creds = answer["Credentials"]
    return boto3.Session(
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds["SessionToken"],
        region_name=region or base.region_name,
    )


def account_of(session: boto3.Session, region: str | None = None) -> str:
    return str(client(session, "sts", region).get_caller_identity()["Account"])


def credentials_fix(account: str, options: str) -> str:
    return f"pass {options} with credentials for account {account}"


def require_account(
    session: boto3.Session, expected: str, what: str, credentials: str, options: str, region: str | None = None
) -> None:
    """Stop (exit 3) unless ``session``'s credentials belong to ``expected``: a wrong profile must not write into
    another account's resources of the same name. GetCallerIdentity needs no permission (not even an explicit deny
    stops it), so the least-privileged roles (the smoke roles) can make this check too
    (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html)."""
    try:
        actual = account_of(session, region)
    except ERRORS as error:
        raise OpsError(
            f"cannot check the {what} credentials ({credentials}): {describe(error)}; {hint(error, expected, options)}",
            ExitCode.AWS,
        ) from None
    if actual != expected:
        raise OpsError(
            f"the credentials ({credentials}) are account {actual}'s, not the {what} account {expected}'s: "
            f"{credentials_fix(expected, options)}",
            ExitCode.AWS,
        )


def client(session: boto3.Session, service: str, region: str | None = None, config: Config = CLIENT_CONFIG) -> Any:
    """A client; tests replace this function to stub services moto does not implement."""
    return session.client(service, region_name=region or session.region_name, config=config)


def error_code(error: Exception) -> str:
    return error.response.get("Error", {}).get("Code", "") if isinstance(error, ClientError) else ""


def is_connection_error(error: Exception) -> bool:
    return isinstance(error, CONNECTION_ERRORS)


def hint(error: Exception, account: str, options: str) -> str:
    """What to do about a failed call: a network problem is not fixed with other credentials."""
    if is_connection_error(error):
        return (
            "the AWS endpoint could not be reached (or what answered was not AWS): check the network, a proxy "
            "(HTTPS_PROXY), AWS_ENDPOINT_URL and the region"
        )
    return credentials_fix(account, options)


def describe(error: Exception) -> str:
    """One line for an AWS failure: the operation, the code and AWS's own message."""
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        operation = getattr(error, "operation_name", "call")
        message = " ".join(str(info.get("Message", "")).split())
        return f"{operation}: {info.get('Code', 'error')}" + (f": {message}" if message else "")
    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found (set AWS_PROFILE, pass --profile-*, or export credentials)"
    if isinstance(error, ResponseParserError):
        return f"endpoint: not an AWS answer ({' '.join(str(error).split())[:200]})"
    if is_connection_error(error):
        return f"network: {' '.join(str(error).split())}"
    return " ".join(str(error).split()) or type(error).__name__
