"""The closed loop over real gRPC, with tokens of residents, courtyard heads, station and institute
admins, the center and volunteers: every main and side path of the order state machine."""

from __future__ import annotations

import datetime as dt
import time

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.registration.v1 import registration_pb2 as reg

from .support import S
from tests.support.waiting import wait_until


def test_the_whole_loop_with_escalation_dispatch_service_hours_rating_and_close(world, shifted):
    yard, station = world.courtyards[0], world.stations[0]
    resident_id, resident = world.resident(yard, name="李奶奶")
    barber = world.volunteer(yard, skills=[c.SKILL_HAIRCUT], name="理发志愿者")

    # 点单 at the resident's courtyard; its SLA clock starts
    wanted = Timestamp()
    wanted.FromDatetime(dt.datetime.now(dt.UTC) + dt.timedelta(days=1))
    order = world.place(resident, "haircut", note="老人行动不便，需要上门理发", wanted_at=wanted)
    assert order.status == S.ORDER_STATUS_PLACED and order.resident_id == resident_id
    assert order.current_unit.unit_id == yard.unit_id and order.origin_courtyard.unit_id == yard.unit_id
    assert not order.placed_on_behalf and order.placed_by == resident_id
    assert order.planned_minutes == 60 and 0 < order.sla_seconds_left <= 2 * 3600
    assert order.current_unit.name == yard.name

    # the courtyard head acknowledges (四必接), cannot handle it, and escalates it (报单) with a reason
    courtyard = world.as_admin(yard)
    order = world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=courtyard,
                                        timeout=10).order
    assert order.status == S.ORDER_STATUS_ACKNOWLEDGED and order.sla_seconds_left == 0
    order = world.stub.EscalateOrder(pb.EscalateOrderRequest(order_id=order.order_id, reason="小院暂无理发志愿者"),
                                     metadata=courtyard, timeout=10).order
    assert order.status == S.ORDER_STATUS_ESCALATED and order.current_unit.unit_id == station.unit_id
    assert 0 < order.sla_seconds_left <= 4 * 3600  # the station's own deadline

    # the station acknowledges, asks for candidates and dispatches the best one
    station_admin = world.as_admin(station)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=station_admin,
                                timeout=10)
    suggested = world.stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=order.order_id, limit=50),
                                             metadata=station_admin, timeout=10)
    candidate = next(cand for cand in suggested.candidates if cand.volunteer_id == barber.id)
    assert {f.factor for f in candidate.factors} >= {"distance", "load", "stars", "availability", "skills"}
    order = world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[barber.id]),
                                     metadata=station_admin, timeout=10).order
    assert order.status == S.ORDER_STATUS_DISPATCHED and list(order.offered_volunteer_ids) == [barber.id]

    # 接单, then on site: check-in with the station's rotating code, 50 minutes, check-out with a report
    order = world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=order.order_id), metadata=barber.token,
                                   timeout=10).order
    assert order.status == S.ORDER_STATUS_ACCEPTED and list(order.volunteer_ids) == [barber.id]
    checkin = world.stub.IssueOrderCheckinCode(pb.IssueOrderCheckinCodeRequest(order_id=order.order_id),
                                               metadata=station_admin, timeout=10).checkin
    assert checkin.code and order.order_id in checkin.qr_payload and checkin.valid_until.seconds > 0
    order = world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=checkin.code),
                                    metadata=barber.token, timeout=10).order
    assert order.status == S.ORDER_STATUS_IN_SERVICE
    shifted.advance(50 * 60)
    code = world.code(order)
    order = world.stub.CheckOutOrder(pb.CheckOutOrderRequest(
        order_id=order.order_id, code=code, report="上门理发一次，顺便检查了老人的电暖气", photo_asset_ids=["asset_1"]),
        metadata=barber.token, timeout=10).order
    assert order.status == S.ORDER_STATUS_COMPLETED
    assert [(s.volunteer_id, s.measured_minutes) for s in order.sessions] in ([(barber.id, 50)], [(barber.id, 49)])

    # 时长审核 by the station, 评单 by the resident, closed by the station
    order = world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id),
                                         metadata=station_admin, timeout=10).order
    assert order.status == S.ORDER_STATUS_HOURS_CONFIRMED
    assert [(h.volunteer_id, h.source) for h in order.hours] == [(barber.id, c.HOURS_SOURCE_VERIFIED)]
    order = world.stub.RateOrder(pb.RateOrderRequest(order_id=order.order_id, rating=5, comment="志愿者很耐心"),
                                 metadata=resident, timeout=10).order
    assert order.status == S.ORDER_STATUS_RATED and order.rating == 5
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="already been rated"):
        world.stub.RateOrder(pb.RateOrderRequest(order_id=order.order_id, rating=4), metadata=resident, timeout=10)
    order = world.stub.CloseOrder(pb.CloseOrderRequest(order_id=order.order_id), metadata=station_admin,
                                  timeout=10).order
    assert order.status == S.ORDER_STATUS_CLOSED

    # the history: every step with who did it, where and why
    history = world.get(order.order_id, resident)
    steps = [(t.from_status, t.to_status) for t in history.trail]
    assert steps == [
        (0, S.ORDER_STATUS_PLACED), (S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ACKNOWLEDGED),
        (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_ESCALATED), (S.ORDER_STATUS_ESCALATED, S.ORDER_STATUS_ACKNOWLEDGED),
        (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DISPATCHED), (S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED),
        (S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE), (S.ORDER_STATUS_IN_SERVICE, S.ORDER_STATUS_COMPLETED),
        (S.ORDER_STATUS_COMPLETED, S.ORDER_STATUS_HOURS_CONFIRMED), (S.ORDER_STATUS_HOURS_CONFIRMED, S.ORDER_STATUS_RATED),
        (S.ORDER_STATUS_RATED, S.ORDER_STATUS_CLOSED)]
    escalation = history.trail[2]
    assert escalation.reason == "小院暂无理发志愿者" and escalation.unit_id == yard.unit_id
    assert escalation.actor_role == c.ROLE_UNIT_ADMIN and escalation.event_type.endswith("OrderEscalated")
    assert history.trail[5].actor_id == barber.id and history.trail[0].actor_id == resident_id


