"""A Kafka broker of a test's own, started from the test stack's Kafka installation on a spare
port: a test may kill, freeze and restart it without disturbing the tests sharing the stack's
broker (they run in parallel)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

from kafka import KafkaAdminClient


def running_command(data_dir: Path, name: str) -> list[str]:
    """The command line of the test stack's own Kafka or FerretDB (to start another like it)."""
    pid = (data_dir / "run" / f"{name}.pid").read_text().strip()
    return Path(f"/proc/{pid}/cmdline").read_bytes().decode().rstrip("\0").split("\0")


def wait_port(port: int, process: subprocess.Popen, log: Path, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()[-3000:]
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.3)
    raise AssertionError(f"nothing listens on {port}: {log.read_text()[-3000:]}")


class PrivateKafka:
    """One KRaft broker+controller listening on `port` (its controller on `controller_port`,
    default `port + 1`), its data in `work`. `listener` names the client listener's protocol;
    `extra` adds server properties; `client_options` are what a client needs to speak to it
    (kafka-python's, e.g. security_protocol and ssl_cafile for an SSL listener)."""

    def __init__(self, stack, port: int, work: Path, listener: str = "PLAINTEXT", extra: tuple[str, ...] = (),
                 controller_port: int | None = None, client_options: dict | None = None):
        controller_port = controller_port or port + 1
        command = running_command(stack.data_dir, "kafka")
        self.port = port
        self.address = f"127.0.0.1:{port}"
        self._base = [command[0], "-Xms128m", "-Xmx384m", "-cp", command[command.index("-cp") + 1]]
        self._work = work
        self._log = work / "kafka.log"
        self._process: subprocess.Popen | None = None
        self._client_options = client_options or {}
        (work / "kafka-log").mkdir(parents=True)
        self._config = work / "server.properties"
        self._config.write_text("\n".join([
            "process.roles=broker,controller", "node.id=1", f"controller.quorum.voters=1@127.0.0.1:{controller_port}",
            f"listeners={listener}://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}",
            f"advertised.listeners={listener}://127.0.0.1:{port}", "controller.listener.names=CONTROLLER",
            f"inter.broker.listener.name={listener}",
            f"listener.security.protocol.map={listener}:{listener},CONTROLLER:PLAINTEXT",
            f"log.dirs={work / 'kafka-log'}", "offsets.topic.replication.factor=1", "offsets.topic.num.partitions=3",
            "transaction.state.log.replication.factor=1", "transaction.state.log.min.isr=1",
            "share.coordinator.state.topic.replication.factor=1", "share.coordinator.state.topic.min.isr=1",
            "default.replication.factor=1", "min.insync.replicas=1", "group.initial.rebalance.delay.ms=0",
            *extra, ""]))
        formatted = subprocess.run([*self._base, "kafka.tools.StorageTool", "format", "-t", "privatetestclusterAAAA",
                                    "-c", str(self._config)], capture_output=True, text=True, timeout=120)
        assert formatted.returncode == 0, formatted.stdout + formatted.stderr

    def start(self) -> None:
        with open(self._log, "ab") as out:
            self._process = subprocess.Popen([*self._base, "kafka.Kafka", str(self._config)],
                                             stdout=out, stderr=subprocess.STDOUT)
        wait_port(self.port, self._process, self._log)
        self._wait_usable()

    def _wait_usable(self, timeout: float = 120.0) -> None:
        """An open port is not a usable broker: on a crowded machine a fresh KRaft broker took
        minutes to answer, and kafka-python 3.0.12 wedges a connection whose request timed out
        while it starts (a late answer raises ReferenceError in its reader). So the test only goes
        on once the broker answers a cluster description and a consumer group's coordinator lookup
        (which creates __consumer_offsets, the slowest part of a first start)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._process.poll() is None, self._log.read_text()[-3000:]
            try:
                admin = KafkaAdminClient(bootstrap_servers=[self.address], request_timeout_ms=5000,
                                         **self._client_options)
                try:
                    if admin.describe_cluster().get("brokers"):
                        admin.describe_groups(["private-kafka-ready"])
                        return
                finally:
                    admin.close()
            except Exception:  # any failure means "not yet"
                pass
            time.sleep(1)
        raise AssertionError(f"the broker on {self.port} did not become usable: {self._log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9: the broker's connections drop at once, unflushed state is lost as in a crash."""
        self._process.kill()
        self._process.wait(30)

    def freeze(self) -> None:
        """SIGSTOP: connections stay open and nothing answers (a hung broker or a network black hole)."""
        os.kill(self._process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self._process.pid, signal.SIGCONT)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self.thaw()
            self._process.terminate()
            try:
                self._process.wait(30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait(10)
