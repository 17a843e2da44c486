"""The service menu: published by the center, extended by lower units for their subtree, listed
as each courtyard sees it, retired without breaking old orders; and the unit queue."""

from __future__ import annotations

import grpc

from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb

from .support import S


def _names(world, token, **request) -> list[str]:
    reply = world.stub.ListMenu(pb.ListMenuRequest(page=c.PageRequest(page_size=100), **request), metadata=token,
                                timeout=10)
    return [i.name for i in reply.items]


def test_lower_units_extend_the_menu_for_their_subtree(world):
    station = world.stations[0]
    station_admin = world.as_admin(station)
    own = world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
        name="农机具维修", description="春耕前上门检修农机具", category=c.SERVICE_CATEGORY_CARE_FOR_SOCIETY,
        handling_level=c.UNIT_LEVEL_STATION, required_skills=[c.SKILL_AGRI_TECH], expected_minutes=120,
        points_rule="care.agri"), metadata=station_admin, timeout=10).item
    assert own.owner_unit.unit_id == station.unit_id and own.owner_unit.level == c.UNIT_LEVEL_STATION
    assert own.handling_level == c.UNIT_LEVEL_STATION and own.points_rule == "care.agri"

    center_items = {"助老理发", "家电维修", "法律咨询", "政策宣讲", "应急救护指导"}
    _, here = world.resident(world.courtyards[0])   # under station 0
    _, there = world.resident(world.courtyards[2])  # under station 1
    assert set(_names(world, here)) >= center_items | {"农机具维修"}
    assert "农机具维修" not in _names(world, there)
    assert set(_names(world, there)) >= center_items
    only_law = _names(world, here, category=c.SERVICE_CATEGORY_LECTURE_LAW)
    assert "法律咨询" in only_law and "助老理发" not in only_law

    # a resident of the other station cannot order the station's own item
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="not on the menu"):
        world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=own.item_id), metadata=there, timeout=10)
    order = world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=own.item_id), metadata=here, timeout=10).order
    assert order.current_unit.unit_id == station.unit_id

    # residents and volunteers do not publish; retiring hides the item unless asked for
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
            name="居民自建", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, handling_level=c.UNIT_LEVEL_COURTYARD,
            expected_minutes=30), metadata=here, timeout=10)
    world.stub.RetireMenuItem(pb.RetireMenuItemRequest(item_id=own.item_id, reason="春耕结束"),
                              metadata=station_admin, timeout=10)
    assert "农机具维修" not in _names(world, here)
    assert "农机具维修" in _names(world, here, include_retired=True)
    got = world.stub.GetMenuItem(pb.GetMenuItemRequest(item_id=own.item_id), metadata=here, timeout=10).item
    assert got.retired and got.retired_reason == "春耕结束" and got.retired_at.seconds


def test_the_unit_queue_puts_the_nearest_deadline_first_and_pages(world):
    yard = world.courtyards[3]
    _, resident = world.resident(yard)
    admin = world.as_admin(yard)
    placed = [world.place(resident, "haircut").order_id for _ in range(3)]
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=placed[0]), metadata=admin, timeout=10)
    queue = world.queue(admin)
    # waiting for acknowledgement first (nearest deadline first), then everything else
    assert [o.order_id for o in queue if o.order_id in placed] == [placed[1], placed[2], placed[0]]
    waiting = [o.status in (S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ESCALATED) for o in queue]
    assert waiting == sorted(waiting, reverse=True)
    deadlines = [o.acknowledge_due_at.ToDatetime() for o in queue if o.acknowledge_due_at.seconds]
    assert deadlines == sorted(deadlines)
    mine = {o.order_id: o for o in queue}
    assert mine[placed[1]].sla_seconds_left > 0 and mine[placed[0]].sla_seconds_left == 0

    only_waiting = world.queue(admin, statuses=[S.ORDER_STATUS_PLACED])
    assert {o.status for o in only_waiting} == {S.ORDER_STATUS_PLACED}
    assert [o.order_id for o in only_waiting if o.order_id in placed] == placed[1:]
    # the station sees its courtyards' orders through include_subtree, filtered by level, in pages
    station = world.as_admin(world.stations[1])
    paged = world.queue(station, unit_id=world.stations[1].unit_id, include_subtree=True,
                        level=c.UNIT_LEVEL_COURTYARD, page_size=2)
    ids = [o.order_id for o in paged]
    assert len(ids) == len(set(ids)) and set(placed) <= set(ids)
    assert {o.current_unit.level for o in paged} == {c.UNIT_LEVEL_COURTYARD}
    own = world.queue(station, unit_id=world.stations[1].unit_id)
    assert {o.current_unit.unit_id for o in own} <= {world.stations[1].unit_id}