def test_an_item_of_a_higher_level_is_routed_past_the_lower_ones(world):
    yard = world.courtyards[3]
    _, resident = world.resident(yard)
    order = world.place(resident, "legal")  # handled by the institute
    assert order.current_unit.unit_id == world.institute.unit_id
    assert order.current_unit.level == c.UNIT_LEVEL_INSTITUTE
    assert [u.unit_id for u in order.routed_past] == [yard.unit_id, world.stations[1].unit_id]
    assert order.origin_courtyard.unit_id == yard.unit_id
    # the institute holds it; the courtyard head may look but not act
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id),
                                    metadata=world.as_admin(yard), timeout=10)
    assert world.get(order.order_id, world.as_admin(yard)).status == S.ORDER_STATUS_PLACED
    acknowledged = world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id),
                                               metadata=world.as_admin(world.institute), timeout=10).order
    assert acknowledged.status == S.ORDER_STATUS_ACKNOWLEDGED


def test_staff_place_an_order_on_a_residents_behalf_and_it_is_recorded(world):
    yard = world.courtyards[1]
    resident_id, resident = world.resident(yard, name="王大爷")
    world.wait_resident_known(resident_id)
    order = world.place(world.as_admin(yard), "haircut", resident_id=resident_id, note="电话问需：老人要理发")
    assert order.placed_on_behalf and order.resident_id == resident_id
    assert order.placed_by != resident_id and order.origin_courtyard.unit_id == yard.unit_id
    # the resident sees it among their orders; a station admin of another branch cannot place for them
    mine = world.stub.ListMyOrders(pb.ListMyOrdersRequest(), metadata=resident, timeout=10).orders
    assert order.order_id in [o.order_id for o in mine]
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        world.place(world.as_admin(world.stations[1]), "haircut", resident_id=resident_id)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        world.place(world.as_admin(yard), "haircut", resident_id="res_nobody")


