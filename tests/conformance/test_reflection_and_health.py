"""Reflection (v1 and v1alpha, full-name lookup) and health (Watch sends changes only, List) as
real clients use them: grpcurl and ghz by reflection, and Python's own stubs."""

from __future__ import annotations

import json
import threading
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from tests.support import tools

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
PLACE_ORDER = "wenming.ordering.v1.OrderingService.PlaceOrder"


@pytest.fixture(scope="module")
def ordering(fleet):
    return fleet["ordering"]


def grpcurl(tool, target: str, *args: str) -> str:
    result = tools.run(tool("grpcurl"), "-plaintext", "-max-time", "10", target, *args, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_grpcurl_lists_every_service(tool, fleet):
    for name, service in (("ordering", "wenming.ordering.v1.OrderingService"),
                          ("points", "wenming.points.v1.PointsService"),
                          ("training", "wenming.training.v1.TrainingService"),
                          ("media", "wenming.media.v1.MediaService"),
                          ("notification", "wenming.notification.v1.NotificationService"),
                          ("rollup", "wenming.rollup.v1.RollupService"),
                          ("registration", "wenming.registration.v1.RegistrationService")):
        listed = set(grpcurl(tool, fleet[name].grpc_target, "list").split())
        assert listed == {service, "grpc.health.v1.Health", "grpc.reflection.v1.ServerReflection",
                          "grpc.reflection.v1alpha.ServerReflection"}, name


def test_grpcurl_describes_methods_by_full_name(tool, ordering):
    described = grpcurl(tool, ordering.grpc_target, "describe", PLACE_ORDER)
    assert f"{PLACE_ORDER} is a method:" in described
    assert "rpc PlaceOrder ( .wenming.ordering.v1.PlaceOrderRequest ) returns " \
           "( .wenming.ordering.v1.PlaceOrderResponse );" in described
    described = grpcurl(tool, ordering.grpc_target, "describe", "grpc.health.v1.Health.Check")
    assert "rpc Check ( .grpc.health.v1.HealthCheckRequest ) returns ( .grpc.health.v1.HealthCheckResponse );" \
        in described
    described = grpcurl(tool, ordering.grpc_target, "describe", "wenming.ordering.v1.PlaceOrderRequest")
    assert "message PlaceOrderRequest {" in described
    assert "rpc ServerReflectionInfo" in grpcurl(tool, ordering.grpc_target, "describe",
                                                 "grpc.reflection.v1.ServerReflection")


def test_v1alpha_resolves_members_by_full_name(ordering):
    with grpc.insecure_channel(ordering.grpc_target) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        symbols = [PLACE_ORDER, "grpc.health.v1.Health.Check", "wenming.ordering.v1.PlaceOrderRequest",
                   "wenming.ordering.v1.NoSuchThing.Method"]
        answers = list(stub.ServerReflectionInfo(
            iter(reflection_pb2.ServerReflectionRequest(file_containing_symbol=s) for s in symbols), timeout=10))
    files = [a.file_descriptor_response.file_descriptor_proto for a in answers]
    assert files[0] and files[1] and files[2]
    assert answers[3].error_response.error_code == grpc.StatusCode.NOT_FOUND.value[0]


def test_ghz_calls_by_reflection(tool, ordering, fleet_district):
    metadata = json.dumps({"authorization": f"Bearer {fleet_district.center_admin_token}"})
    result = tools.run(tool("ghz"), "--insecure", "--call", "wenming.ordering.v1.OrderingService/GetOrderPolicy",
                       "--data", "{}", "--metadata", metadata, "--total", "50", "--concurrency", "2",
                       "--timeout", "10s", "--format", "json", ordering.grpc_target, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["count"] == 50 and report["statusCodeDistribution"] == {"OK": 50}, report.get("errorDistribution")


def test_health_list_names_every_service(ordering):
    with grpc.insecure_channel(ordering.grpc_target) as channel:
        listed = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=5)
    assert {name: reply.status for name, reply in listed.statuses.items()} == {
        "": SERVING, "wenming.ordering.v1.OrderingService": SERVING}


def test_health_watch_sends_changes_only(spawn):
    proc = spawn("registration", port_offset=2, log_name="registration-watch")
    proc.wait_serving(60)
    channel = grpc.insecure_channel(proc.grpc_target)
    try:
        stream = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)
        assert next(stream).status == SERVING
        # the health monitor re-checks MongoDB and Kafka every 2 s: a watcher hears nothing of it
        quiet_until = time.monotonic() + 7
        received = []

        def next_status():
            received.append(next(stream).status)

        reader = threading.Thread(target=next_status, daemon=True)
        reader.start()
        reader.join(quiet_until - time.monotonic())
        assert received == [], "Watch re-sent an unchanged status"
        proc.stop()  # SIGTERM: NOT_SERVING is a change, and it arrives
        reader.join(10)
        assert received == [NOT_SERVING]
    finally:
        channel.close()
