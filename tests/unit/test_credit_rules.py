"""志愿者信用 in memory: the incident/appeal state machine (every status × every move × every
caller, table-driven), what the loop records by itself, what a manual record must say, and the
standing over the window."""

from __future__ import annotations

import datetime as dt

import pytest

from services.common.auth import Principal, Role
from services.common.errors import DomainError, FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.validation import Validator
from services.ordering import credit_rules as rules
from wenming.ordering.v1 import ordering_pb2 as pb

K = rules.K
S = rules.S
OUT = rules.OUTCOME
NOW = dt.datetime(2026, 12, 7, 8, 0, tzinfo=dt.UTC)
DISTRICT = "dst_1"
# the incident happened at courtyard y1 of station s1; the volunteer serves at courtyard y2 of station s2
PLACE = ["unt_c", "unt_i", "unt_s1", "unt_y1"]
SCOPE = sorted({*PLACE, "unt_s2", "unt_y2"})


def admin(unit_id: str, subject: str = "") -> Principal:
    return Principal(subject=subject or f"adm_{unit_id}", district_id=DISTRICT, role=Role.ROLE_UNIT_ADMIN,
                     unit_id=unit_id, unit_path=("unt_c", unit_id))


VOLUNTEER = Principal(subject="vol_1", district_id=DISTRICT, role=Role.ROLE_VOLUNTEER)
OTHER_VOLUNTEER = Principal(subject="vol_2", district_id=DISTRICT, role=Role.ROLE_VOLUNTEER)
RESIDENT = Principal(subject="res_1", district_id=DISTRICT, role=Role.ROLE_RESIDENT)
RECORDER = admin("unt_y1", "adm_recorder")
CALLERS = {
    "the volunteer": VOLUNTEER, "another volunteer": OTHER_VOLUNTEER, "a resident": RESIDENT,
    "the recorder": RECORDER, "the place's station admin": admin("unt_s1"),
    "the volunteer's courtyard admin": admin("unt_y2"), "the center admin": admin("unt_c"),
    "an admin elsewhere": admin("unt_s3"),
}


def incident(status: int = S.CREDIT_INCIDENT_STATUS_STANDING, *, recorded_by: str = "adm_recorder",
             recorded_at: dt.datetime = NOW - dt.timedelta(days=1), **fields) -> dict:
    return {"_id": "cri_1", "district_id": DISTRICT, "volunteer_id": "vol_1", "kind": K.CREDIT_INCIDENT_KIND_NO_SHOW,
            "status": status, "reason": "未到场", "automatic": not recorded_by, "order_id": "ord_1", "activity_id": "",
            "unit": {"unit_id": "unt_y1", "level": 4, "name": "一号小院", "path": PLACE}, "scope": SCOPE,
            "recorded_by": recorded_by, "occurred_at": recorded_at, "recorded_at": recorded_at, "version": 1,
            **fields}


def move(name: str, current: dict, caller: Principal) -> dict:
    if name == "appeal":
        return rules.appeal(current, caller, NOW, "那天我在医院，有病历为证")
    outcome = OUT.CREDIT_APPEAL_OUTCOME_UPHELD if name == "uphold" else OUT.CREDIT_APPEAL_OUTCOME_REJECTED
    return rules.decide(current, caller, NOW, outcome, "核实情况属实")


ALL_STATUSES = (S.CREDIT_INCIDENT_STATUS_STANDING, S.CREDIT_INCIDENT_STATUS_APPEALED, S.CREDIT_INCIDENT_STATUS_VOIDED,
                S.CREDIT_INCIDENT_STATUS_CONFIRMED)
# (status, move, caller) -> the status after it, or the error refusing it; every cell not listed
# here is in DEFAULT below
ALLOWED = {
    (S.CREDIT_INCIDENT_STATUS_STANDING, "appeal", "the volunteer"): S.CREDIT_INCIDENT_STATUS_APPEALED,
    **{(S.CREDIT_INCIDENT_STATUS_APPEALED, "uphold", who): S.CREDIT_INCIDENT_STATUS_VOIDED
       for who in ("the place's station admin", "the volunteer's courtyard admin", "the center admin")},
    **{(S.CREDIT_INCIDENT_STATUS_APPEALED, "reject", who): S.CREDIT_INCIDENT_STATUS_CONFIRMED
       for who in ("the place's station admin", "the volunteer's courtyard admin", "the center admin")},
}


