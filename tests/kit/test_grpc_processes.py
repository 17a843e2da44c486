"""GRPC_PROCESSES: one pod serves gRPC from several processes on one port (docs/performance.md).

Proved on a real registration process started with GRPC_PROCESSES=2: the main process and its
worker both accept connections and answer calls, /metrics counts the calls of both, a unit renamed
through one process is soon renamed in the other's cache (its event), and SIGTERM to the main
process drains both (every call that began is answered, none is cut off at the grace period's
end; both processes exit).
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc

from tests.support.grpc_helpers import handled_total
from tests.support.registration import District
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

CHANNELS = 24  # connections: the kernel spreads them over the processes by their addresses
GRACE = 20  # seconds; a call still running at its end would be aborted, and the stop would take as long
# a client deadline past the grace period: a call held by the server is cut off by the server (and
# the stop takes the whole grace), not by its caller; a slow answer on a busy machine is still an answer
DRAIN_DEADLINE = GRACE + 10


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _connections_on(port: int, pid: int) -> int:
    """Established TCP connections on local `port` whose socket this process holds."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "01":
                inodes.add(fields[9])
    held = 0
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            link = fd.readlink().name
        except OSError:  # closed meanwhile
            continue
        held += link.startswith("socket:[") and link[8:-1] in inodes
    return held


def test_two_processes_serve_one_port_and_shutdown_drains_both(stack):
    proc = stack.start_service("registration", port_offset=2, extra_env={"GRPC_PROCESSES": "2",
                                                                          "SHUTDOWN_GRACE_SECONDS": str(GRACE)})
    try:
        main = proc.process.pid
        deadline = time.monotonic() + 30
        while not _children(main) and time.monotonic() < deadline:
            time.sleep(0.2)
        [worker] = _children(main)
        district = District(proc.grpc_target, proc.env)
        metadata = [("authorization", f"Bearer {district.center_admin_token}")]
        request = reg.GetUnitRequest(unit_id=district.center_id)
        # the kernel hands each new connection to one of the processes listening (the worker
        # once it is SERVING on its own): new channels until both hold some
        channels: list[grpc.Channel] = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            for channel in channels:
                channel.close()
            channels = [grpc.insecure_channel(proc.grpc_target, options=[("grpc.use_local_subchannel_pool", 1)])
                        for _ in range(CHANNELS)]
            stubs = [reg_grpc.RegistrationServiceStub(c) for c in channels]
            for stub in stubs:
                stub.GetUnit(request, metadata=metadata, timeout=10)
            if _connections_on(proc.definition.grpc_port, worker) and _connections_on(proc.definition.grpc_port, main):
                break
        assert _connections_on(proc.definition.grpc_port, main) > 0
        assert _connections_on(proc.definition.grpc_port, worker) > 0

        # /metrics of the main process counts the calls both answered
        before = handled_total(proc.http_base, "GetUnit")
        for stub in stubs:
            for _ in range(5):
                assert stub.GetUnit(request, metadata=metadata, timeout=10).unit.unit_id == district.center_id
        assert handled_total(proc.http_base, "GetUnit") == before + 5 * CHANNELS

        # a change made through one process reaches the other's cached copy by its event
        renamed = f"改名中心{time.monotonic_ns() % 10_000}"
        stubs[0].RenameUnit(reg.RenameUnitRequest(unit_id=district.center_id, name=renamed), metadata=metadata,
                            timeout=10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(
                stub.GetUnit(request, metadata=metadata, timeout=10).unit.name != renamed for stub in stubs):
            time.sleep(0.1)
        assert all(stub.GetUnit(request, metadata=metadata, timeout=10).unit.name == renamed for stub in stubs)
        district.close()

        # calls keep coming on every connection while the pod is told to stop
        outcomes: dict[str, int] = {}
        lock = threading.Lock()
        stop = threading.Event()

        def call(stub) -> None:
            while not stop.is_set():
                try:
                    stub.GetUnit(request, metadata=metadata, timeout=DRAIN_DEADLINE)
                    code = "OK"
                except grpc.RpcError as error:
                    code = error.code().name
                with lock:
                    outcomes[code] = outcomes.get(code, 0) + 1
                if code != "OK":
                    return  # this connection's process is gone: nothing more to learn from it

        callers = [threading.Thread(target=call, args=(stub,)) for stub in stubs]
        for t in callers:
            t.start()
        time.sleep(1.0)
        began = time.monotonic()
        assert proc.stop(timeout=GRACE + 10) == 0
        stopped_in = time.monotonic() - began
        stop.set()
        for t in callers:
            t.join(DRAIN_DEADLINE + 5)
        for channel in channels:
            channel.close()
        assert not Path(f"/proc/{worker}").exists(), "the worker outlived the pod's main process"
        # nothing was held to the grace period's end, where gRPC aborts what is still running:
        # every call that had begun finished; what arrived once the processes were stopping was
        # refused before it ran (UNAVAILABLE, or CANCELLED for one the server had not yet started)
        assert stopped_in < GRACE - 5
        assert outcomes.get("OK", 0) > CHANNELS
        assert set(outcomes) <= {"OK", "UNAVAILABLE", "CANCELLED"}, outcomes
        log = proc.log_path.read_text()
        assert log.count('"msg": "stopped"') >= 2  # the worker's and the main process's
    finally:
        proc.stop()
