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
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "infra" / "local"))

import launcher  # noqa: E402  (infra/local is not a package)

STACK = ROOT / "infra" / "local" / "stack.sh"
# test ports sit away from the `make run` ones so both can run side by side
# and below the kernel's ephemeral range (32768+), where a client socket could hold one when a
# service starts: gRPC 21050-24xxx, HTTP 1000 above (slots and offsets stay under 27000)
TEST_PORT_BASE = {"registration": 21051, "ordering": 21052, "points": 21053, "training": 21054, "media": 21055,
                  "notification": 21056, "gateway": 21050}


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
        self.run_id = uuid.uuid4().hex[:6]
        self.db_prefix = f"wmtest_{self.run_id}_"
        self.secrets = launcher.ensure_secrets(self.data_dir / "secrets")
        # parallel test runs (make test TEST_SLOT=n) keep their service ports apart
        self.port_offset = int(os.environ.get("WENMING_TEST_PORT_OFFSET", "0"))

    def control(self, verb: str, component: str) -> None:
        """stack.sh start|stop|kill kafka|ferretdb — for tests that take servers away."""
        subprocess.run([str(STACK), verb, component], check=True, env=os.environ.copy(),
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def service(self, name: str, *, port_offset: int = 0, extra_env: dict[str, str] | None = None,
                database_prefix: str | None = None, log_name: str | None = None) -> launcher.ServiceProcess:
        """A service process definition on test ports (not started)."""
        grpc_port = TEST_PORT_BASE[name] + self.port_offset + port_offset * 100
        definition = launcher.ServiceDef(name, grpc_port, grpc_port + 1000)
        peers = [launcher.ServiceDef(n, p + self.port_offset, p + self.port_offset + 1000)
                 for n, p in TEST_PORT_BASE.items()]
        env = launcher.service_env(definition, secrets=self.secrets,
                                   database_prefix=database_prefix or self.db_prefix,
                                   extra={"LOG_LEVEL": "INFO", "SHUTDOWN_GRACE_SECONDS": "3", **(extra_env or {})},
                                   peers=peers)
        log = self.data_dir / "logs" / f"{log_name or name}-{self.run_id}.log"
        return launcher.ServiceProcess(definition, env, log)

    def start_service(self, name: str, *, port_offset: int = 0, timeout: float = 90,
                      **options) -> launcher.ServiceProcess:
        """A service started and SERVING. Test ports lie in the kernel's ephemeral range, so a
        client socket may hold one for a while: then the next offset's ports are tried."""
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