def expected(status: int, name: str, who: str):
    if (status, name, who) in ALLOWED:
        return ALLOWED[(status, name, who)]
    if name == "appeal":  # only the volunteer appeals; for them, only once
        return FailedPrecondition if who == "the volunteer" else PermissionDenied
    # a decision: only admins in the incident's scope who did not record it, while appealed
    in_scope = who in ("the place's station admin", "the volunteer's courtyard admin", "the center admin")
    return FailedPrecondition if in_scope else PermissionDenied


@pytest.mark.parametrize("status", ALL_STATUSES, ids=lambda s: S.Name(s))
@pytest.mark.parametrize("name", ["appeal", "uphold", "reject"])
@pytest.mark.parametrize("who", list(CALLERS))
def test_every_status_every_move_every_caller(status, name, who):
    want = expected(status, name, who)
    if isinstance(want, type) and issubclass(want, DomainError):
        with pytest.raises(want):
            move(name, incident(status), CALLERS[who])
    else:
        changes = move(name, incident(status), CALLERS[who])
        assert changes["status"] == want


def test_an_appeal_records_its_reason_and_time():
    changes = rules.appeal(incident(), VOLUNTEER, NOW, "那天我在医院")
    assert changes == {"status": S.CREDIT_INCIDENT_STATUS_APPEALED, "appeal_reason": "那天我在医院", "appealed_at": NOW}


def test_a_decision_records_who_why_and_when():
    changes = rules.decide(incident(S.CREDIT_INCIDENT_STATUS_APPEALED), admin("unt_s1"), NOW,
                           OUT.CREDIT_APPEAL_OUTCOME_REJECTED, "居民与站长均确认未到场")
    assert changes == {"status": S.CREDIT_INCIDENT_STATUS_CONFIRMED, "decided_by": "adm_unt_s1",
                       "decision_reason": "居民与站长均确认未到场", "decided_at": NOW}


def test_the_appeal_window_closes_after_30_days():
    rules.appeal(incident(recorded_at=NOW - rules.APPEAL_WINDOW), VOLUNTEER, NOW, "理由充分的申诉")
    with pytest.raises(FailedPrecondition, match="申诉期限"):
        rules.appeal(incident(recorded_at=NOW - rules.APPEAL_WINDOW - dt.timedelta(seconds=1)), VOLUNTEER, NOW,
                     "理由充分的申诉")


def test_an_automatic_incident_may_be_decided_by_any_admin_of_its_scope():
    changes = rules.decide(incident(S.CREDIT_INCIDENT_STATUS_APPEALED, recorded_by=""), admin("unt_y1"), NOW,
                           OUT.CREDIT_APPEAL_OUTCOME_UPHELD, "系统误判")
    assert changes["status"] == S.CREDIT_INCIDENT_STATUS_VOIDED


# ---- a retry after a lost answer ----

APPEAL = "那天我在医院，有病历为证"
DECISION = "核实情况属实"
APPEALED = dict(appeal_reason=APPEAL, appealed_at=NOW)
DECIDER = admin("unt_s1")


def decided(status: int, by: str = "adm_unt_s1", reason: str = DECISION) -> dict:
    return incident(status, **APPEALED, decided_by=by, decision_reason=reason, decided_at=NOW)


