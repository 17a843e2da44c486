"""The command-line checkers the suite runs: helm, grpcurl, ghz, buf, protoc-gen-go, promtool.

Their versions are pinned in infra/local/stack.sh, which installs them into the shared cache.
`make test` installs them in the background while the rest of the suite runs and writes each
one's outcome to $WENMING_TOOLS_STATUS/<name>.status; tests asking for the `tool` fixture run
last (tests/conftest.py) and wait here for that. Without `make test` a missing tool is installed
on first use.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "infra" / "local" / "stack.sh"
INSTALL_WAIT_SECONDS = 1800


def _wait_for_background_install(name: str) -> None:
    status_dir = os.environ.get("WENMING_TOOLS_STATUS")
    if not status_dir:
        return
    status, log = Path(status_dir) / f"{name}.status", Path(status_dir) / f"{name}.log"
    deadline = time.monotonic() + INSTALL_WAIT_SECONDS
    while not status.exists():
        if time.monotonic() > deadline:
            pytest.fail(f"{name} was not installed after {INSTALL_WAIT_SECONDS} s (log: {log})")
        time.sleep(2)
    if status.read_text().strip() != "0":
        pytest.fail(f"installing {name} failed:\n{log.read_text(errors='replace')[-3000:]}")


def tool_path(name: str) -> str:
    """The installed binary of `name`, installing it first when needed."""
    _wait_for_background_install(name)
    path = subprocess.run([str(STACK), "tool-path", name], capture_output=True, text=True, check=True).stdout.strip()
    if not os.access(path, os.X_OK):
        installed = subprocess.run([str(STACK), "install", name], capture_output=True, text=True, timeout=INSTALL_WAIT_SECONDS)
        if installed.returncode != 0:
            pytest.fail(f"installing {name} failed:\n{installed.stderr[-3000:]}")
    return path


def run(path: str, *args: str, cwd: Path = ROOT, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess:
    """Runs a tool, its output captured as text."""
    return subprocess.run([path, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, **kwargs)
