"""What every ddb-lake command shares: exit codes, the one-line failure, the clock, the consoles, the config."""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from enum import IntEnum
from pathlib import Path
from typing import Protocol

from rich.console import Console

from shared import config


class ExitCode(IntEnum):
    OK = 0
    FAILED = 1  # the command ran and found a problem: a preflight ✗, a smoke mismatch, records not delivered
    USAGE = 2  # bad arguments or configuration (typer's own usage errors exit 2 as well)
    AWS = 3  # an AWS call failed: no credentials, access denied, a missing resource, unreachable endpoint
    INTERRUPTED = 130  # Ctrl-C (the shell's 128 + SIGINT): a backfill prints its resume token first


class OpsError(Exception):
    """A failure with its one-line reason and exit code."""

    def __init__(self, message: str, code: ExitCode = ExitCode.FAILED) -> None:
        super().__init__(message)
        self.code = code


class Clock(Protocol):
    """Time as the commands see it; tests pass a fake that advances only when slept on."""

    def now(self) -> datetime: ...  # timezone-aware UTC

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


_clock: Clock = SystemClock()


def clock() -> Clock:
    return _clock


def use_clock(new: Clock) -> Clock:
    """Swap the clock (tests); returns the previous one."""
    global _clock
    previous, _clock = _clock, new
    return previous


def hard_exit(code: int) -> None:
    """Leave now, without waiting for worker threads stuck in a request (a second Ctrl-C); tests replace it."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code)


# Results on stdout, progress and reasons on stderr; soft wrap keeps a reason on one line in any terminal width.
out = Console(soft_wrap=True, highlight=False, markup=False)
err = Console(stderr=True, soft_wrap=True, highlight=False, markup=False)


def load_config(path: Path) -> config.AppConfig:
    """The configuration exactly as the pipeline sees it: cdk.json's ``context`` (no -c overrides)."""
    try:
        text = path.read_text()
    except OSError as error:
        raise OpsError(
            f"cannot read {path} ({error.strerror}): run ddb-lake in the project folder or pass --cdk-json PATH",
            ExitCode.USAGE,
        ) from None
    try:
        context = json.loads(text).get("context", {})
    except (ValueError, AttributeError) as error:
        raise OpsError(f"{path} is not a CDK JSON object: {error}", ExitCode.USAGE) from None
    try:
        return config.load(context, context)
    except config.ConfigError as error:
        raise OpsError(str(error), ExitCode.USAGE) from None


def utc(value: datetime) -> datetime:
    """``value`` as aware UTC; a naive value is taken to be UTC already."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
