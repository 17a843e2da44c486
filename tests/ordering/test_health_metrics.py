"""Health and the metrics the issue asks for: orders by status and level, SLA breaches, time to
acknowledge / dispatch / accept, claims won and lost."""

from __future__ import annotations

import re
import urllib.request

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb

from .support import S
from tests.support.waiting import wait_until


def _metrics(proc) -> str:
    with urllib.request.urlopen(f"{proc.http_base}/metrics", timeout=5) as reply:
        return reply.read().decode()


def _value(text: str, name: str, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    total = 0.0
    for line in text.splitlines():
        match = re.match(rf"^{name}\{{(.*)\}} (\S+)$", line)
        if match and all(f'{k}="{v}"' in match.group(1) for k, v in labels.items()):
            total += float(match.group(2))
    return total


def test_health_serving_and_ordering_metrics_move(world, ordering_proc, shifted):
    with grpc.insecure_channel(ordering_proc.grpc_target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="wenming.ordering.v1.OrderingService"), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    with urllib.request.urlopen(f"{ordering_proc.http_base}/readyz", timeout=5) as reply:
        assert reply.status == 200

    before = _metrics(ordering_proc)
    yard = world.courtyards[0]
    _, resident = world.resident(yard)
    first, second = world.volunteers(yard, 2, skills=[c.SKILL_HAIRCUT])
    admin = world.as_admin(yard)
    world.accepted_order(resident, first)  # placed, acknowledged, dispatched, accepted
    claimed = world.place(resident)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=claimed.order_id), metadata=admin, timeout=10)
    world.stub.OpenOrder(pb.OpenOrderRequest(order_id=claimed.order_id), metadata=admin, timeout=10)
    world.stub.ClaimOrder(pb.ClaimOrderRequest(order_id=claimed.order_id), metadata=first.token, timeout=10)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        world.stub.ClaimOrder(pb.ClaimOrderRequest(order_id=claimed.order_id), metadata=second.token, timeout=10)
    # one order left unacknowledged past the courtyard's deadline (2 h by default)
    ignored = world.place(resident)
    shifted.advance(2 * 3600 + 60)
    wait_until(lambda: world.get(ignored.order_id).status == S.ORDER_STATUS_ESCALATED, what="the SLA escalation")
    after = _metrics(ordering_proc)

    def grew(name: str, by: float = 1, **labels) -> bool:
        return _value(after, name, **labels) - _value(before, name, **labels) >= by

    assert grew("ordering_orders_total", 3, status="ORDER_STATUS_PLACED", level="UNIT_LEVEL_COURTYARD")
    assert grew("ordering_orders_total", 2, status="ORDER_STATUS_ACCEPTED", level="UNIT_LEVEL_COURTYARD")
    assert grew("ordering_orders_total", 1, status="ORDER_STATUS_ESCALATED", level="UNIT_LEVEL_STATION")
    assert grew("ordering_sla_breaches_total", level="UNIT_LEVEL_COURTYARD")
    assert grew("ordering_time_to_acknowledge_seconds_count", 2, level="UNIT_LEVEL_COURTYARD")
    assert grew("ordering_time_to_dispatch_seconds_count", 2, level="UNIT_LEVEL_COURTYARD")
    assert grew("ordering_time_to_accept_seconds_count", 2, level="UNIT_LEVEL_COURTYARD")
    assert grew("ordering_claims_total", result="won") and grew("ordering_claims_total", result="lost")
    assert 'grpc_method="PlaceOrder"' in after and "outbox_events_published_total" in after
