"""What the command lines for background jobs share (registration's import_cli, the kit's
export_cli): the access token, following a job's progress, and turning refusals into exit codes."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

POLL_SECONDS = 1.0
Job = TypeVar("Job")


def add_token_argument(cli: argparse.ArgumentParser) -> None:
    cli.add_argument("--token", default=os.environ.get("WENMING_TOKEN", ""),
                     help="a unit admin's access token (default: $WENMING_TOKEN; the environment keeps it out of "
                          "the process list)")


def follow(job: Job, refresh: Callable[[Job], Job], line: Callable[[Job], str], running: Callable[[Job], bool]) -> Job:
    """Prints the job's progress whenever it changes, polling every second, until it stops running;
    the job as it ended. A service away for a while is waited for: the job goes on without us."""
    shown = ""
    while True:
        text = line(job)
        if text != shown:
            print(text, flush=True)
            shown = text
        if not running(job):
            return job
        time.sleep(POLL_SECONDS)
        try:
            job = refresh(job)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.UNAVAILABLE:
                raise
            print("服务暂不可用，稍后继续查询（任务在服务端继续执行）", flush=True)


def run_command(token: str, command: Callable[[], int], close: Callable[[], None]) -> int:
    """The command's exit status; 2 without a token, or when a call or a file is refused."""
    if not token:
        print("an access token is needed: set WENMING_TOKEN (or pass --token)", file=sys.stderr)
        return 2
    try:
        return command()
    except grpc.RpcError as error:
        print(f"{error.code().name}: {error.details()}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"{error.filename}: {error.strerror}", file=sys.stderr)
        return 2
    finally:
        close()
