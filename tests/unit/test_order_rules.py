"""The order's state machine in memory (services/ordering/order_rules.py): every move from every
status — the legal ones land where the table says, every other one is refused with
FAILED_PRECONDITION (a scheduler's move is simply not made) — and who may make each move."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from services.common.auth import Principal, Role
from services.common.checkin import CheckinCodes
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.ordering import order_rules as rules
from services.ordering.models import Order
from services.ordering.policy import Policy
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import types_pb2

S = types_pb2.OrderStatus
L = common_pb2.UnitLevel
ALL_STATUSES = [s for s in S.values() if s != S.ORDER_STATUS_UNSPECIFIED]
NOW = dt.datetime(2026, 6, 1, 2, 0, tzinfo=dt.UTC)
DISTRICT = "dst_1"
CENTER, STATION, COURTYARD = ["unt_c"], ["unt_c", "unt_s"], ["unt_c", "unt_s", "unt_y"]
NEXT_YARD = ["unt_c", "unt_s", "unt_y2"]  # COURTYARD's sibling
NEXT_STATION, ITS_YARD = ["unt_c", "unt_s2"], ["unt_c", "unt_s2", "unt_y3"]
UNITS = {path[-1]: path for path in (CENTER, STATION, COURTYARD, NEXT_YARD, NEXT_STATION, ITS_YARD)}
CODES = CheckinCodes(b"k" * 32)


def admin_of(path: list[str]) -> Principal:
    level = {1: L.UNIT_LEVEL_CENTER, 2: L.UNIT_LEVEL_STATION, 3: L.UNIT_LEVEL_COURTYARD}[len(path)]
    return Principal(subject=f"acc_{path[-1]}", district_id=DISTRICT, role=Role.ROLE_UNIT_ADMIN,
                     unit_id=path[-1], unit_level=level, unit_path=tuple(path))


def person(subject: str, role: int) -> Principal:
    return Principal(subject=subject, district_id=DISTRICT, role=role, unit_id=COURTYARD[-1],
                     unit_path=tuple(COURTYARD))


HOLDER = admin_of(COURTYARD)
CENTER_ADMIN = admin_of(CENTER)
VOLUNTEER = person("vol_1", Role.ROLE_VOLUNTEER)
RESIDENT = person("res_1", Role.ROLE_RESIDENT)


def unit(path: list[str]) -> dict:
    level = {1: L.UNIT_LEVEL_CENTER, 2: L.UNIT_LEVEL_STATION, 3: L.UNIT_LEVEL_COURTYARD}[len(path)]
    return {"unit_id": path[-1], "level": level, "name": "", "path": path}


def order(status: int, held_at: list[str] = COURTYARD, **fields) -> Order:
    raw = {"_id": "ord_1", "district_id": DISTRICT, "status": status, "origin": unit(COURTYARD),
           "current": unit(held_at), "resident_id": RESIDENT.subject, "placed_by": RESIDENT.subject,
           "planned_minutes": 60, "placed_at": NOW - dt.timedelta(hours=2), "arrived_at": NOW - dt.timedelta(hours=1),
           "ack_due_at": NOW - dt.timedelta(minutes=1), "close_due_at": NOW + dt.timedelta(days=7),
           "offered_ids": [], "volunteer_ids": [], "sessions": {}, "rating": 0, "sla_breaches": 0, "version": 3,
           **fields}
    return Order.from_raw(raw)


@dataclass
class FakeDirectory:
    volunteers: dict = field(default_factory=lambda: {VOLUNTEER.subject: {"_id": VOLUNTEER.subject,
                                                                          "scope": COURTYARD}})

    def volunteer(self, district_id: str, volunteer_id: str) -> dict | None:
        return self.volunteers.get(volunteer_id)

    def team(self, district_id: str, team_id: str) -> dict | None:
        return None

    def unit(self, district_id: str, unit_id: str) -> dict | None:
        return unit(UNITS[unit_id]) if unit_id in UNITS else None

    def unit_ref(self, district_id: str, path: list[str]) -> dict:
        return unit(path)


class EveryoneEligible:
    def require_eligible(self, order, volunteer_id, *, check_scope=True, volunteer=None) -> dict:
        return {"_id": volunteer_id}

    def eligible_members(self, order, member_ids):
        return member_ids


LOOKUPS = rules.OrderLookups(
    directory=FakeDirectory(),
    policy=lambda district_id: Policy(district_id, {level: 30 for level in L.values()}, 7, defaults=True),
    eligibility=EveryoneEligible(), codes=CODES, tolerance_minutes=30)


def code() -> str:
    return CODES.issue(rules.CHECKIN_PURPOSE, "ord_1")[0]


SERVED = {VOLUNTEER.subject: {"checked_in_at": NOW - dt.timedelta(minutes=45), "measured_minutes": 45}}


@dataclass
class Action:
    """One move: from which statuses it is legal, where it lands, and the order it is tried on."""

    name: str
    legal: tuple[int, ...]
    to: int | None  # None: the status stays (a scheduler's reminder)
    make: Callable[[Order], rules.Move | None]
    held_at: list[str] = field(default_factory=lambda: COURTYARD)
    order_fields: dict = field(default_factory=dict)
    scheduler: bool = False  # refuses by making no move instead of raising


ACTIONS = [
    Action("acknowledge", rules.WAITING_ACK, S.ORDER_STATUS_ACKNOWLEDGED,
           lambda o: rules.acknowledge(o, HOLDER, NOW)),
    Action("escalate", (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED), S.ORDER_STATUS_ESCALATED,
           lambda o: rules.escalate(o, HOLDER, NOW, "超出能力", LOOKUPS)),
    Action("hand over", rules.UNDISPATCHED, S.ORDER_STATUS_PLACED,
           lambda o: rules.hand_over(o, admin_of(STATION), NOW, COURTYARD[-1], "院里有人会", LOOKUPS), held_at=STATION),
    Action("dispatch", (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED, S.ORDER_STATUS_OPEN),
           S.ORDER_STATUS_DISPATCHED, lambda o: rules.dispatch(o, HOLDER, NOW, "", [VOLUNTEER.subject], LOOKUPS)),
    Action("open", (S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DECLINED), S.ORDER_STATUS_OPEN,
           lambda o: rules.open_for_claims(o, HOLDER, NOW)),
    Action("claim", (S.ORDER_STATUS_OPEN,), S.ORDER_STATUS_ACCEPTED, lambda o: rules.claim(o, VOLUNTEER, NOW, LOOKUPS)),
    Action("accept", (S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED), S.ORDER_STATUS_ACCEPTED,
           lambda o: rules.accept(o, VOLUNTEER, NOW, LOOKUPS), order_fields={"offered_ids": [VOLUNTEER.subject]}),
    Action("decline", (S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED), S.ORDER_STATUS_DECLINED,
           lambda o: rules.decline(o, VOLUNTEER, NOW, "临时有事"), order_fields={"offered_ids": [VOLUNTEER.subject]}),
    Action("check_in", rules.SERVING, S.ORDER_STATUS_IN_SERVICE,
           lambda o: rules.check_in(o, VOLUNTEER, NOW, code(), LOOKUPS),
           order_fields={"offered_ids": [VOLUNTEER.subject], "volunteer_ids": [VOLUNTEER.subject]}),
    Action("check_out", (S.ORDER_STATUS_IN_SERVICE,), S.ORDER_STATUS_COMPLETED,
           lambda o: rules.check_out(o, VOLUNTEER, NOW, code(), "已完成", [], LOOKUPS),
           order_fields={"volunteer_ids": [VOLUNTEER.subject], "sessions": SERVED}),
    Action("confirm_hours", (S.ORDER_STATUS_COMPLETED,), S.ORDER_STATUS_HOURS_CONFIRMED,
           lambda o: rules.confirm_hours(o, HOLDER, NOW, {}, LOOKUPS),
           order_fields={"volunteer_ids": [VOLUNTEER.subject], "sessions": SERVED}),
    Action("rate", (S.ORDER_STATUS_HOURS_CONFIRMED,), S.ORDER_STATUS_RATED,
           lambda o: rules.rate(o, RESIDENT, NOW, 5, "很好")),
    Action("close", (S.ORDER_STATUS_RATED,), S.ORDER_STATUS_CLOSED, lambda o: rules.close(o, HOLDER, NOW)),
    Action("cancel", rules.BEFORE_SERVICE, S.ORDER_STATUS_CANCELLED, lambda o: rules.cancel(o, RESIDENT, NOW, "")),
    Action("reject", rules.UNDISPATCHED, S.ORDER_STATUS_REJECTED, lambda o: rules.reject(o, CENTER_ADMIN, NOW, "不属于服务范围", LOOKUPS),
           held_at=CENTER),
    Action("overdue (scheduler)", rules.WAITING_ACK, S.ORDER_STATUS_ESCALATED,
           lambda o: rules.overdue(o, NOW, LOOKUPS), scheduler=True),
    Action("deadline reminder (scheduler)", rules.WAITING_ACK, None, lambda o: rules.deadline_reminder(o, NOW),
           order_fields={"ack_due_at": NOW + dt.timedelta(minutes=5)}, scheduler=True),
    Action("close expired (scheduler)", rules.AWAITING_CLOSE, S.ORDER_STATUS_CLOSED,
           lambda o: rules.close_expired(o, NOW), scheduler=True),
]


TRANSITIONS = [pytest.param(action, status, id=f"{action.name}-from-{S.Name(status).removeprefix('ORDER_STATUS_')}")
               for action in ACTIONS for status in ALL_STATUSES]


@pytest.mark.parametrize(("action", "status"), TRANSITIONS)
def test_every_move_from_every_status(action: Action, status: int):
    subject = order(status, action.held_at, **action.order_fields)
    if status in action.legal:
        move = action.make(subject)
        assert move.to == (status if action.to is None else action.to)
    elif action.scheduler:
        assert action.make(subject) is None
    else:
        with pytest.raises(FailedPrecondition):
            action.make(subject)


STRANGER_ADMIN = admin_of(STATION[:1] + ["unt_other"])
STRANGER_VOLUNTEER = person("vol_2", Role.ROLE_VOLUNTEER)
STRANGER_RESIDENT = person("res_2", Role.ROLE_RESIDENT)
# the holding unit's moves are its own admin's (not even the unit above may make them); the
# volunteers' are those the order was offered to; rating and cancelling the resident's
REFUSED = [
    ("acknowledge", S.ORDER_STATUS_PLACED, lambda o: rules.acknowledge(o, admin_of(STATION), NOW)),
    ("escalate", S.ORDER_STATUS_ACKNOWLEDGED, lambda o: rules.escalate(o, STRANGER_ADMIN, NOW, "", LOOKUPS)),
    ("hand_over by another station's admin", S.ORDER_STATUS_PLACED,
     lambda o: rules.hand_over(o, STRANGER_ADMIN, NOW, NEXT_YARD[-1], "", LOOKUPS)),
    ("hand_over by the unit above", S.ORDER_STATUS_PLACED,
     lambda o: rules.hand_over(o, admin_of(STATION), NOW, NEXT_YARD[-1], "", LOOKUPS)),
    ("dispatch", S.ORDER_STATUS_ACKNOWLEDGED, lambda o: rules.dispatch(o, VOLUNTEER, NOW, "", ["vol_1"], LOOKUPS)),
    ("open", S.ORDER_STATUS_ACKNOWLEDGED, lambda o: rules.open_for_claims(o, RESIDENT, NOW)),
    ("claim", S.ORDER_STATUS_OPEN, lambda o: rules.claim(o, HOLDER, NOW, LOOKUPS)),
    ("accept", S.ORDER_STATUS_DISPATCHED, lambda o: rules.accept(o, STRANGER_VOLUNTEER, NOW, LOOKUPS)),
    ("decline", S.ORDER_STATUS_DISPATCHED, lambda o: rules.decline(o, STRANGER_VOLUNTEER, NOW, "")),
    ("check_in", S.ORDER_STATUS_ACCEPTED, lambda o: rules.check_in(o, STRANGER_VOLUNTEER, NOW, code(), LOOKUPS)),
    ("check_out", S.ORDER_STATUS_IN_SERVICE,
     lambda o: rules.check_out(o, STRANGER_VOLUNTEER, NOW, code(), "", [], LOOKUPS)),
    ("confirm_hours", S.ORDER_STATUS_COMPLETED, lambda o: rules.confirm_hours(o, CENTER_ADMIN, NOW, {}, LOOKUPS)),
    ("rate", S.ORDER_STATUS_HOURS_CONFIRMED, lambda o: rules.rate(o, STRANGER_RESIDENT, NOW, 5, "")),
    ("close", S.ORDER_STATUS_RATED, lambda o: rules.close(o, STRANGER_ADMIN, NOW)),
    ("cancel", S.ORDER_STATUS_PLACED, lambda o: rules.cancel(o, STRANGER_RESIDENT, NOW, "")),
    ("reject", S.ORDER_STATUS_PLACED, lambda o: rules.reject(o, HOLDER, NOW, "", LOOKUPS)),
]


@pytest.mark.parametrize(("name", "status", "make"), [pytest.param(*row, id=row[0]) for row in REFUSED])
def test_only_whose_move_it_is_may_make_it(name, status, make):
    with pytest.raises(PermissionDenied):
        make(order(status, offered_ids=[VOLUNTEER.subject], volunteer_ids=[VOLUNTEER.subject], sessions=SERVED))


def test_a_claim_that_lost_the_race_is_told_apart_from_other_refusals():
    with pytest.raises(rules.ClaimLost):
        rules.claim(order(S.ORDER_STATUS_ACCEPTED), VOLUNTEER, NOW, LOOKUPS)
    outside = rules.OrderLookups(**{**LOOKUPS.__dict__, "directory": FakeDirectory(
        {VOLUNTEER.subject: {"_id": VOLUNTEER.subject, "scope": STATION}})})
    with pytest.raises(PermissionDenied):
        rules.claim(order(S.ORDER_STATUS_OPEN), VOLUNTEER, NOW, outside)


@pytest.mark.parametrize(("offered", "accepted", "to"), [
    (["vol_1", "vol_2"], ["vol_1", "vol_2"], S.ORDER_STATUS_ACCEPTED),  # the other volunteer carries on
    (["vol_1", "vol_2"], ["vol_1"], S.ORDER_STATUS_DISPATCHED),  # the other may still accept
    (["vol_1"], ["vol_1"], S.ORDER_STATUS_DECLINED),  # nobody left: the unit dispatches again
])
def test_giving_an_order_back_leaves_it_to_whoever_is_left(offered, accepted, to):
    move = rules.decline(order(S.ORDER_STATUS_ACCEPTED, offered_ids=offered, volunteer_ids=accepted), VOLUNTEER,
                         NOW, "临时有事")
    assert move.to == to


def test_the_center_cannot_escalate_and_rejects_only_what_reached_it():
    with pytest.raises(FailedPrecondition, match="top of the district"):
        rules.escalate(order(S.ORDER_STATUS_ACKNOWLEDGED, CENTER), CENTER_ADMIN, NOW, "", LOOKUPS)
    with pytest.raises(FailedPrecondition, match="reached the center"):
        rules.reject(order(S.ORDER_STATUS_PLACED, COURTYARD), CENTER_ADMIN, NOW, "", LOOKUPS)
    overdue = rules.overdue(order(S.ORDER_STATUS_PLACED, CENTER), NOW, LOOKUPS)
    assert overdue.to == S.ORDER_STATUS_PLACED and overdue.fields["overdue_flagged"]


def test_escalating_moves_the_order_to_the_parent_with_its_deadlines():
    move = rules.overdue(order(S.ORDER_STATUS_PLACED), NOW, LOOKUPS)
    assert move.fields["current"]["unit_id"] == STATION[-1] and move.automatic
    assert move.fields["ack_due_at"] == NOW + dt.timedelta(minutes=30)
    assert move.fields["warn_at"] == NOW + dt.timedelta(minutes=24)
    assert move.fields["sla_breaches"] == 1 and "四必接" in move.reason


def test_checking_in_needs_the_current_code_once():
    accepted = order(S.ORDER_STATUS_ACCEPTED, offered_ids=["vol_1"], volunteer_ids=["vol_1"])
    with pytest.raises(InvalidArgument):
        rules.check_in(accepted, VOLUNTEER, NOW, "WRONG", LOOKUPS)
    with pytest.raises(FailedPrecondition, match="already checked in"):
        rules.check_in(order(S.ORDER_STATUS_IN_SERVICE, volunteer_ids=["vol_1"], sessions=SERVED), VOLUNTEER, NOW,
                       code(), LOOKUPS)


def test_checking_out_measures_time_on_site_up_to_the_cap():
    long_visit = {"vol_1": {"checked_in_at": NOW - dt.timedelta(hours=5), "measured_minutes": 0}}
    move = rules.check_out(order(S.ORDER_STATUS_IN_SERVICE, volunteer_ids=["vol_1"], sessions=long_visit),
                           VOLUNTEER, NOW, code(), "", [], LOOKUPS)
    assert move.fields["sessions"]["vol_1"]["measured_minutes"] == 60 + 30  # planned plus tolerance


def test_confirming_hours_wants_manual_hours_for_a_visit_under_a_minute():
    brief = {"vol_1": {"checked_in_at": NOW, "measured_minutes": 0}}
    completed = order(S.ORDER_STATUS_COMPLETED, volunteer_ids=["vol_1"], sessions=brief)
    with pytest.raises(FailedPrecondition, match="less than a minute"):
        rules.confirm_hours(completed, HOLDER, NOW, {}, LOOKUPS)
    with pytest.raises(InvalidArgument):
        rules.confirm_hours(completed, HOLDER, NOW, {"vol_1": 91}, LOOKUPS)  # over planned + tolerance
    move = rules.confirm_hours(completed, HOLDER, NOW, {"vol_1": 40}, LOOKUPS)
    assert move.fields["hours"] == [{"volunteer_id": "vol_1", "minutes": 40, "source": common_pb2.HOURS_SOURCE_MANUAL}]
    assert move.fields["close_due_at"] == NOW + dt.timedelta(days=7)


def test_rating_is_once_and_within_the_window():
    with pytest.raises(FailedPrecondition, match="评价期已过"):
        rules.rate(order(S.ORDER_STATUS_HOURS_CONFIRMED, close_due_at=NOW), RESIDENT, NOW, 5, "")
    with pytest.raises(FailedPrecondition, match="already been rated"):
        rules.rate(order(S.ORDER_STATUS_RATED, rating=4), RESIDENT, NOW, 5, "")


def test_staff_who_placed_an_order_for_a_resident_may_cancel_it():
    assert rules.cancel(order(S.ORDER_STATUS_PLACED, placed_by=HOLDER.subject), HOLDER, NOW, "").to == \
        S.ORDER_STATUS_CANCELLED


# 分单: down to any unit below the holder, or sideways to a sibling; nowhere else
HAND_OVER_TARGETS = [
    (CENTER, ITS_YARD, True),        # down two levels
    (STATION, COURTYARD, True),      # down one level
    (COURTYARD, NEXT_YARD, True),    # a sibling under the same station
    (STATION, NEXT_STATION, True),   # a sibling under the same center
    (STATION, ITS_YARD, False),      # the sibling's own courtyard: the sibling's to hand down
    (COURTYARD, STATION, False),     # up is 报单 (EscalateOrder), with its own rules
    (COURTYARD, ITS_YARD, False),    # a courtyard of another station
    (COURTYARD, COURTYARD, False),   # itself
]


@pytest.mark.parametrize(("held_at", "to", "allowed"), [
    pytest.param(*row, id=f"{row[0][-1]}-to-{row[1][-1]}") for row in HAND_OVER_TARGETS])
def test_handing_over_goes_down_the_subtree_or_to_a_sibling(held_at, to, allowed):
    def hand_over():
        return rules.hand_over(order(S.ORDER_STATUS_ACKNOWLEDGED, held_at), admin_of(held_at), NOW, to[-1], "分单",
                               LOOKUPS)
    if allowed:
        assert hand_over().fields["current"]["unit_id"] == to[-1]
    else:
        with pytest.raises(PermissionDenied, match="below it or to a sibling"):
            hand_over()


def test_handing_over_restarts_the_deadline_at_the_new_holders_level():
    by_level = rules.OrderLookups(**{**LOOKUPS.__dict__, "policy": lambda district_id: Policy(
        district_id, {**{level: 480 for level in L.values()}, L.UNIT_LEVEL_COURTYARD: 120}, 7, defaults=True)})
    declined = order(S.ORDER_STATUS_DECLINED, STATION, team_id="tm_1", offered_ids=["vol_1"], sla_breaches=1)
    move = rules.hand_over(declined, admin_of(STATION), NOW, COURTYARD[-1], "院里有理发志愿者", by_level)
    assert move.fields["current"] == unit(COURTYARD) and move.fields["arrived_at"] == NOW
    assert move.fields["ack_due_at"] == NOW + dt.timedelta(minutes=120)
    assert move.fields["warn_at"] == NOW + dt.timedelta(minutes=96)
    assert move.fields["team_id"] == "" and move.fields["offered_ids"] == []
    assert "sla_breaches" not in move.fields and not move.automatic  # handing over is no breach
    assert move.event_fields["from_unit"].unit_id == STATION[-1] and move.event_fields["to_unit"].unit_id == "unt_y"
    assert move.reason == move.event_fields["reason"] == "院里有理发志愿者"


def test_handing_over_to_an_unknown_unit_is_not_found():
    with pytest.raises(NotFound):
        rules.hand_over(order(S.ORDER_STATUS_PLACED, STATION), admin_of(STATION), NOW, "unt_nope", "分单", LOOKUPS)
