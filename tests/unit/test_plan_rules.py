"""Activity plans in memory: every status × every move (table-driven: where a legal move leads,
that an illegal one is refused and changes nothing), the repeats that answer the plan as it is,
the deadline on both sides, who may comment and who may act, and the periods' dates."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.validation import Validator
from services.ordering import plan_rules as rules
from wenming.ordering.v1 import ordering_pb2 as pb

S = rules.S
P = rules.PERIOD
NOW = dt.datetime(2026, 4, 20, 8, 0, tzinfo=dt.UTC)
DEADLINE = NOW + dt.timedelta(days=7)
DISTRICT = "dst_1"
STATION = ["unt_c", "unt_i", "unt_s1"]
ENTRY = {"entry_id": "e1", "title": "小院讲堂", "when": "2026-05-12", "category": 1,
         "unit": {"unit_id": "unt_s1", "level": 3, "name": "一站", "path": STATION}, "activity_id": "", "note": ""}


def admin(unit_id: str, path: tuple[str, ...]) -> Principal:
    return Principal(subject=f"adm_{unit_id}", district_id=DISTRICT, role=Role.ROLE_UNIT_ADMIN, unit_id=unit_id,
                     unit_path=path)


STATION_ADMIN = admin("unt_s1", tuple(STATION))
INSTITUTE_ADMIN = admin("unt_i", ("unt_c", "unt_i"))
OTHER_STATION_ADMIN = admin("unt_s2", ("unt_c", "unt_i", "unt_s2"))
RESIDENT = Principal(subject="res_1", district_id=DISTRICT, role=Role.ROLE_RESIDENT, unit_id="unt_y1",
                     unit_path=(*STATION, "unt_y1"))
RESIDENT_ELSEWHERE = Principal(subject="res_2", district_id=DISTRICT, role=Role.ROLE_RESIDENT, unit_id="unt_y3",
                               unit_path=("unt_c", "unt_i", "unt_s2", "unt_y3"))


def plan(status: int, **fields) -> dict:
    published = status == S.ACTIVITY_PLAN_STATUS_PUBLISHED
    return {"_id": "apl_1", "district_id": DISTRICT, "unit": {"unit_id": "unt_s1", "level": 3, "path": STATION},
            "period": P.ACTIVITY_PLAN_PERIOD_MONTH, "period_key": "2026-05", "title": "五月活动安排",
            "status": status, "revision": 1, "entries": [ENTRY], "published_revision": 1 if published else 0,
            "published_entries": [ENTRY] if published else [],
            "consultation_deadline": DEADLINE if status != S.ACTIVITY_PLAN_STATUS_DRAFT else None, "version": 3,
            **fields}


NEW_ENTRIES = [{**ENTRY, "title": "端午包粽子"}]


def make(move: str, current: dict, now: dt.datetime = NOW):
    """Applies `move` as its proper caller would: the station's admin, a resident of its subtree."""
    if move == rules.EDIT:
        return {"status": current["status"], **rules.set_entries(current, STATION_ADMIN, NEW_ENTRIES)}
    if move == rules.OPEN:
        return rules.open_consultation(current, STATION_ADMIN, now, now + dt.timedelta(days=3))
    if move == rules.COMMENT:
        rules.require_commenter(current, RESIDENT, RESIDENT.unit_path, now)
        return {"status": current["status"]}
    if move == rules.PUBLISH:
        return rules.publish(current, STATION_ADMIN, DEADLINE + dt.timedelta(minutes=1))
    return rules.revise(current, STATION_ADMIN)


ALL_STATUSES = (S.ACTIVITY_PLAN_STATUS_DRAFT, S.ACTIVITY_PLAN_STATUS_CONSULTING, S.ACTIVITY_PLAN_STATUS_PUBLISHED)
# a published plan is published: publishing it again is the retry of a lost answer, not a move
REPEAT = "repeat"
REPEATS = {(S.ACTIVITY_PLAN_STATUS_PUBLISHED, rules.PUBLISH)}
TABLE = [(status, move, REPEAT if (status, move) in REPEATS else rules.NEXT[status].get(move))
         for status in ALL_STATUSES for move in rules.MOVES]