# (the incident, the appeal's reason) -> {} (the repeat: answered as it is) or the refusal
@pytest.mark.parametrize(("current", "reason", "want"), [
    (incident(S.CREDIT_INCIDENT_STATUS_APPEALED, **APPEALED), APPEAL, {}),
    (decided(S.CREDIT_INCIDENT_STATUS_CONFIRMED), APPEAL, {}),
    (incident(S.CREDIT_INCIDENT_STATUS_APPEALED, **APPEALED), "另一个申诉理由", FailedPrecondition),
    (decided(S.CREDIT_INCIDENT_STATUS_VOIDED), "另一个申诉理由", FailedPrecondition),
], ids=["appealed, same reason", "decided, same reason", "appealed, other reason", "decided, other reason"])
def test_a_repeated_appeal_gets_the_first_answer_and_another_is_refused(current, reason, want):
    if want == {}:
        assert rules.appeal(current, VOLUNTEER, NOW, reason) == {}
    else:
        with pytest.raises(want):
            rules.appeal(current, VOLUNTEER, NOW, reason)


def test_a_repeated_appeal_by_someone_else_is_still_refused_as_theirs():
    with pytest.raises(PermissionDenied):
        rules.appeal(incident(S.CREDIT_INCIDENT_STATUS_APPEALED, **APPEALED), OTHER_VOLUNTEER, NOW, APPEAL)


# (the incident, who decides, outcome, reason) -> {} (the repeat) or the refusal
@pytest.mark.parametrize(("current", "who", "outcome", "reason", "want"), [
    (decided(S.CREDIT_INCIDENT_STATUS_VOIDED), DECIDER, OUT.CREDIT_APPEAL_OUTCOME_UPHELD, DECISION, {}),
    (decided(S.CREDIT_INCIDENT_STATUS_CONFIRMED), DECIDER, OUT.CREDIT_APPEAL_OUTCOME_REJECTED, DECISION, {}),
    (decided(S.CREDIT_INCIDENT_STATUS_VOIDED), DECIDER, OUT.CREDIT_APPEAL_OUTCOME_REJECTED, DECISION,
     FailedPrecondition),
    (decided(S.CREDIT_INCIDENT_STATUS_VOIDED), DECIDER, OUT.CREDIT_APPEAL_OUTCOME_UPHELD, "另一个理由",
     FailedPrecondition),
    (decided(S.CREDIT_INCIDENT_STATUS_VOIDED), admin("unt_c"), OUT.CREDIT_APPEAL_OUTCOME_UPHELD, DECISION,
     FailedPrecondition),
    (decided(S.CREDIT_INCIDENT_STATUS_VOIDED), admin("unt_s3"), OUT.CREDIT_APPEAL_OUTCOME_UPHELD, DECISION,
     PermissionDenied),
], ids=["upheld again", "rejected again", "other outcome", "other reason", "other admin", "admin elsewhere"])
def test_a_repeated_decision_gets_the_first_answer_and_another_is_refused(current, who, outcome, reason, want):
    if want == {}:
        assert rules.decide(current, who, NOW, outcome, reason) == {}
    else:
        with pytest.raises(want):
            rules.decide(current, who, NOW, outcome, reason)


# ---- what the loop records by itself ----

def test_the_loop_records_nothing_about_an_event_older_than_the_appeal_window():
    assert not rules.too_old_to_record(NOW - rules.APPEAL_WINDOW, NOW)
    assert rules.too_old_to_record(NOW - rules.APPEAL_WINDOW - dt.timedelta(seconds=1), NOW)


def test_activity_no_shows_are_those_signed_up_neither_checked_in_nor_given_hours():
    found = rules.activity_no_shows("act_1", "小院讲堂", ["vol_a", "vol_b", "vol_c"], attended={"vol_a"},
                                    credited={"vol_a", "vol_b"})
    assert [(f.volunteer_id, f.kind, f.source) for f in found] == [("vol_c", K.CREDIT_INCIDENT_KIND_NO_SHOW,
                                                                    "activity:act_1")]
    assert "小院讲堂" in found[0].reason


def test_order_no_shows_are_those_who_accepted_and_have_no_hours():
    found = rules.order_no_shows("ord_1", "助老理发", ["vol_a", "vol_b"], credited={"vol_a"})
    assert [(f.volunteer_id, f.source) for f in found] == [("vol_b", "order:ord_1:hours")]
    assert rules.order_no_shows("ord_1", "助老理发", ["vol_a"], credited={"vol_a"}) == []


