"""A rolling restart under steady load fails no call that is safe to retry.

Two replicas each of registration and points (each a pod of GRPC_PROCESSES=2 processes) serve
real clients: kit channels (grpc_client.client_channel) and a gateway whose upstream channels are
the kit's. Their target lists every replica's address, as DNS of a headless Kubernetes Service
would; a replica not (or no longer) listening is skipped. Under reads and idempotency-keyed
writes, every replica is replaced as a Deployment's rolling update does it: the new one started
and SERVING, then SIGTERM to the old one (which drains: NOT_SERVING, new calls refused with
GOAWAY, calls in flight finished). No call may fail, each replaced replica must have carried
load, and every write must be in the ledger exactly once.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter

import grpc

from services.common.grpc_client import client_channel
from tests.support.grpc_helpers import bearer, handled_total
from tests.support.registration import District
from wenming.points.v1 import points_pb2 as pb
from wenming.points.v1 import points_pb2_grpc
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

OLD, NEW = (5, 6), (7, 8)  # port offsets of the replicas before and after the rolling update
GATEWAY_OFFSET = 5
CHANNELS = 4  # kit channels, each starting on another replica (their address lists rotated)
READERS, WRITERS = 4, 2
PACE_SECONDS = 0.2  # per thread: ~20 reads/s and ~10 writes/s in all, through kit and gateway
GRACE_SECONDS = 10
# what is counted is calls failed by the restarts, not slow answers of a machine shared by parallel
# test runs (the slowest call of each kind is printed): longer than the grace, since a call the old
# replica accepted just before it drained may be finished at the end of its grace
DEADLINE_SECONDS = GRACE_SECONDS + 10
POD = {"GRPC_PROCESSES": "2", "SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS), "ACCESS_TOKEN_TTL_SECONDS": "7200",
       "LOGIN_MAX_FAILURES_PER_ADDRESS": "100000"}


def _target(stack, name: str, rotation: int = 0) -> str:
    ports = [stack.service(name, port_offset=o).definition.grpc_port for o in (*OLD, *NEW)]
    ports = ports[rotation:] + ports[:rotation]
    return "ipv4:" + ",".join(f"127.0.0.1:{p}" for p in ports)


class Load:
    """Threads calling steadily until stopped; every outcome counted by path and status."""

    def __init__(self):
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.slowest: dict[str, float] = {}
        self.written: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def run(self, name: str, call) -> None:
        def loop():
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    status = call() or "OK"
                except grpc.RpcError as err:
                    status = err.code().name
                except (urllib.error.URLError, OSError) as err:
                    status = f"HTTP {getattr(err, 'code', type(err).__name__)}"
                with self._lock:
                    self.outcomes[(name, status)] += 1
                    self.slowest[name] = max(self.slowest.get(name, 0.0), time.monotonic() - started)
                self._stop.wait(PACE_SECONDS)
        thread = threading.Thread(target=loop, name=f"load-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def wrote(self, key: str) -> None:
        with self._lock:
            self.written.append(key)

    def ok(self) -> int:
        with self._lock:
            return sum(n for (_, status), n in self.outcomes.items() if status == "OK")

    def failed(self) -> dict:
        with self._lock:
            return {k: n for k, n in self.outcomes.items() if k[1] != "OK"}

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(30)


def _rest(gateway, method: str, body: dict, token: str) -> dict:
    request = urllib.request.Request(f"{gateway.http_base}/api/v1/{method}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
                                     method="POST")
    with urllib.request.urlopen(request, timeout=15) as reply:
        return json.loads(reply.read())


def test_rolling_restart_under_load_fails_no_retryable_call(stack, registration, spawn):
    district = District(registration.grpc_target, registration.env)
    token = district.center_admin_token
    admin = bearer(token)
    volunteer = district.volunteer(district.center_id)
    vid = volunteer.volunteer_id

    replicas = {}
    for name in ("registration", "points"):
        for offset in OLD:
            replicas[(name, offset)] = spawn(name, port_offset=offset, extra_env=POD, log_name=f"{name}-roll-{offset}")
    for proc in replicas.values():
        proc.wait_serving(120)
    gateway = spawn("gateway", port_offset=GATEWAY_OFFSET, log_name="gateway-roll", extra_env={
        "UPSTREAM_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
        "REGISTRATION_GRPC_TARGET": _target(stack, "registration"), "POINTS_GRPC_TARGET": _target(stack, "points"),
        **{f"{n.upper()}_GRPC_TARGET": "" for n in ("ordering", "training", "media", "notification")}})
    gateway.wait_serving(60)

    channels = [client_channel(_target(stack, name, rotation=i % len(OLD)), default_timeout=DEADLINE_SECONDS)
                for i in range(CHANNELS) for name in ("registration", "points")]
    registration_stubs = [reg_grpc.RegistrationServiceStub(c) for c in channels[0::2]]
    points_stubs = [points_pb2_grpc.PointsServiceStub(c) for c in channels[1::2]]
    # points hears of the volunteer through registration's events
    deadline = time.monotonic() + 60
    while True:
        try:
            points_stubs[0].GetAccount(pb.GetAccountRequest(account_id=vid), metadata=admin)
            break
        except grpc.RpcError as err:
            assert err.code() == grpc.StatusCode.NOT_FOUND and time.monotonic() < deadline
            time.sleep(0.3)

    load = Load()

    def write_kit(stub):
        key = f"roll-{uuid.uuid4().hex[:16]}"
        stub.AdjustPoints(pb.AdjustPointsRequest(account_id=vid, amount=1, reason="滚动发布", idempotency_key=key),
                          metadata=admin)
        load.wrote(key)

    def write_gateway():
        key = f"roll-{uuid.uuid4().hex[:16]}"
        _rest(gateway, "points/AdjustPoints", {"accountId": vid, "amount": 1, "reason": "滚动发布",
                                               "idempotencyKey": key}, token)
        load.wrote(key)

    for i in range(READERS):
        unit, account = registration_stubs[i], points_stubs[i]
        load.run(f"kit GetUnit {i}", lambda s=unit: s.GetUnit(reg.GetUnitRequest(unit_id=district.center_id),
                                                                metadata=admin) and None)
        load.run(f"kit GetAccount {i}", lambda s=account: s.GetAccount(pb.GetAccountRequest(account_id=vid),
                                                                        metadata=admin) and None)
    load.run("gateway GetUnit", lambda: _rest(gateway, "registration/GetUnit", {"unitId": district.center_id},
                                              token) and None)
    load.run("gateway GetAccount", lambda: _rest(gateway, "points/GetAccount", {"accountId": vid}, token) and None)
    for i in range(WRITERS):
        load.run(f"kit AdjustPoints {i}", lambda s=points_stubs[i]: write_kit(s))
    load.run("gateway AdjustPoints", write_gateway)
    try:
        time.sleep(3)
        for (name, offset), old in list(replicas.items()):
            new = spawn(name, port_offset=NEW[OLD.index(offset)], extra_env=POD, log_name=f"{name}-roll-new-{offset}")
            new.wait_serving(120)
            method = "GetUnit" if name == "registration" else "GetAccount"
            assert handled_total(old.http_base, method) > 0, f"{name}@{offset} carried no load before its restart"
            before = load.ok()
            assert old.stop(60) == 0, f"{name}@{offset} did not stop cleanly"
            time.sleep(2)
            assert load.ok() > before, "the load stopped during the restart"
        time.sleep(2)
        load.stop()
        print(f"rolling restart of 4 pods: {load.ok()} calls OK, failed: {load.failed()}, slowest (s): "
              f"{ {name: round(s, 2) for name, s in sorted(load.slowest.items())} }")
        assert load.failed() == {}

        # every write exactly once: the balance is their number, one entry each
        account = points_stubs[0].GetAccount(pb.GetAccountRequest(account_id=vid), metadata=admin, timeout=10).account
        assert account.points == len(load.written) == len(set(load.written))
        audit = points_stubs[0].AuditAccount(pb.AuditAccountRequest(account_id=vid), metadata=admin, timeout=10)
        assert all(book.stored == book.from_entries for book in audit.books), audit
    finally:
        load.stop()
        for channel in channels:
            channel.close()
        district.close()
