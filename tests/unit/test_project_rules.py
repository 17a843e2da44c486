"""The project's lifecycle in memory (services/ordering/project_rules.py): every move from every
status to every status — the legal ones land where the table says, every other one is refused
with FAILED_PRECONDITION — who may review (a unit above, never the proposer), one brand per
unit, progress, linked work, the outcome from the loop's records, and the competition."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.ordering import project_rules as rules
from services.ordering.models import Competition, Project
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import types_pb2

P = types_pb2.ProjectStatus
L = common_pb2.UnitLevel
ALL_STATUSES = [s for s in P.values() if s != P.PROJECT_STATUS_UNSPECIFIED]
NOW = dt.datetime(2026, 6, 15, 2, 0, tzinfo=dt.UTC)
DISTRICT = "dst_1"
CENTER, INSTITUTE, STATION, OTHER_STATION = ["unt_c"], ["unt_c", "unt_i"], ["unt_c", "unt_i", "unt_s"], \
    ["unt_c", "unt_i", "unt_t"]
LEVELS = {1: L.UNIT_LEVEL_CENTER, 2: L.UNIT_LEVEL_INSTITUTE, 3: L.UNIT_LEVEL_STATION, 4: L.UNIT_LEVEL_COURTYARD}


def admin_of(path: list[str], subject: str | None = None) -> Principal:
    return Principal(subject=subject or f"acc_{path[-1]}", district_id=DISTRICT, role=Role.ROLE_UNIT_ADMIN,
                     unit_id=path[-1], unit_level=LEVELS[len(path)], unit_path=tuple(path))


def unit(path: list[str]) -> dict:
    return {"unit_id": path[-1], "level": LEVELS[len(path)], "name": "", "path": path}


STATION_ADMIN, REVIEWER = admin_of(STATION), admin_of(INSTITUTE)
CENTER_ADMIN = admin_of(CENTER)


def project(status: int, path: list[str] = STATION, proposed_by: str = STATION_ADMIN.subject, **fields) -> Project:
    return Project.from_raw({"_id": "prj_1", "district_id": DISTRICT, "name": "银龄互助", "category": 1,
                             "unit": unit(path), "status": status, "proposed_by": proposed_by, "version": 2,
                             "reviews": [], "progress": [], "activity_ids": [], "order_ids": [], **fields})


def move(subject: Project, to: int, who: Principal = REVIEWER, holder: str | None = None, comment: str = "同意"):
    return rules.move(subject, who, NOW, to, comment, holder, unit(list(who.unit_path)))


TRANSITIONS = [pytest.param(a, b, id=f"{P.Name(a)[15:]}-to-{P.Name(b)[15:]}") for a in ALL_STATUSES
               for b in ALL_STATUSES]


@pytest.mark.parametrize(("status", "to"), TRANSITIONS)
def test_every_move_from_every_status(status: int, to: int):
    subject = project(status)
    if to not in rules.NEXT.get(status, ()):
        with pytest.raises(FailedPrecondition):
            move(subject, to)
        return
    made = move(subject, to)
    assert made.event is ev.ProjectMoved and made.fields == {"status": to}
    (review,) = made.appended["reviews"]
    assert (review["from_status"], review["to_status"], review["reviewer_id"]) == (status, to, REVIEWER.subject)


def test_the_lifecycle_reads_as_the_seeds_say():
    """申报 → 评审 → 立项 → 孵化 → 品牌 / 结项, 驳回 before 立项; 结项 and 驳回 are final."""
    assert rules.NEXT == {
        P.PROJECT_STATUS_DECLARED: (P.PROJECT_STATUS_UNDER_REVIEW, P.PROJECT_STATUS_REJECTED),
        P.PROJECT_STATUS_UNDER_REVIEW: (P.PROJECT_STATUS_APPROVED, P.PROJECT_STATUS_REJECTED),
        P.PROJECT_STATUS_APPROVED: (P.PROJECT_STATUS_INCUBATING, P.PROJECT_STATUS_CONCLUDED),
        P.PROJECT_STATUS_INCUBATING: (P.PROJECT_STATUS_BRANDED, P.PROJECT_STATUS_CONCLUDED),
        P.PROJECT_STATUS_BRANDED: (P.PROJECT_STATUS_CONCLUDED,)}


def test_reviewed_upward_and_never_by_the_proposer():
    declared = project(P.PROJECT_STATUS_DECLARED)
    for who in (STATION_ADMIN, admin_of(OTHER_STATION),  # the unit itself, a sibling
                Principal(subject="res_1", district_id=DISTRICT, role=Role.ROLE_RESIDENT, unit_id="unt_s",
                          unit_path=tuple(STATION))):
        with pytest.raises(PermissionDenied, match="上级"):
            move(declared, P.PROJECT_STATUS_UNDER_REVIEW, who)
    # the institute's admin proposed for the station: an admin above, and still refused
    own = project(P.PROJECT_STATUS_DECLARED, proposed_by=REVIEWER.subject)
    with pytest.raises(PermissionDenied, match="申报人不能评审"):
        move(own, P.PROJECT_STATUS_UNDER_REVIEW)
    # the center may review it instead; a reviewer of another district may not
    assert move(own, P.PROJECT_STATUS_UNDER_REVIEW, CENTER_ADMIN).fields["status"] == P.PROJECT_STATUS_UNDER_REVIEW
    stranger = Principal(subject="acc_x", district_id="dst_2", role=Role.ROLE_UNIT_ADMIN, unit_id="unt_c",
                         unit_path=("unt_c",))
    with pytest.raises(PermissionDenied):
        move(declared, P.PROJECT_STATUS_UNDER_REVIEW, stranger)


def test_a_refusal_needs_its_reason():
    with pytest.raises(InvalidArgument) as refused:
        move(project(P.PROJECT_STATUS_UNDER_REVIEW), P.PROJECT_STATUS_REJECTED, comment="")
    assert refused.value.violations[0][0] == "comment"


def test_one_brand_per_institute_or_station():
    incubating = project(P.PROJECT_STATUS_INCUBATING)
    with pytest.raises(FailedPrecondition, match="已有品牌项目"):
        move(incubating, P.PROJECT_STATUS_BRANDED, holder="prj_other")
    assert move(incubating, P.PROJECT_STATUS_BRANDED, holder="prj_1").fields["status"] == P.PROJECT_STATUS_BRANDED
    courtyard = project(P.PROJECT_STATUS_INCUBATING, path=STATION + ["unt_y"])
    with pytest.raises(FailedPrecondition, match="一所一品"):
        move(courtyard, P.PROJECT_STATUS_BRANDED, admin_of(STATION, "acc_other"))


@pytest.mark.parametrize("status", ALL_STATUSES, ids=lambda s: P.Name(s)[15:])
def test_progress_and_links_while_running(status: int):
    subject = project(status)
    activity = {"district_id": DISTRICT, "unit": {"path": STATION + ["unt_y"]}}
    if status not in rules.RUNNING:
        with pytest.raises(FailedPrecondition, match="立项后"):
            rules.report_progress(subject, STATION_ADMIN, NOW, "2026-06", "完成两次入户")
        with pytest.raises(FailedPrecondition, match="立项后"):
            rules.link_work(subject, STATION_ADMIN, {"act_1": activity}, {})
        return
    reported = rules.report_progress(subject, STATION_ADMIN, NOW, "2026-06", "完成两次入户")
    assert reported.event is ev.ProjectProgressReported and reported.appended["progress"][0]["period"] == "2026-06"
    linked = rules.link_work(subject, STATION_ADMIN, {"act_1": activity}, {})
    assert linked.appended == {"activity_ids": ["act_1"], "order_ids": []}


def test_progress_once_a_month_and_not_ahead():
    reported = project(P.PROJECT_STATUS_APPROVED, progress=[{"period": "2026-05", "summary": "x",
                                                              "reported_by": "acc_s", "reported_at": NOW}])
    with pytest.raises(FailedPrecondition, match="已经报告过"):
        rules.report_progress(reported, STATION_ADMIN, NOW, "2026-05", "再报一次")
    with pytest.raises(InvalidArgument, match="period"):
        rules.report_progress(reported, STATION_ADMIN, NOW, "2026-07", "下月")
    with pytest.raises(PermissionDenied):
        rules.report_progress(reported, admin_of(OTHER_STATION), NOW, "2026-06", "别的站")


def test_links_come_from_the_projects_subtree_and_repeat_nothing():
    running = project(P.PROJECT_STATUS_APPROVED, activity_ids=["act_1"])
    elsewhere = {"district_id": DISTRICT, "origin": {"path": OTHER_STATION + ["unt_z"]}}
    with pytest.raises(InvalidArgument) as refused:
        rules.link_work(running, STATION_ADMIN, {}, {"ord_1": None, "ord_2": elsewhere})
    assert refused.value.violations[0][0] == "order_ids[0]"
    mine = {"district_id": DISTRICT, "unit": {"path": STATION}}
    assert rules.link_work(running, STATION_ADMIN, {"act_1": mine}, {}) is None
    with pytest.raises(PermissionDenied):
        rules.link_work(running, admin_of(OTHER_STATION), {"act_1": mine}, {})


def test_the_outcome_counts_only_what_the_loop_recorded():
    attended = {"role": types_pb2.PARTICIPANT_ROLE_RESIDENT, "attended_at": NOW}
    activities = [
        {"status": types_pb2.ACTIVITY_STATUS_COMPLETED, "participants": {
            "res_1": attended, "res_2": attended, "res_3": {"role": types_pb2.PARTICIPANT_ROLE_RESIDENT},
            "vol_1": {"role": types_pb2.PARTICIPANT_ROLE_VOLUNTEER, "attended_at": NOW}},
         "hours": [{"volunteer_id": "vol_1", "minutes": 90}]},
        # published, not completed: nothing counts yet
        {"status": types_pb2.ACTIVITY_STATUS_PUBLISHED, "participants": {"res_9": attended}, "hours": []}]
    orders = [{"status": types_pb2.ORDER_STATUS_CLOSED, "resident_id": "res_1",
               "hours": [{"volunteer_id": "vol_2", "minutes": 45}]},
              {"status": types_pb2.ORDER_STATUS_RATED, "resident_id": "res_4",
               "hours": [{"volunteer_id": "vol_1", "minutes": 30}]},
              {"status": types_pb2.ORDER_STATUS_IN_SERVICE, "resident_id": "res_5", "hours": []}]
    assert rules.outcome(activities, orders) == rules.Outcome(
        people_served=3, volunteer_minutes=165, volunteers=2, activities_completed=1, orders_served=2)


# ---- the competition ----

def competition(scores: dict | None = None, status: int = types_pb2.COMPETITION_STATUS_OPEN) -> Competition:
    entries = [{"project_id": f"prj_{n}", "project_name": f"项目{n}", "unit": unit(STATION),
                "proposed_by": "acc_s" if n == 1 else "acc_t"} for n in (1, 2, 3)]
    return Competition.from_raw({"_id": "cmp_1", "district_id": DISTRICT, "name": "项目大赛", "unit": unit(INSTITUTE),
                                 "status": status, "entries": entries, "scores": scores or {}, "version": 1})


def scored(reviewer: str, project_id: str, points: int) -> tuple[str, dict]:
    return rules.score_key(reviewer, project_id), {"project_id": project_id, "reviewer_id": reviewer, "score": points}


def test_a_reviewer_scores_each_entry_once_and_never_their_own():
    made = rules.score(competition(), REVIEWER, "prj_2", 88, "")
    assert made.fields == {"scores.acc_unt_i:prj_2": {"project_id": "prj_2", "reviewer_id": "acc_unt_i",
                                                      "score": 88, "comment": ""}}
    with pytest.raises(FailedPrecondition, match="打过分"):
        rules.score(competition(dict([scored("acc_unt_i", "prj_2", 88)])), REVIEWER, "prj_2", 90, "")
    with pytest.raises(PermissionDenied, match="申报人"):
        rules.score(competition(), admin_of(INSTITUTE, "acc_s"), "prj_1", 99, "")
    with pytest.raises(PermissionDenied):
        rules.score(competition(), STATION_ADMIN, "prj_2", 80, "")  # below the organizing unit
    with pytest.raises(InvalidArgument, match="project_id"):
        rules.score(competition(), REVIEWER, "prj_9", 80, "")
    with pytest.raises(FailedPrecondition, match="已结束"):
        rules.score(competition(status=types_pb2.COMPETITION_STATUS_CLOSED), REVIEWER, "prj_2", 80, "")


def test_the_ranking_by_average_with_shared_ranks():
    scores = dict([scored("acc_a", "prj_1", 80), scored("acc_b", "prj_1", 90), scored("acc_a", "prj_2", 85),
                   scored("acc_b", "prj_2", 85)])
    ranked = rules.ranking(competition(scores))
    assert [(r.project_id, r.scores, r.average, r.rank) for r in ranked] == [
        ("prj_1", 2, 85.0, 1), ("prj_2", 2, 85.0, 1), ("prj_3", 0, 0.0, 3)]
    closed = rules.close(competition(scores), REVIEWER)
    assert closed.event_fields["ranking"] == ["prj_1", "prj_2", "prj_3"]
    with pytest.raises(FailedPrecondition):
        rules.close(competition(status=types_pb2.COMPETITION_STATUS_CLOSED), REVIEWER)


def test_entries_are_established_projects_of_the_subtree():
    def entry(status: int, path: list[str] = STATION) -> dict:
        return {"_id": "prj_1", "district_id": DISTRICT, "name": "银龄互助", "unit": unit(path), "status": status}

    rules.enter(REVIEWER, DISTRICT, INSTITUTE, [entry(s) for s in rules.ESTABLISHED])
    for status in set(ALL_STATUSES) - set(rules.ESTABLISHED):
        with pytest.raises(InvalidArgument, match="尚未立项"):
            rules.enter(REVIEWER, DISTRICT, INSTITUTE, [entry(P.PROJECT_STATUS_APPROVED), entry(status)])
    with pytest.raises(InvalidArgument, match=r"project_ids\[0\]"):
        rules.enter(admin_of(OTHER_STATION), DISTRICT, OTHER_STATION, [entry(P.PROJECT_STATUS_APPROVED)])
    with pytest.raises(PermissionDenied):
        rules.enter(admin_of(OTHER_STATION), DISTRICT, STATION, [entry(P.PROJECT_STATUS_APPROVED)])