def test_claim_list_decline_and_redispatch(world):
    yard = world.courtyards[0]
    _, resident = world.resident(yard)
    first, second = world.volunteers(yard, 2, skills=[c.SKILL_HAIRCUT], name="抢单志愿者")
    order = world.place(resident, "haircut")
    admin = world.as_admin(yard)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)
    order = world.stub.OpenOrder(pb.OpenOrderRequest(order_id=order.order_id), metadata=admin, timeout=10).order
    assert order.status == S.ORDER_STATUS_OPEN
    claimable = world.stub.ListClaimableOrders(pb.ListClaimableOrdersRequest(), metadata=first.token, timeout=10)
    assert order.order_id in [o.order_id for o in claimable.orders]

    order = world.stub.ClaimOrder(pb.ClaimOrderRequest(order_id=order.order_id), metadata=first.token,
                                  timeout=10).order
    assert order.status == S.ORDER_STATUS_ACCEPTED and list(order.volunteer_ids) == [first.id]
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="no longer open"):
        world.stub.ClaimOrder(pb.ClaimOrderRequest(order_id=order.order_id), metadata=second.token, timeout=10)

    # the claimer gives it back: DECLINED, and the courtyard dispatches it to the other volunteer
    order = world.stub.DeclineOrder(pb.DeclineOrderRequest(order_id=order.order_id, reason="临时有事"),
                                    metadata=first.token, timeout=10).order
    assert order.status == S.ORDER_STATUS_DECLINED and not order.volunteer_ids
    order = world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[second.id]),
                                     metadata=admin, timeout=10).order
    assert order.status == S.ORDER_STATUS_DISPATCHED
    tasks = world.stub.ListMyTasks(pb.ListMyTasksRequest(statuses=[S.ORDER_STATUS_DISPATCHED]),
                                   metadata=second.token, timeout=10).orders
    assert [o.order_id for o in tasks] == [order.order_id]
    assert order.order_id not in [o.order_id for o in world.stub.ListMyTasks(
        pb.ListMyTasksRequest(), metadata=first.token, timeout=10).orders]


def test_team_dispatch_offers_the_qualified_members(world):
    station = world.stations[1]
    yard = world.courtyards[2]
    _, resident = world.resident(yard)
    repairers = world.volunteers(yard, 2, skills=[c.SKILL_APPLIANCE_REPAIR], name="维修志愿者")
    unskilled = world.volunteer(yard, skills=[c.SKILL_CULTURE_ART], name="文艺志愿者")
    team = world.district.stub.CreateTeam(reg.CreateTeamRequest(
        unit_id=station.unit_id, name="家电维修小队", leader_volunteer_id=repairers[0].id),
        metadata=world.as_center(), timeout=10).team
    for member in (repairers[1], unskilled):
        world.district.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=team.team_id, volunteer_id=member.id),
                                          metadata=world.as_center(), timeout=10)
    wait_until(lambda: len((world.db.registry_teams.find_one({"_id": team.team_id}) or {}).get("member_ids", [])) == 3,
               what="the team in ordering's read model")
    order = world.place(resident, "repair")  # handled by the station
    admin = world.as_admin(station)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)
    order = world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, team_id=team.team_id),
                                     metadata=admin, timeout=10).order
    assert order.team_id == team.team_id
    assert sorted(order.offered_volunteer_ids) == sorted(v.id for v in repairers)  # not the one without the skill
    # both accept and serve together; one declining leaves the order with the other
    for volunteer in repairers:
        order = world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=order.order_id), metadata=volunteer.token,
                                       timeout=10).order
    assert sorted(order.volunteer_ids) == sorted(v.id for v in repairers)
    order = world.stub.DeclineOrder(pb.DeclineOrderRequest(order_id=order.order_id, reason="工具不全"),
                                    metadata=repairers[1].token, timeout=10).order
    assert order.status == S.ORDER_STATUS_ACCEPTED and list(order.volunteer_ids) == [repairers[0].id]


def test_resident_cancels_before_service_and_not_after(world, shifted):
    yard = world.courtyards[1]
    _, resident = world.resident(yard)
    order = world.place(resident, "haircut")
    cancelled = world.stub.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id, reason="已自行解决"),
                                       metadata=resident, timeout=10).order
    assert cancelled.status == S.ORDER_STATUS_CANCELLED and cancelled.closing_reason == "已自行解决"
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id),
                                    metadata=world.as_admin(yard), timeout=10)

    barber = world.volunteer(yard, skills=[c.SKILL_HAIRCUT])
    served = world.served_order(resident, barber, shifted)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="already started"):
        world.stub.CancelOrder(pb.CancelOrderRequest(order_id=served.order_id), metadata=resident, timeout=10)


def test_only_the_center_rejects_and_only_once_the_order_reached_it(world):
    yard = world.courtyards[0]
    _, resident = world.resident(yard)
    at_center = world.place(resident, "policy")
    assert at_center.current_unit.unit_id == world.center.unit_id
    station_order = world.place(resident, "repair")
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="only the center"):
        world.stub.RejectOrder(pb.RejectOrderRequest(order_id=station_order.order_id, reason="不受理"),
                               metadata=world.as_admin(world.stations[0]), timeout=10)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="reached the center"):
        world.stub.RejectOrder(pb.RejectOrderRequest(order_id=station_order.order_id, reason="不受理"),
                               metadata=world.as_center(), timeout=10)
    rejected = world.stub.RejectOrder(pb.RejectOrderRequest(order_id=at_center.order_id,
                                                            reason="超出新时代文明实践服务范围"),
                                      metadata=world.as_center(), timeout=10).order
    assert rejected.status == S.ORDER_STATUS_REJECTED and rejected.closing_reason == "超出新时代文明实践服务范围"
    # the center cannot pass an order further up
    other = world.place(resident, "policy")
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=other.order_id), metadata=world.as_center(),
                                timeout=10)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="top of the district"):
        world.stub.EscalateOrder(pb.EscalateOrderRequest(order_id=other.order_id, reason="再上报"),
                                 metadata=world.as_center(), timeout=10)


