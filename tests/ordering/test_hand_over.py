"""分单 over real gRPC: the holding unit hands an order down its subtree or to a sibling, the new
holder's queue lists it with its own level's deadline and the old one's no longer does, and
OrderHandedOver on the topic says who passed it to whom and why; everyone else, and every unit
outside that reach, is refused."""

from __future__ import annotations

import grpc

from tests.support.grpc_helpers import expect_error
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb

from .support import S

DENIED = grpc.StatusCode.PERMISSION_DENIED


def _hand_over(world, order_id: str, to_unit, token, reason: str = "本站就近安排") -> pb.Order:
    return world.stub.HandOverOrder(pb.HandOverOrderRequest(order_id=order_id, to_unit_id=to_unit.unit_id,
                                                            reason=reason), metadata=token, timeout=10).order


def _waiting_ids(world, token) -> dict[str, pb.Order]:
    return {o.order_id: o for o in world.queue(token, statuses=[S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ESCALATED])}


def test_the_station_hands_an_order_down_and_the_deadline_and_queues_follow(world, ordering_events):
    yard, next_yard, station = world.courtyards[0], world.courtyards[1], world.stations[0]
    _, resident = world.resident(yard)
    station_admin, next_yard_admin = world.as_admin(station), world.as_admin(next_yard)
    order = world.place(resident, "repair")  # 家电维修 is the station's (一般事项所站办)
    assert order.current_unit.unit_id == station.unit_id and order.sla_seconds_left > 2 * 3600

    handed = _hand_over(world, order.order_id, next_yard, station_admin, reason="邻院有家电维修志愿者")
    assert handed.status == S.ORDER_STATUS_PLACED and handed.current_unit.unit_id == next_yard.unit_id
    assert 0 < handed.sla_seconds_left <= 2 * 3600  # the courtyard's deadline (2 h), started now
    step = world.get(order.order_id).trail[-1]
    assert step.event_type == ev.OrderHandedOver.DESCRIPTOR.full_name and step.reason == "邻院有家电维修志愿者"
    assert (step.unit_id, step.to_unit_id) == (station.unit_id, next_yard.unit_id) and step.actor_id

    # the new holder's queue lists it with the new deadline; the station's own queue no longer does
    listed = _waiting_ids(world, next_yard_admin)
    assert listed[order.order_id].acknowledge_due_at == handed.acknowledge_due_at
    assert order.order_id not in _waiting_ids(world, station_admin)
    assert order.order_id in {o.order_id for o in world.queue(station_admin, include_subtree=True)}

    # the courtyard may pass it sideways to its sibling, then that sibling acknowledges as usual
    sideways = _hand_over(world, order.order_id, yard, next_yard_admin, reason="本院志愿者外出")
    assert sideways.current_unit.unit_id == yard.unit_id
    assert order.order_id not in _waiting_ids(world, next_yard_admin)
    acknowledged = world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id),
                                               metadata=world.as_admin(yard), timeout=10).order
    assert acknowledged.status == S.ORDER_STATUS_ACKNOWLEDGED

    # what other services hear (notification tells the new holder's admins): both moves, in order
    def handed_over(found) -> list:
        return [p for e, p, _ in found if e.aggregate_id == order.order_id and isinstance(p, ev.OrderHandedOver)]

    # placed, handed over twice, acknowledged: four events of the order since the tap opened
    moves = handed_over(ordering_events.events(world.district.id, at_least=4, timeout=30))
    assert [(m.from_unit.unit_id, m.to_unit.unit_id, m.reason) for m in moves] == [
        (station.unit_id, next_yard.unit_id, "邻院有家电维修志愿者"), (next_yard.unit_id, yard.unit_id, "本院志愿者外出")]
    assert moves[1].order.current_unit.unit_id == yard.unit_id


def test_only_the_holders_admin_hands_over_within_its_reach_and_before_dispatch(world):
    yard, next_yard, station = world.courtyards[0], world.courtyards[1], world.stations[0]
    other_station, its_yard = world.stations[1], world.courtyards[2]
    _, resident = world.resident(yard)
    order = world.place(resident, "repair")
    station_admin = world.as_admin(station)

    for token in (world.as_admin(other_station), world.as_admin(world.institute), world.as_admin(yard)):
        with expect_error(DENIED, contains="holding the order"):
            _hand_over(world, order.order_id, next_yard, token)
    for outside in (its_yard, world.institute):  # another station's courtyard; up is 报单
        with expect_error(DENIED, contains="below it or to a sibling"):
            _hand_over(world, order.order_id, outside, station_admin)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="reason"):
        _hand_over(world, order.order_id, next_yard, station_admin, reason="")
    with expect_error(grpc.StatusCode.NOT_FOUND):
        world.stub.HandOverOrder(pb.HandOverOrderRequest(order_id=order.order_id, to_unit_id="unt_nope",
                                                         reason="分单"), metadata=station_admin, timeout=10)

    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=station_admin,
                                timeout=10)
    world.stub.OpenOrder(pb.OpenOrderRequest(order_id=order.order_id), metadata=station_admin, timeout=10)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="cannot be handed over"):
        _hand_over(world, order.order_id, next_yard, station_admin)
    assert world.get(order.order_id).current_unit.unit_id == station.unit_id