@pytest.mark.parametrize(("status", "move", "to"), TABLE,
                         ids=[f"{S.Name(s).removeprefix('ACTIVITY_PLAN_STATUS_')}-{m}" for s, m, _ in TABLE])
def test_every_status_and_move(status, move, to):
    current = plan(status)
    if to is None:
        with pytest.raises(FailedPrecondition, match="不能"):
            make(move, current)
        return
    if to == REPEAT:
        assert make(move, current) == {}
        return
    assert make(move, current)["status"] == to


def test_the_table_names_every_status_and_only_known_moves():
    assert set(rules.NEXT) == set(ALL_STATUSES)
    assert all(set(moves) <= set(rules.MOVES) for moves in rules.NEXT.values())


def test_publishing_copies_the_revision_to_the_calendar_and_revising_keeps_it_there():
    published = {**plan(S.ACTIVITY_PLAN_STATUS_CONSULTING),
                 **rules.publish(plan(S.ACTIVITY_PLAN_STATUS_CONSULTING), STATION_ADMIN, DEADLINE + dt.timedelta(1))}
    assert (published["published_revision"], published["published_entries"]) == (1, [ENTRY])
    revised = {**published, **rules.revise(published, STATION_ADMIN)}
    assert (revised["status"], revised["revision"], revised["published_entries"]) == (
        S.ACTIVITY_PLAN_STATUS_DRAFT, 2, [ENTRY])
    assert revised["consultation_deadline"] is None
    # the calendar still shows revision 1 to the subtree while revision 2 is drafted
    assert rules.visible(revised, RESIDENT, RESIDENT.unit_path) and not rules.sees_draft(revised, RESIDENT)


@pytest.mark.parametrize("repeat", ["edit", "open", "publish", "revise"])
def test_a_repeat_of_the_move_just_made_changes_nothing(repeat):
    if repeat == "edit":
        assert rules.set_entries(plan(S.ACTIVITY_PLAN_STATUS_DRAFT), STATION_ADMIN, [ENTRY]) == {}
    elif repeat == "open":
        assert rules.open_consultation(plan(S.ACTIVITY_PLAN_STATUS_CONSULTING), STATION_ADMIN, NOW, DEADLINE) == {}
    elif repeat == "publish":
        assert rules.publish(plan(S.ACTIVITY_PLAN_STATUS_PUBLISHED), STATION_ADMIN, NOW) == {}
    else:
        assert rules.revise(plan(S.ACTIVITY_PLAN_STATUS_DRAFT, revision=2, published_revision=1), STATION_ADMIN) == {}


def test_a_first_draft_is_not_a_revision_to_repeat():
    with pytest.raises(FailedPrecondition):
        rules.revise(plan(S.ACTIVITY_PLAN_STATUS_DRAFT), STATION_ADMIN)


def test_the_deadline_closes_comments_and_opens_publication():
    consulting = plan(S.ACTIVITY_PLAN_STATUS_CONSULTING)
    rules.require_commenter(consulting, RESIDENT, RESIDENT.unit_path, DEADLINE)  # up to the deadline itself
    with pytest.raises(FailedPrecondition, match="已截止"):
        rules.require_commenter(consulting, RESIDENT, RESIDENT.unit_path, DEADLINE + dt.timedelta(seconds=1))
    with pytest.raises(FailedPrecondition, match="尚未截止"):
        rules.publish(consulting, STATION_ADMIN, DEADLINE)


@pytest.mark.parametrize(("deadline", "ok"), [(dt.timedelta(hours=23), False), (dt.timedelta(days=1), True),
                                              (dt.timedelta(days=30), True), (dt.timedelta(days=31), False)])
