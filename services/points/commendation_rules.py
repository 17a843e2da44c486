"""表彰/嘉许: a volunteer's annual commendations (优秀志愿者 from 区文明办 …), as plain functions
tested in tests/unit/test_commendation_rules.py; storing and reading live in commendations.py.

What a commendation may say (`validate`), who may record or revoke one and how a revocation
changes it (`require_recorder`, `revoke`), whether a retry with an idempotency key is the same
request (`same_request`), and how it reads on a certificate (`certificate_lines`). Dates are
China dates; `today` comes from the caller's clock, never the wall clock.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, PermissionDenied
from services.common.validation import Validator
from wenming.points.v1 import points_pb2 as pb

L = pb.CommendationLevel
LEVEL_LABEL = {L.COMMENDATION_LEVEL_DISTRICT: "区县级", L.COMMENDATION_LEVEL_CITY: "市级",
               L.COMMENDATION_LEVEL_PROVINCE: "省级", L.COMMENDATION_LEVEL_NATIONAL: "国家级"}
FIRST_YEAR = 1949  # the People's Republic: nothing is commended before it
TITLE_CHARS = (2, 30)
ISSUER_CHARS = (2, 30)
REASON_CHARS = (2, 200)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class CommendationInput:
    """What a RecordCommendation asks for, validated. The fields a retry must repeat exactly."""

    volunteer_id: str
    year: int
    level: int
    title: str
    issuer: str
    awarded_on: str

    def stored(self) -> dict:
        return {"volunteer_id": self.volunteer_id, "year": self.year, "level": self.level, "title": self.title,
                "issuer": self.issuer, "awarded_on": self.awarded_on}


def validate(v: Validator, req: pb.RecordCommendationRequest, today: dt.date) -> tuple[CommendationInput, str]:
    """Every field of a RecordCommendation, each violation named by its field (reported with the
    others by `v.check()`): the input and the idempotency key."""
    volunteer_id = v.ident("volunteer_id", req.volunteer_id)
    year = v.int_range("year", req.year, FIRST_YEAR, today.year)
    level = v.enum("level", req.level, pb.CommendationLevel)
    title = v.text("title", req.title, min_len=TITLE_CHARS[0], max_len=TITLE_CHARS[1])
    issuer = v.text("issuer", req.issuer, min_len=ISSUER_CHARS[0], max_len=ISSUER_CHARS[1])
    awarded_on = awarded_date(v, "awarded_on", req.awarded_on, year, today)
    key = v.idempotency_key(req.idempotency_key)
    return CommendationInput(volunteer_id, year, level, title, issuer, awarded_on), key


def awarded_date(v: Validator, field: str, value: str, year: int, today: dt.date) -> str:
    """A YYYY-MM-DD date within `year` and not after `today`; "" when refused."""
    value = (value or "").strip()
    if not value:
        v.fail(field, "must not be empty")
        return ""
    if not _DATE.match(value):
        v.fail(field, "must be a date as YYYY-MM-DD")
        return ""
    try:
        day = dt.date.fromisoformat(value)
    except ValueError:
        v.fail(field, "is not a calendar date")
        return ""
    if not FIRST_YEAR <= year <= today.year:
        return value  # the year is refused on its own
    if day.year != year:
        v.fail(field, f"must fall within the year {year}")
    elif day > today:
        v.fail(field, "must not be in the future")
    return value


def validate_revocation(v: Validator, commendation_id: str, reason: str) -> tuple[str, str]:
    ident = v.ident("commendation_id", commendation_id)
    text = v.text("reason", reason, min_len=REASON_CHARS[0], max_len=REASON_CHARS[1])
    return ident, text


def require_recorder(principal: Principal, volunteer_paths: Iterable[Sequence[str]]) -> None:
    """Commendations are recorded by an admin whose unit's subtree holds the volunteer."""
    if principal.role != Role.ROLE_UNIT_ADMIN:
        raise PermissionDenied("表彰由志愿者所在单位（或其上级）的管理员登记")
    if not any(principal.manages(path) for path in volunteer_paths):
        raise PermissionDenied("该志愿者不在本单位及下级单位")


def same_request(stored: dict, asked: CommendationInput) -> bool:
    """A retry with a used idempotency key is the same request when it asks for the same record."""
    return all(stored.get(name) == value for name, value in asked.stored().items())


def revoke(commendation: dict, principal: Principal, reason: str, now: dt.datetime) -> dict:
    """The `$set` a revocation makes: only an admin of the recording unit or above revokes, and
    only once. The record stays."""
    if principal.role != Role.ROLE_UNIT_ADMIN:
        raise PermissionDenied("表彰由登记单位（或其上级）的管理员撤销")
    if not principal.manages(commendation["unit_path"]):
        raise PermissionDenied("该表彰不是本单位或下级单位登记的")
    if commendation.get("revoked"):
        raise FailedPrecondition("该表彰已撤销")
    return {"revoked": True, "revoke_reason": reason, "revoked_by": principal.subject, "revoked_at": now}


def newest_first(commendations: Iterable[dict]) -> list[dict]:
    """A volunteer's commendations as listed: the latest awarded first, then the latest recorded."""
    return sorted(commendations, key=sort_key, reverse=True)


def sort_key(commendation: dict) -> tuple[str, str]:
    return commendation["awarded_on"], commendation["_id"]


def certificate_lines(commendations: Iterable[dict]) -> list[dict]:
    """What a certificate shows of a volunteer's commendations: the ones not revoked, newest
    first, as year, level, title and issuer (nothing about the person)."""
    return [{"year": c["year"], "level": c["level"], "level_label": LEVEL_LABEL.get(c["level"], ""),
             "title": c["title"], "issuer": c["issuer"]}
            for c in newest_first(c for c in commendations if not c.get("revoked"))]
