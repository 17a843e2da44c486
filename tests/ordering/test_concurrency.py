"""Under any concurrency exactly one claim wins, and capacity is never overbooked."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import ordering_pb2_grpc
from wenming.ordering.v1 import types_pb2

from .support import S


def _outcome(call) -> str:
    """The call's final status code; ABORTED ("a concurrent change won, retry") is retried, as a
    client does."""
    for _ in range(5):
        try:
            call()
            return "OK"
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.ABORTED:
                return error.code().name
    return "ABORTED"


@pytest.mark.slow
def test_fifty_parallel_claims_have_exactly_one_winner(world, ordering_events):
    yard = world.courtyards[0]
    volunteers = world.volunteers(yard, 10, skills=[c.SKILL_HAIRCUT], name="抢单")
    _, resident = world.resident(yard)
    order = world.place(resident, "haircut")
    admin = world.as_admin(yard)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)
    world.stub.OpenOrder(pb.OpenOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)

    request = pb.ClaimOrderRequest(order_id=order.order_id)
    claims = [(lambda v=volunteers[i % 10]: world.stub.ClaimOrder(request, metadata=v.token, timeout=30))
              for i in range(50)]
    with ThreadPoolExecutor(50) as pool:
        outcomes = list(pool.map(_outcome, claims))
    assert outcomes.count("OK") == 1, outcomes
    assert outcomes.count("FAILED_PRECONDITION") == 49, outcomes

    claimed = world.get(order.order_id)
    assert claimed.status == S.ORDER_STATUS_ACCEPTED and len(claimed.volunteer_ids) == 1
    winners = {e.event_id: p.volunteer_id for e, p, _ in ordering_events.events(world.district.id, at_least=4,
                                                                                settle=1.5)
               if e.aggregate_id == order.order_id and isinstance(p, ev.OrderClaimed)}
    assert list(winners.values()) == list(claimed.volunteer_ids)


@pytest.mark.slow
def test_a_hundred_parallel_signups_fill_thirty_places_exactly(world, replica, ordering_events, ordering):
    """Half the sign-ups go to a second replica: the capacity rule holds in the database, not
    only inside one process."""
    yard = world.courtyards[1]
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    starts_at, ends_at = Timestamp(), Timestamp()
    starts_at.FromDatetime(starts)
    ends_at.FromDatetime(starts + dt.timedelta(hours=2))
    admin = world.as_admin(yard)
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        title="小院讲堂：防范电信诈骗", category=c.SERVICE_CATEGORY_LECTURE_LAW, location="小院议事厅",
        starts_at=starts_at, ends_at=ends_at, volunteer_capacity=2, resident_capacity=30), metadata=admin,
        timeout=10).activity
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=activity.activity_id), metadata=admin, timeout=10)

    second = replica()
    channel = grpc.insecure_channel(second.grpc_target)
    stubs = [world.stub, ordering_pb2_grpc.OrderingServiceStub(channel)]
    request = pb.SignUpActivityRequest(activity_id=activity.activity_id)
    residents = [world.mint_resident(yard, f"res_signup_{world.district.id}_{i:03d}") for i in range(100)]
    signups = [(lambda i=i: stubs[i % 2].SignUpActivity(request, metadata=residents[i], timeout=60))
               for i in range(100)]
    try:
        with ThreadPoolExecutor(100) as pool:
            outcomes = list(pool.map(_outcome, signups))
    finally:
        channel.close()
    assert outcomes.count("OK") == 30, outcomes
    assert outcomes.count("FAILED_PRECONDITION") == 70, outcomes

    stored = world.stub.GetActivity(pb.GetActivityRequest(activity_id=activity.activity_id), metadata=admin,
                                    timeout=10).activity
    assert stored.residents_signed_up == 30 and len(stored.participants) == 30
    assert all(p.role == types_pb2.PARTICIPANT_ROLE_RESIDENT for p in stored.participants)
    signed = {e.event_id for e, p, _ in ordering_events.events(world.district.id, at_least=33, settle=2.0)
              if e.aggregate_id == activity.activity_id and isinstance(p, ev.ActivitySignedUp)}
    assert len(signed) == 30