def test_orders_close_by_themselves_when_the_rating_window_ends(world, shifted):
    yard = world.courtyards[2]
    _, resident = world.resident(yard)
    barber = world.volunteer(yard, skills=[c.SKILL_HAIRCUT])
    served = world.served_order(resident, barber, shifted, minutes=30)
    confirmed = world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=served.order_id),
                                             metadata=world.holder(served), timeout=10).order
    assert confirmed.status == S.ORDER_STATUS_HOURS_CONFIRMED
    # a second one is rated, but its unit never closes it
    rated = world.served_order(resident, barber, shifted, minutes=30)
    world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=rated.order_id),
                                 metadata=world.holder(rated), timeout=10)
    world.stub.RateOrder(pb.RateOrderRequest(order_id=rated.order_id, rating=4), metadata=resident, timeout=10)
    shifted.advance(6 * 24 * 3600)  # within the 7-day window: still open for rating
    time.sleep(2)
    assert world.get(served.order_id).status == S.ORDER_STATUS_HOURS_CONFIRMED
    shifted.advance(1 * 24 * 3600 + 60)
    closed = wait_until(lambda: (o := world.get(served.order_id)).status == S.ORDER_STATUS_CLOSED and o,
                        what="the automatic close")
    assert closed.trail[-1].automatic and closed.trail[-1].actor_id == ""
    closed_rated = wait_until(lambda: (o := world.get(rated.order_id)).status == S.ORDER_STATUS_CLOSED and o,
                              what="the automatic close of the rated order")
    assert closed_rated.rating == 4 and closed_rated.trail[-1].automatic
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        world.stub.RateOrder(pb.RateOrderRequest(order_id=served.order_id, rating=3), metadata=resident, timeout=10)


def test_a_wish_with_address_and_phone_is_shown_in_full_only_to_those_who_serve(world, ordering_events):
    yard = world.courtyards[0]
    _, resident = world.resident(yard)
    helper = world.volunteer(yard, skills=[])
    phone, address = "13912345678", "幸福小区3号楼2单元401"
    placed = world.stub.PlaceOrder(pb.PlaceOrderRequest(wish="家里灯泡坏了，想请人帮忙换一下", address=address,
                                                        contact_phone=phone), metadata=resident, timeout=10).order
    # 微心愿: no item, taken by the courtyard first
    assert placed.wish and placed.item_id == "" and placed.item_name == "家里灯泡坏了，想请人帮忙换一下"
    assert placed.current_unit.unit_id == yard.unit_id and placed.status == S.ORDER_STATUS_PLACED
    assert (placed.address, placed.contact_phone) == (address, phone)  # the resident's own

    def seen_by(token) -> tuple[str, str]:
        order = world.get(placed.order_id, token)
        return order.address, order.contact_phone

    masked = ("", "139****5678")
    holder = world.as_admin(yard)
    assert seen_by(holder) == (address, phone)
    assert seen_by(world.as_admin(world.stations[0])) == masked  # above the holding unit: not needed
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=placed.order_id), metadata=holder, timeout=10)
    world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=placed.order_id, volunteer_ids=[helper.id]),
                             metadata=holder, timeout=10)
    assert seen_by(helper.token) == masked  # offered, not yet accepted
    accepted = world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=placed.order_id), metadata=helper.token,
                                      timeout=10).order
    assert (accepted.address, accepted.contact_phone) == (address, phone)

    # stored encrypted, and never in an event
    raw = world.db.orders.find_one({"_id": placed.order_id})
    assert phone not in repr(raw) and "幸福小区" not in repr(raw) and raw["contact_masked"] == "139****5678"
    records = wait_until(lambda: [r for e, _, r in ordering_events.events(world.district.id, at_least=1)
                                  if e.aggregate_id == placed.order_id] or None, what="the order's events")
    assert all(phone.encode() not in r.value and address.encode() not in r.value for r in records)