@pytest.mark.parametrize(("rating", "complaints"), [(1, 2), (2, 2), (3, 0), (4, 0), (5, 0), (0, 0)])
def test_a_rating_of_two_stars_or_less_is_a_complaint_about_everyone_who_served(rating, complaints):
    found = rules.rating_complaints("ord_1", "助老理发", rating, ["vol_b", "vol_a", "vol_a"])
    assert len(found) == complaints
    assert all(f.kind == K.CREDIT_INCIDENT_KIND_COMPLAINT and f.source == "order:ord_1:rating" for f in found)


# ---- what an admin records ----

GOOD = dict(volunteer_id="vol_1", kind=K.CREDIT_INCIDENT_KIND_COMPLAINT, reason="居民电话投诉服务态度差",
            order_id="ord_1", idempotency_key="cr-1")


@pytest.mark.parametrize(("changes", "field"), [
    (dict(volunteer_id=""), "volunteer_id"),
    (dict(volunteer_id="not an id!"), "volunteer_id"),
    (dict(kind=K.CREDIT_INCIDENT_KIND_UNSPECIFIED), "kind"),
    (dict(kind=9), "kind"),
    (dict(reason=""), "reason"),
    (dict(reason="差"), "reason"),
    (dict(reason="差" * 201), "reason"),
    (dict(order_id=""), "order_id"),                      # neither
    (dict(activity_id="act_1"), "order_id"),              # both
    (dict(order_id="bad id"), "order_id"),
    (dict(idempotency_key=""), "idempotency_key"),
])
def test_a_manual_record_names_every_bad_field(changes, field):
    v = Validator()
    rules.validate_record(v, pb.RecordCreditIncidentRequest(**{**GOOD, **changes}))
    assert field in [name for name, _ in v.violations]


def test_a_retry_is_the_same_request_only_when_it_asks_the_same():
    v = Validator()
    asked, key = rules.validate_record(v, pb.RecordCreditIncidentRequest(**GOOD))
    assert v.ok() and key == "cr-1"
    stored = {**asked.stored(), "_id": "cri_1"}
    assert rules.same_request(stored, asked)
    assert not rules.same_request({**stored, "reason": "另一件事"}, asked)


def test_only_an_admin_of_the_place_records_and_only_about_a_volunteer_who_took_part():
    rules.require_recorder(admin("unt_s1"), PLACE, {"vol_1"}, "vol_1")
    with pytest.raises(PermissionDenied):
        rules.require_recorder(admin("unt_s2"), PLACE, {"vol_1"}, "vol_1")
    with pytest.raises(PermissionDenied):
        rules.require_recorder(VOLUNTEER, PLACE, {"vol_1"}, "vol_1")
    with pytest.raises(InvalidArgument):
        rules.require_recorder(admin("unt_s1"), PLACE, {"vol_9"}, "vol_1")


# ---- standing ----

def test_the_standing_counts_what_is_not_voided_within_90_days():
    def at(days: int, kind=K.CREDIT_INCIDENT_KIND_NO_SHOW, status=S.CREDIT_INCIDENT_STATUS_STANDING) -> dict:
        return {"kind": kind, "status": status, "occurred_at": NOW - dt.timedelta(days=days)}

    found = rules.standing([
        at(1), at(89, status=S.CREDIT_INCIDENT_STATUS_CONFIRMED), at(10, status=S.CREDIT_INCIDENT_STATUS_APPEALED),
        at(5, status=S.CREDIT_INCIDENT_STATUS_VOIDED), at(91),
        at(3, kind=K.CREDIT_INCIDENT_KIND_COMPLAINT),
    ], NOW)
    assert (found.no_shows, found.complaints, found.appeals_pending) == (3, 1, 1)
    assert found.summary == "近90天有效爽约3次、投诉1次（其中1条申诉中）"
    assert rules.standing([at(5, status=S.CREDIT_INCIDENT_STATUS_VOIDED)], NOW).summary == "近90天无有效爽约、投诉记录"
