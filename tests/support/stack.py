"""The real servers the suite runs against, and the service processes it starts on them.

`make test` starts Kafka and FerretDB (own ports, fresh data directory) and exports their
addresses; this module starts each service as a real process on test ports with databases
of its own (prefix per pytest session), exactly as `make run` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))

import launcher  # noqa: E402  (infra/local is not a package)
from services.common.events import set_kafka_prefix  # noqa: E402

# One pytest process's services and the tests themselves share a Kafka prefix of their own:
# parallel workers (and runs) on the one broker never read each other's events — a consumer
# deriving events from another worker's would publish them twice. Set here, before any test
# module makes a topic name.
# how long a service just started may take to catch up with a topic: a worker runs test packages
# one after another on one topic prefix, so a process new to it first replays what the earlier
# packages published (the 2,000-row imports included)
CATCH_UP_SECONDS = 120
RUN_ID = uuid.uuid4().hex[:6]
KAFKA_PREFIX = f"t{RUN_ID}."
# the suite's thousands of throwaway accounts: Argon2id at a test's cost (passwords.py); the
# parameters real people get are proved by tests/unit/test_passwords.py
PASSWORD_HASHING = "fast-for-tests"
TEST_HASH_PREFIX = "$argon2id$v=19$m=1024,t=1,p=1$"
set_kafka_prefix(KAFKA_PREFIX)

STACK = ROOT / "infra" / "local" / "stack.sh"
# Test ports sit away from the `make run` ones (so both run side by side) and below the kernel's
# ephemeral range (32768+), where a client socket could hold one when a service starts. Each
# "lane" — a test slot (make test TEST_SLOT=n) times a pytest-xdist worker, the slot's fourth lane
# being the serial tests' — has 200 ports of its own: gRPC = 20000 + 200·lane + 20·port_offset + the
# service's index, HTTP 10 above. Lanes run 0..31 (8 slots × 4), so every port stays below the test
# database's 27018.
SERVICE_INDEX = {"gateway": 0, "registration": 1, "ordering": 2, "points": 3, "training": 4, "media": 5,
                 "notification": 6, "rollup": 7}
PORTS_PER_LANE = 200


def lane() -> int:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")  # gw0, gw1, … under xdist
    return int(os.environ.get("WENMING_TEST_LANE", "0")) + int(worker.removeprefix("gw") or 0)


def grpc_port(name: str, port_offset: int = 0) -> int:
    assert 0 <= port_offset < 10, "ten port offsets per lane"
    return 20000 + PORTS_PER_LANE * lane() + 20 * port_offset + SERVICE_INDEX[name]


def require_env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.exit(f"{name} is not set: run the suite with 'make test' (it starts Kafka and FerretDB)", returncode=2)
    return value


class Stack:
    """Addresses of the real broker and database, and control over the local ones."""

    def __init__(self) -> None:
        self.kafka = require_env("KAFKA_BOOTSTRAP_SERVERS")
        self.mongodb_uri = require_env("MONGODB_URI")
        self.data_dir = Path(os.environ.get("WENMING_DATA", ROOT / ".data" / "test"))
        self.run_id = RUN_ID
        self.db_prefix = f"wmtest_{self.run_id}_"
        self.secrets = launcher.ensure_secrets(self.data_dir / "secrets")
        self._services: list[launcher.ServiceProcess] = []

    @staticmethod
    def spare_port(which: int = 0) -> int:
        """One of three ports of this lane that no service takes (benchmark floors): offsets 0..9
        use up to 20·9 + 16."""
        assert 0 <= which < 3
        return 20000 + PORTS_PER_LANE * lane() + PORTS_PER_LANE - 1 - which

    def control(self, verb: str, component: str) -> None:
        """stack.sh start|stop|kill kafka|ferretdb — for tests that take servers away."""
        subprocess.run([str(STACK), verb, component], check=True, env=os.environ.copy(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def service(self, name: str, *, port_offset: int = 0, extra_env: dict[str, str] | None = None,
                database_prefix: str | None = None, log_name: str | None = None) -> launcher.ServiceProcess:
        """A service process definition on test ports (not started)."""
        port = grpc_port(name, port_offset)
        definition = launcher.ServiceDef(name, port, port + 10)
        # a district's services, never the roll-up: a gateway told of one waits for it to serve,
        # and only a city's release runs it (a test that wants it passes ROLLUP_GRPC_TARGET)
        peers = [launcher.ServiceDef(n, grpc_port(n), grpc_port(n) + 10) for n in SERVICE_INDEX if n != "rollup"]
        env = launcher.service_env(definition, secrets=self.secrets,
                                   database_prefix=database_prefix or self.db_prefix,
                                   extra={"LOG_LEVEL": "INFO", "SHUTDOWN_GRACE_SECONDS": "3",
                                          "KAFKA_PREFIX": KAFKA_PREFIX, "PASSWORD_HASHING": PASSWORD_HASHING,
                                          **(extra_env or {})},
                                   peers=peers)
        log = self.data_dir / "logs" / f"{log_name or name}-{self.run_id}.log"
        proc = launcher.ServiceProcess(definition, env, log)
        self._services.append(proc)
        return proc

    def stop_leftovers(self) -> None:
        """At the end of the session: a service whose test failed before stopping it (a fixture
        that broke halfway) would otherwise live on in its own process group, on the next run's
        ports and broker."""
        for proc in self._services:
            proc.kill()

    def start_service(self, name: str, *, port_offset: int = 0, timeout: float = 90,
                      **options) -> launcher.ServiceProcess:
        """A service started and SERVING; when a port is held (a process of an earlier test still
        going away), the next offset's ports are tried."""
        for attempt in range(4):
            proc = self.service(name, port_offset=port_offset + attempt, **options)
            proc.start()
            try:
                proc.wait_serving(timeout)
                return proc
            except RuntimeError as exc:
                proc.stop()
                if "in use" not in str(exc):
                    raise
        raise RuntimeError(f"no free ports for {name} after 4 offsets")

    @contextmanager
    def running(self, name: str, *, timeout: float = 90, **options) -> Iterator[launcher.ServiceProcess]:
        """A service process SERVING for the block, always stopped after it (a fixture's life)."""
        proc = self.service(name, **options)
        proc.start()
        try:
            proc.wait_serving(timeout)
            yield proc
        finally:
            proc.stop()
