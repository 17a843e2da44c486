"""promtool, from Debian's `prometheus` package.

Looked up as $PROMTOOL, then on PATH, then in .cache/bin; otherwise the package is fetched once
with `apt-get download` (no root needed, ~20 MB, a few seconds; `apt-get update` first when the
package lists are missing and we are root) and promtool is unpacked into .cache/bin.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CACHED = ROOT / ".cache" / "bin" / "promtool"


def _download(work: str) -> subprocess.CompletedProcess:
    return subprocess.run(["apt-get", "download", "prometheus"], cwd=work, capture_output=True, text=True, timeout=300)


def _fetch() -> Path:
    CACHED.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=CACHED.parent) as work:
        download = _download(work)
        if download.returncode != 0 and os.geteuid() == 0:
            # a fresh machine may have no package lists yet
            subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=300)
            download = _download(work)
        if download.returncode != 0:
            pytest.fail("promtool is needed for the alert-rule tests: install Debian's 'prometheus' package, put "
                        f"promtool on PATH or set PROMTOOL (apt-get download failed: {download.stderr.strip()})")
        (package,) = Path(work).glob("prometheus_*.deb")
        subprocess.run(["dpkg-deb", "-x", str(package), str(Path(work) / "root")], check=True, timeout=120)
        unpacked = Path(work) / "root" / "usr" / "bin" / "promtool"
        # renamed into place: parallel test runs never see a half-written binary
        staged = CACHED.with_name(f"promtool.{os.getpid()}")
        shutil.copy2(unpacked, staged)
        staged.replace(CACHED)
    return CACHED


def promtool() -> Path:
    configured = os.environ.get("PROMTOOL") or shutil.which("promtool")
    if configured:
        return Path(configured)
    if CACHED.is_file():
        return CACHED
    return _fetch()


def run(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run([str(promtool()), *args], cwd=cwd, capture_output=True, text=True, timeout=120)
