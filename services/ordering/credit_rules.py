"""志愿者信用: a volunteer's no-shows (爽约) and complaints (投诉), their appeal (申诉) and the
standing they add up to, as plain functions tested in tests/unit/test_credit_rules.py; storing,
reading and the events that feed the automatic rules live in credit.py.

An incident is a dict as stored (credit.py). Its way:

    STANDING ──appeal (the volunteer, once, within APPEAL_WINDOW)──▶ APPEALED
    APPEALED ──decide upheld (an admin of its scope, not its recorder)──▶ VOIDED
    APPEALED ──decide rejected (same)──▶ CONFIRMED

A repeat of the appeal or decision made (same caller and reason, same outcome) changes nothing
and answers the incident as it is: the retry of a call whose answer was lost gets the first answer.

Who is in an incident's scope: the admins of any unit on the path of the unit where it happened
and on the paths of the units the volunteer served when it was recorded (`scope`, unit ids).
`now` always comes from the caller's clock, never the wall clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from services.common.auth import Principal, Role
from services.common.clock import as_utc
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.validation import Validator
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

K = types_pb2.CreditIncidentKind
S = types_pb2.CreditIncidentStatus
OUTCOME = pb.CreditAppealOutcome

# 1 or 2 stars is a resident saying the service failed them; 3 is "so-so", not a complaint
COMPLAINT_RATING = 2
# long enough to notice an incident on the app and write an appeal, short enough that an
# admin still remembers the order or activity when deciding it
APPEAL_WINDOW = dt.timedelta(days=30)
# 近90天: a season of service shows a habit, and one bad day fades from it
STANDING_WINDOW = dt.timedelta(days=90)
REASON_CHARS = (2, 200)
APPEAL_CHARS = (5, 300)
# what still counts against the volunteer: everything not voided on appeal
COUNTING = (S.CREDIT_INCIDENT_STATUS_STANDING, S.CREDIT_INCIDENT_STATUS_APPEALED, S.CREDIT_INCIDENT_STATUS_CONFIRMED)


@dataclass(frozen=True)
class Finding:
    """An incident a rule of the loop found: about whom, which kind, why (what the volunteer reads),
    and `source`, which with the volunteer makes it once however often the event is delivered."""

    volunteer_id: str
    kind: int
    reason: str
    source: str


# ---- what the loop records by itself ----

def too_old_to_record(occurred_at: dt.datetime, now: dt.datetime) -> bool:
    """The loop records nothing about an event older than APPEAL_WINDOW when it first sees it (a
    first deployment reading the topic's history, a consumer down for weeks): nobody could still
    remember enough of it to appeal, or to judge the appeal."""
    return now - as_utc(occurred_at) > APPEAL_WINDOW


def activity_no_shows(activity_id: str, title: str, volunteers_signed_up: Iterable[str],
                      attended: Collection[str], credited: Collection[str]) -> list[Finding]:
    """At completion: a volunteer who signed up to serve, never checked in, and was given no
    hours by the organizer (who enters them for those who served without checking in)."""
    return [Finding(vid, K.CREDIT_INCIDENT_KIND_NO_SHOW, f"报名参加活动「{title}」，活动结束时未签到", f"activity:{activity_id}")
            for vid in sorted(volunteers_signed_up) if vid not in attended and vid not in credited]


def order_no_shows(order_id: str, item_name: str, accepted: Iterable[str], credited: Collection[str]) -> list[Finding]:
    """At 时长审核: a volunteer who accepted (接单) the order but has no hours in it — never checked
    in, and the unit did not enter hours for them — left the others (or the resident) waiting."""
    return [Finding(vid, K.CREDIT_INCIDENT_KIND_NO_SHOW, f"已接单「{item_name}」，未到场服务", f"order:{order_id}:hours")
            for vid in sorted(set(accepted)) if vid not in credited]


def rating_complaints(order_id: str, item_name: str, rating: int, served: Iterable[str]) -> list[Finding]:
    """A resident's rating of COMPLAINT_RATING stars or less is a complaint about every volunteer
    credited with hours on the order (they served it together). Activities are rated for the
    activity as a whole, not for a volunteer, so their ratings make none."""
    if not 1 <= rating <= COMPLAINT_RATING:
        return []
    return [Finding(vid, K.CREDIT_INCIDENT_KIND_COMPLAINT, f"居民对「{item_name}」评价{rating}星", f"order:{order_id}:rating")
            for vid in sorted(set(served))]


# ---- what an admin records ----

@dataclass(frozen=True)
class IncidentInput:
    """What a RecordCreditIncident asks for, validated: the fields a retry must repeat exactly."""

    volunteer_id: str
    kind: int
    reason: str
    order_id: str
    activity_id: str

    def stored(self) -> dict:
        return {"volunteer_id": self.volunteer_id, "kind": self.kind, "reason": self.reason,
                "order_id": self.order_id, "activity_id": self.activity_id}


def validate_record(v: Validator, req: pb.RecordCreditIncidentRequest) -> tuple[IncidentInput, str]:
    volunteer_id = v.ident("volunteer_id", req.volunteer_id)
    kind = v.enum("kind", req.kind, K)
    reason = v.text("reason", req.reason, min_len=REASON_CHARS[0], max_len=REASON_CHARS[1])
    order_id = v.ident("order_id", req.order_id, required=False)
    activity_id = v.ident("activity_id", req.activity_id, required=False)
    if bool(order_id) == bool(activity_id):
        v.fail("order_id", "须指明一个点单或一个活动（二者选一）")
    key = v.idempotency_key(req.idempotency_key)
    return IncidentInput(volunteer_id, kind, reason, order_id, activity_id), key


def require_recorder(principal: Principal, place_path: Iterable[str], involved: Collection[str],
                     volunteer_id: str) -> None:
    """An admin of the unit where it happened (or above) records an incident about a volunteer
    who took part: accepted or was offered the order, signed up to serve at the activity."""
    if principal.role != Role.ROLE_UNIT_ADMIN:
        raise PermissionDenied("信用记录由发生单位（或其上级）的管理员登记")
    if not principal.manages(list(place_path)):
        raise PermissionDenied("该点单或活动不在本单位及下级单位")
    if volunteer_id not in involved:
        raise InvalidArgument.field("volunteer_id", "该志愿者没有参与这个点单或活动")


def same_request(stored: dict, asked: IncidentInput) -> bool:
    """A retry with a used idempotency key is the same request when it asks for the same record."""
    return all(stored.get(name) == value for name, value in asked.stored().items())


# ---- appeal and decision ----

def appeal_until(incident: dict) -> dt.datetime:
    return as_utc(incident["recorded_at"]) + APPEAL_WINDOW


def repeats_appeal(incident: dict, reason: str) -> bool:
    """The appeal asked is the one already made (a retry after a lost answer): same reason."""
    return incident["status"] != S.CREDIT_INCIDENT_STATUS_STANDING and incident.get("appeal_reason") == reason


def appeal(incident: dict, principal: Principal, now: dt.datetime, reason: str) -> dict:
    """The `$set` an appeal makes: the volunteer themself, once, within APPEAL_WINDOW. Nothing
    (`{}`) when it repeats the appeal made: the retry gets the incident as it is."""
    if principal.role != Role.ROLE_VOLUNTEER or principal.subject != incident["volunteer_id"]:
        raise PermissionDenied("只有志愿者本人可以申诉自己的信用记录")
    if repeats_appeal(incident, reason):
        return {}
    status = incident["status"]
    if status == S.CREDIT_INCIDENT_STATUS_APPEALED:
        raise FailedPrecondition("该记录已申诉，正在等待处理")
    if status != S.CREDIT_INCIDENT_STATUS_STANDING:
        raise FailedPrecondition("每条信用记录只能申诉一次，该申诉已处理")
    if now > appeal_until(incident):
        raise FailedPrecondition(f"已超过申诉期限（登记后{APPEAL_WINDOW.days}天内）")
    return {"status": S.CREDIT_INCIDENT_STATUS_APPEALED, "appeal_reason": reason, "appealed_at": now}


def validate_appeal(v: Validator, req: pb.AppealCreditIncidentRequest) -> tuple[str, str]:
    incident_id = v.ident("incident_id", req.incident_id)
    reason = v.text("reason", req.reason, min_len=APPEAL_CHARS[0], max_len=APPEAL_CHARS[1], multiline=True)
    return incident_id, reason


def validate_decision(v: Validator, req: pb.DecideCreditAppealRequest) -> tuple[str, int, str]:
    incident_id = v.ident("incident_id", req.incident_id)
    outcome = v.enum("outcome", req.outcome, OUTCOME)
    reason = v.text("reason", req.reason, min_len=REASON_CHARS[0], max_len=REASON_CHARS[1])
    return incident_id, outcome, reason


def require_in_scope(principal: Principal, incident: dict) -> None:
    if principal.role != Role.ROLE_UNIT_ADMIN or not principal.manages(incident["scope"]):
        raise PermissionDenied("该信用记录不属于本单位及下级单位")


def decided_status(outcome: int) -> int:
    return S.CREDIT_INCIDENT_STATUS_VOIDED if outcome == OUTCOME.CREDIT_APPEAL_OUTCOME_UPHELD \
        else S.CREDIT_INCIDENT_STATUS_CONFIRMED


def repeats_decision(incident: dict, principal: Principal, outcome: int, reason: str) -> bool:
    """The decision asked is the one already made (a retry after a lost answer): the same admin,
    outcome and reason."""
    return (incident["status"] == decided_status(outcome) and incident.get("decided_by") == principal.subject
            and incident.get("decision_reason") == reason)


def decide(incident: dict, principal: Principal, now: dt.datetime, outcome: int, reason: str) -> dict:
    """The `$set` a decision makes: an admin of the incident's scope who did not record it
    (nobody judges an appeal against their own record), while the appeal is pending. Nothing
    (`{}`) when it repeats the decision made: the retry gets the incident as it is."""
    require_in_scope(principal, incident)
    if incident.get("recorded_by") == principal.subject:
        raise PermissionDenied("登记该记录的管理员不能处理对它的申诉，请由同级或上级其他管理员处理")
    if repeats_decision(incident, principal, outcome, reason):
        return {}
    if incident["status"] != S.CREDIT_INCIDENT_STATUS_APPEALED:
        raise FailedPrecondition("该记录没有待处理的申诉")
    return {"status": decided_status(outcome), "decided_by": principal.subject, "decision_reason": reason,
            "decided_at": now}


# ---- standing ----

@dataclass(frozen=True)
class Standing:
    window_days: int
    no_shows: int
    complaints: int
    appeals_pending: int

    @property
    def summary(self) -> str:
        if not self.no_shows and not self.complaints:
            return f"近{self.window_days}天无有效爽约、投诉记录"
        pending = f"（其中{self.appeals_pending}条申诉中）" if self.appeals_pending else ""
        return f"近{self.window_days}天有效爽约{self.no_shows}次、投诉{self.complaints}次{pending}"


def standing(incidents: Iterable[Mapping], now: dt.datetime) -> Standing:
    """What counts against a volunteer now: the incidents not voided that occurred in the
    window, by kind; those under appeal count until decided, and are told apart."""
    since = now - STANDING_WINDOW
    counted = [i for i in incidents if i["status"] in COUNTING and since <= as_utc(i["occurred_at"]) <= now]
    return Standing(window_days=STANDING_WINDOW.days,
                    no_shows=sum(i["kind"] == K.CREDIT_INCIDENT_KIND_NO_SHOW for i in counted),
                    complaints=sum(i["kind"] == K.CREDIT_INCIDENT_KIND_COMPLAINT for i in counted),
                    appeals_pending=sum(i["status"] == S.CREDIT_INCIDENT_STATUS_APPEALED for i in counted))