def test_the_consultation_lasts_a_day_to_a_month(deadline, ok):
    draft = plan(S.ACTIVITY_PLAN_STATUS_DRAFT)
    if ok:
        assert rules.open_consultation(draft, STATION_ADMIN, NOW, NOW + deadline)["consultation_deadline"] == NOW + deadline
    else:
        with pytest.raises(InvalidArgument):
            rules.open_consultation(draft, STATION_ADMIN, NOW, NOW + deadline)


def test_an_empty_draft_is_not_put_out_for_comments():
    with pytest.raises(FailedPrecondition, match="先添加"):
        rules.open_consultation(plan(S.ACTIVITY_PLAN_STATUS_DRAFT, entries=[]), STATION_ADMIN, NOW, DEADLINE)


@pytest.mark.parametrize(("caller", "allowed"), [(STATION_ADMIN, True), (INSTITUTE_ADMIN, True),
                                                 (OTHER_STATION_ADMIN, False), (RESIDENT, False)])
def test_the_units_admins_and_those_above_act_on_a_plan(caller, allowed):
    draft = plan(S.ACTIVITY_PLAN_STATUS_DRAFT)
    if allowed:
        assert rules.set_entries(draft, caller, NEW_ENTRIES) == {"entries": NEW_ENTRIES}
    else:
        with pytest.raises(PermissionDenied):
            rules.set_entries(draft, caller, NEW_ENTRIES)
        with pytest.raises(PermissionDenied):
            rules.publish(plan(S.ACTIVITY_PLAN_STATUS_CONSULTING), caller, DEADLINE + dt.timedelta(1))


def test_only_the_subtrees_residents_and_volunteers_comment():
    consulting = plan(S.ACTIVITY_PLAN_STATUS_CONSULTING)
    volunteer = Principal(subject="vol_1", district_id=DISTRICT, role=Role.ROLE_VOLUNTEER)
    rules.require_commenter(consulting, volunteer, [*STATION, "unt_y2"], NOW)  # serves in the subtree
    for caller, reach in [(RESIDENT_ELSEWHERE, RESIDENT_ELSEWHERE.unit_path), (volunteer, ["unt_c", "unt_s2"]),
                          (STATION_ADMIN, STATION)]:
        with pytest.raises(PermissionDenied):
            rules.require_commenter(consulting, caller, reach, NOW)


def test_who_sees_a_plan():
    draft, consulting = plan(S.ACTIVITY_PLAN_STATUS_DRAFT), plan(S.ACTIVITY_PLAN_STATUS_CONSULTING)
    assert rules.visible(draft, STATION_ADMIN, []) and not rules.visible(draft, RESIDENT, RESIDENT.unit_path)
    assert rules.visible(consulting, RESIDENT, RESIDENT.unit_path) and rules.sees_draft(consulting, RESIDENT)
    assert not rules.visible(consulting, RESIDENT_ELSEWHERE, RESIDENT_ELSEWHERE.unit_path)
    assert not rules.visible(consulting, OTHER_STATION_ADMIN, [])


@pytest.mark.parametrize(("period", "key", "when", "why"), [
    (P.ACTIVITY_PLAN_PERIOD_MONTH, "2026-05", "2026-05-31", ""),
    (P.ACTIVITY_PLAN_PERIOD_MONTH, "2026-05", "2026-W18", ""),  # 4月27日–5月3日: overlaps May
    (P.ACTIVITY_PLAN_PERIOD_MONTH, "2026-05", "2026-06-01", "不在计划的时段"),
    (P.ACTIVITY_PLAN_PERIOD_MONTH, "2026-05", "2026-05", "日期或周次"),
    (P.ACTIVITY_PLAN_PERIOD_WEEK, "2026-W20", "2026-05-11", ""),
    (P.ACTIVITY_PLAN_PERIOD_WEEK, "2026-W20", "2026-05-18", "不在计划的时段"),
    (P.ACTIVITY_PLAN_PERIOD_WEEK, "2026-W20", "2026-W20", "具体日期"),
    (P.ACTIVITY_PLAN_PERIOD_YEAR, "2026", "2026-07", ""),
    (P.ACTIVITY_PLAN_PERIOD_YEAR, "2026", "2027-01-01", "不在计划的时段"),
    (P.ACTIVITY_PLAN_PERIOD_YEAR, "2026", "2026-02-30", "须为日期"),
    (P.ACTIVITY_PLAN_PERIOD_YEAR, "2026", "下个月", "须为日期"),
])
def test_an_entry_falls_inside_its_plans_period(period, key, when, why):
    found = rules.when_fits(period, key, when)
    assert (why in found and bool(found)) if why else found == ""


