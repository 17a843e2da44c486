"""A rolling restart under steady load fails no call that is safe to retry.

One pod of each service named (each pod GRPC_PROCESSES=2 processes) serves real clients: kit
channels (grpc_client.client_channel) and a gateway whose upstream channels are the kit's. Each
target lists the pod's address and its successor's, as DNS of a headless Kubernetes Service would;
an address not (or no longer) listening is skipped. Under a cheap read of every service and
idempotency-keyed writes, every pod is replaced in turn as a Deployment's rolling update does it:
the new one started and SERVING, then SIGTERM to the old one (which drains: NOT_SERVING, new calls
refused with GOAWAY, calls in flight finished). No call may fail, each replaced pod must have
carried load, and every write must be in the ledger exactly once.

`make test` replaces registration and points (the drain and the retry policy are the kit's, the
same in every service); `make chaos` replaces every gRPC service (ROLLING_RESTART_SERVICES=all):
twelve pods and their consumers are more than the parallel suite should carry on two cores.
"""

from __future__ import annotations

import json
import os
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
from wenming.media.v1 import media_pb2, media_pb2_grpc
from wenming.notification.v1 import notification_pb2, notification_pb2_grpc
from wenming.ordering.v1 import ordering_pb2, ordering_pb2_grpc
from wenming.points.v1 import points_pb2 as pb
from wenming.points.v1 import points_pb2_grpc
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc
from wenming.training.v1 import training_pb2, training_pb2_grpc

OLD, NEW = 5, 6  # port offsets of each pod before and after the rolling update
GATEWAY_OFFSET = 7
CHANNELS = 2  # kit channels per service, one starting at each address (the address list rotated)
WRITERS = 2
PACE_SECONDS = 0.25  # per thread: ~4 reads/s of each service and ~12 writes/s, through kit and gateway
GRACE_SECONDS = 10
# what is counted is calls failed by the restarts, not slow answers of a machine shared by parallel
# test runs (the slowest call of each kind is printed): longer than the grace, since a call the old
# pod accepted just before it drained may be finished at the end of its grace
DEADLINE_SECONDS = GRACE_SECONDS + 10
POD = {"GRPC_PROCESSES": "2", "SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS), "ACCESS_TOKEN_TTL_SECONDS": "7200",
       "LOGIN_MAX_FAILURES_PER_ADDRESS": "100000"}
# each service's stub and a read every caller may make (the district's unit and volunteer filled in)
EVERY_SERVICE = {
    "registration": (reg_grpc.RegistrationServiceStub, "GetUnit"),
    "ordering": (ordering_pb2_grpc.OrderingServiceStub, "GetOrderPolicy"),
    "points": (points_pb2_grpc.PointsServiceStub, "GetAccount"),
    "training": (training_pb2_grpc.TrainingServiceStub, "ListCourses"),
    "media": (media_pb2_grpc.MediaServiceStub, "GetScreeningPolicy"),
    "notification": (notification_pb2_grpc.NotificationServiceStub, "ListInbox"),
}
SERVICES = (EVERY_SERVICE if os.environ.get("ROLLING_RESTART_SERVICES") == "all"
            else {name: EVERY_SERVICE[name] for name in ("registration", "points")})


def _target(stack, name: str, rotation: int = 0) -> str:
    ports = [stack.service(name, port_offset=o).definition.grpc_port for o in (OLD, NEW)]
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


def test_rolling_restart_of_every_service_under_load_fails_no_retryable_call(stack, registration, spawn):
    district = District(registration.grpc_target, registration.env)
    token = district.center_admin_token
    admin = bearer(token)
    vid = district.volunteer(district.center_id).volunteer_id
    requests = {"registration": reg.GetUnitRequest(unit_id=district.center_id),
                "ordering": ordering_pb2.GetOrderPolicyRequest(), "points": pb.GetAccountRequest(account_id=vid),
                "training": training_pb2.ListCoursesRequest(), "media": media_pb2.GetScreeningPolicyRequest(),
                "notification": notification_pb2.ListInboxRequest()}

    pods = {name: spawn(name, port_offset=OLD, extra_env=POD, log_name=f"{name}-roll-old") for name in SERVICES}
    for pod in pods.values():
        pod.wait_serving(120)
    gateway = spawn("gateway", port_offset=GATEWAY_OFFSET, log_name="gateway-roll", extra_env={
        "UPSTREAM_TIMEOUT_SECONDS": str(DEADLINE_SECONDS),
        **{f"{name.upper()}_GRPC_TARGET": _target(stack, name) if name in SERVICES else "" for name in EVERY_SERVICE}})
    gateway.wait_serving(60)

    channels = {name: [client_channel(_target(stack, name, rotation=i), default_timeout=DEADLINE_SECONDS)
                       for i in range(CHANNELS)] for name in SERVICES}
    stubs = {name: [SERVICES[name][0](channel) for channel in channels[name]] for name in SERVICES}
    points = stubs["points"][0]
    # points hears of the volunteer through registration's events
    deadline = time.monotonic() + 60
    while True:
        try:
            points.GetAccount(requests["points"], metadata=admin)
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

    for name, (_, method) in SERVICES.items():
        for i, stub in enumerate(stubs[name]):
            load.run(f"kit {method} {i}", lambda call=getattr(stub, method), request=requests[name]:
                     call(request, metadata=admin) and None)
    load.run("gateway GetUnit", lambda: _rest(gateway, "registration/GetUnit", {"unitId": district.center_id},
                                              token) and None)
    load.run("gateway GetAccount", lambda: _rest(gateway, "points/GetAccount", {"accountId": vid}, token) and None)
    for i in range(WRITERS):
        load.run(f"kit AdjustPoints {i}", lambda s=stubs["points"][i]: write_kit(s))
    load.run("gateway AdjustPoints", write_gateway)
    try:
        time.sleep(3)
        for name, old in pods.items():
            new = spawn(name, port_offset=NEW, extra_env=POD, log_name=f"{name}-roll-new")
            new.wait_serving(120)
            method = SERVICES[name][1]
            assert handled_total(old.http_base, method) > 0, f"{name} carried no load before its restart: {load.failed()}"
            before = load.ok()
            assert old.stop(60) == 0, f"{name} did not stop cleanly"
            time.sleep(2)
            assert load.ok() > before, f"the load stopped during the restart of {name}"
            assert handled_total(new.http_base, method) > 0, f"{name}'s new pod took no load"
        time.sleep(2)
        load.stop()
        print(f"rolling restart of {len(pods)} pods: {load.ok()} calls OK, failed: {load.failed()}, slowest (s): "
              f"{ {name: round(s, 2) for name, s in sorted(load.slowest.items())} }")
        assert load.failed() == {}

        # every write exactly once: the balance is their number, one entry each
        account = points.GetAccount(requests["points"], metadata=admin, timeout=10).account
        assert account.points == len(load.written) == len(set(load.written))
        audit = points.AuditAccount(pb.AuditAccountRequest(account_id=vid), metadata=admin, timeout=10)
        assert all(book.stored == book.from_entries for book in audit.books), audit
    finally:
        load.stop()
        for channel in (c for group in channels.values() for c in group):
            channel.close()
        district.close()
