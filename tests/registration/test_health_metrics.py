"""Health is SERVING only while MongoDB and Kafka answer; /metrics counts RPCs."""

from __future__ import annotations

import json
import time
import urllib.request

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc


def _health(target: str, service: str = "") -> int:
    with grpc.insecure_channel(target) as channel:
        try:
            return health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), timeout=2).status
        except grpc.RpcError:
            return -1


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_not_serving_until_kafka_is_reachable(spawn):
    # a broker address where nothing listens
    proc = spawn("registration", port_offset=2, log_name="registration-nokafka",
                 extra_env={"KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1"})
    deadline = time.monotonic() + 20
    status = -1
    while time.monotonic() < deadline and status == -1:
        status = _health(proc.grpc_target)
        time.sleep(0.3)
    time.sleep(3)  # a few monitor passes
    assert _health(proc.grpc_target) == health_pb2.HealthCheckResponse.NOT_SERVING
    assert _health(proc.grpc_target, "wenming.registration.v1.RegistrationService") == \
        health_pb2.HealthCheckResponse.NOT_SERVING
    code, body = _get(f"{proc.http_base}/readyz")
    assert code == 503 and json.loads(body)["checks"] == {"mongodb": True, "kafka": False,
                                                      "token_revocations": False, "outbox_relay": True,
                                                      "consumers": True}
    assert _get(f"{proc.http_base}/healthz")[0] == 200  # alive, just not ready


@pytest.mark.serial  # stops the shared broker or database
def test_not_serving_while_the_database_is_away_and_serving_again_after(stack, registration, district):
    # the session's process has lived through the serial tests before this one (a backup restored
    # beside it, a broker on a crowded machine): it is SERVING again before the database goes
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and _health(registration.grpc_target) != health_pb2.HealthCheckResponse.SERVING:
        time.sleep(0.5)
    assert _health(registration.grpc_target) == health_pb2.HealthCheckResponse.SERVING
    stack.control("stop", "ferretdb")
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _health(registration.grpc_target) != \
                health_pb2.HealthCheckResponse.NOT_SERVING:
            time.sleep(0.5)
        assert _health(registration.grpc_target) == health_pb2.HealthCheckResponse.NOT_SERVING
        # a call meanwhile is refused as retryable, not as a server bug
        with grpc.insecure_channel(registration.grpc_target) as channel, pytest.raises(grpc.RpcError) as refused:
            reg_grpc.RegistrationServiceStub(channel).GetUnit(
                reg.GetUnitRequest(unit_id="unit_any"), metadata=district.as_center(), timeout=20)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
        assert "database" in refused.value.details()
    finally:
        stack.control("start", "ferretdb")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _health(registration.grpc_target) != health_pb2.HealthCheckResponse.SERVING:
        time.sleep(0.5)
    assert _health(registration.grpc_target) == health_pb2.HealthCheckResponse.SERVING


def test_metrics_count_rpcs_by_method_and_code(registration, district):
    district.stub.GetUnit(reg.GetUnitRequest(unit_id=district.center_id), metadata=district.as_center(), timeout=5)
    try:
        district.stub.GetUnit(reg.GetUnitRequest(unit_id="unit_missing"), metadata=district.as_center(), timeout=5)
    except grpc.RpcError:
        pass
    code, text = _get(f"{registration.http_base}/metrics")
    assert code == 200
    service = 'grpc_service="wenming.registration.v1.RegistrationService"'
    lines = [line for line in text.splitlines() if line.startswith("grpc_server_handled_total") and service in line]
    assert any('grpc_method="GetUnit"' in line and 'code="OK"' in line for line in lines)
    assert any('grpc_method="GetUnit"' in line and 'code="NOT_FOUND"' in line for line in lines)
    assert 'grpc_server_handling_seconds_bucket{' in text
    assert "outbox_events_published_total" in text