def test_the_plans_covering_a_month():
    assert rules.keys_covering("2026-05") == [
        (P.ACTIVITY_PLAN_PERIOD_YEAR, "2026"), (P.ACTIVITY_PLAN_PERIOD_MONTH, "2026-05"),
        *[(P.ACTIVITY_PLAN_PERIOD_WEEK, f"2026-W{w}") for w in (18, 19, 20, 21, 22)]]
    # the first days of January belong to the previous ISO year's last week
    assert (P.ACTIVITY_PLAN_PERIOD_WEEK, "2026-W53") in rules.keys_covering("2027-01")


@pytest.mark.parametrize(("period", "key", "ok"), [
    (P.ACTIVITY_PLAN_PERIOD_YEAR, "2026", True), (P.ACTIVITY_PLAN_PERIOD_YEAR, "2026-05", False),
    (P.ACTIVITY_PLAN_PERIOD_MONTH, "2026-13", False), (P.ACTIVITY_PLAN_PERIOD_WEEK, "2026-W53", True),
    (P.ACTIVITY_PLAN_PERIOD_WEEK, "2027-W53", False),  # 2027 has 52 ISO weeks
])
def test_period_keys(period, key, ok):
    v = Validator()
    rules.validate_period(v, period, key)
    assert v.ok() == ok and all(field == "period_key" for field, _ in v.violations)


def test_bad_entries_are_named_by_their_field():
    v = Validator()
    req = pb.CreateActivityPlanRequest(period=P.ACTIVITY_PLAN_PERIOD_MONTH, period_key="2026-05", title="五月安排",
                                       idempotency_key="k1",
                                       entries=[pb.ActivityPlanEntry(title="讲堂", when="2026-05-02", category=1),
                                                pb.ActivityPlanEntry(title="", when="2026-06-02", category=0)])
    rules.validate_create(v, req)
    assert sorted(field for field, _ in v.violations) == ["entries[1].category", "entries[1].title",
                                                          "entries[1].when"]


def test_courtyards_are_in_their_stations_plan():
    with pytest.raises(InvalidArgument, match="小院"):
        rules.require_planner(admin("unt_y1", (*STATION, "unt_y1")), DISTRICT, [*STATION, "unt_y1"], 4)


@pytest.mark.parametrize("status", ALL_STATUSES)
def test_an_entry_names_the_activity_it_became_in_any_status(status):
    current = plan(status)
    changes = rules.link_entry(current, STATION_ADMIN, "e1", "act_1")
    assert changes["entries"][0]["activity_id"] == "act_1"
    # the calendar's entry too, while it is the same revision; under revision, with the revision
    assert ("published_entries" in changes) == (status == S.ACTIVITY_PLAN_STATUS_PUBLISHED)
    assert rules.link_entry({**current, **changes}, STATION_ADMIN, "e1", "act_1") == {}
    with pytest.raises(InvalidArgument):
        rules.link_entry(current, STATION_ADMIN, "e9", "act_1")
    with pytest.raises(PermissionDenied):
        rules.link_entry(current, OTHER_STATION_ADMIN, "e1", "act_1")
