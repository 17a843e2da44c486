"""Households (户) and their yearly stars (十星文明户): the rules, as plain functions.

A household groups residents already registered (a resident belongs to at most one household)
under a courtyard or a station. Each year the unit's admins decide, star by star, whether the
household earned each of the district's stars; the count of stars earned is the household's
rating for that year, and a household earning every star is a 十星文明户. Nothing here reads the
database, the clock or the broker: households.py loads, calls these and writes.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from services.common.auth import Principal, Role
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.validation import Validator
from wenming.common.v1 import common_pb2

# the ten stars most districts rate (十星级文明户); a district may set its own list
DEFAULT_STARS = (
    "爱国守法星", "诚信友善星", "勤劳致富星", "孝老爱亲星", "移风易俗星",
    "清洁卫生星", "学习进取星", "邻里互助星", "热心公益星", "平安和谐星",
)
MAX_STARS = 20
STAR_NAME_LENGTH = (2, 12)
FIRST_YEAR = 2015           # ratings before the 新时代文明实践 pilots are not recorded
MAX_MEMBERS = 20
MAX_NOTE = 100
HOUSEHOLD_LEVELS = (common_pb2.UNIT_LEVEL_COURTYARD, common_pb2.UNIT_LEVEL_STATION)


@dataclass(frozen=True)
class NewHousehold:
    unit_id: str
    name: str
    address: str
    idempotency_key: str


@dataclass(frozen=True)
class Decision:
    star: str
    awarded: bool
    note: str


@dataclass(frozen=True)
class Rating:
    """A household's year against the district's stars, in the district's order."""

    year: int
    stars: list[dict]      # {"star", "awarded", "note", "decided_by", "decided_by_name", "decided_at"}
    awarded: int
    total: int

    @property
    def all_stars(self) -> bool:
        return self.total > 0 and self.awarded == self.total


# ---- input ----

def validate_new(v: Validator, unit_id: str, name: str, address: str, idempotency_key: str) -> NewHousehold:
    return NewHousehold(unit_id=v.ident("unit_id", unit_id), name=v.text("name", name, max_len=30),
                        address=v.text("address", address, max_len=120, required=False),
                        idempotency_key=v.idempotency_key(idempotency_key))


def validate_star_list(v: Validator, names: Sequence[str], field: str = "stars") -> list[str]:
    """A district's stars: 1..MAX_STARS distinct names of 2..12 characters, in the order shown."""
    if not 1 <= len(names) <= MAX_STARS:
        v.fail(field, f"must list 1 to {MAX_STARS} stars (got {len(names)})")
        return []
    low, high = STAR_NAME_LENGTH
    stars = [v.text(f"{field}[{i}]", name, max_len=high, min_len=low) for i, name in enumerate(names)]
    seen: set[str] = set()
    for i, star in enumerate(stars):
        if star in seen:
            v.fail(f"{field}[{i}]", "is listed twice")
        seen.add(star)
    return stars


def validate_year(v: Validator, year: int, this_year: int, *, required: bool, field: str = "year") -> int:
    """A rating year from FIRST_YEAR to this year (China time); 0 means this year where optional."""
    if year == 0 and not required:
        return this_year
    if not FIRST_YEAR <= year <= this_year:
        v.fail(field, f"must be a year from {FIRST_YEAR} to {this_year} (got {year})")
    return year


def validate_decisions(v: Validator, decisions: Sequence, stars: Sequence[str]) -> list[Decision]:
    """At least one decision, at most one per star, each naming one of the district's stars."""
    if not 1 <= len(decisions) <= len(stars):
        v.fail("decisions", f"must decide 1 to {len(stars)} stars (got {len(decisions)})")
        return []
    known = set(stars)
    out: list[Decision] = []
    seen: set[str] = set()
    for i, decision in enumerate(decisions):
        star = (decision.star or "").strip()
        if star not in known:
            v.fail(f"decisions[{i}].star", "is not one of the district's stars")
        elif star in seen:
            v.fail(f"decisions[{i}].star", "is decided twice")
        seen.add(star)
        note = v.text(f"decisions[{i}].note", decision.note, max_len=MAX_NOTE, required=False)
        out.append(Decision(star=star, awarded=bool(decision.awarded), note=note))
    return out


# ---- who may do what ----

def require_household_unit(level: int) -> None:
    """Households live at a courtyard (小院) or a station (实践站): where residents are known."""
    if level not in HOUSEHOLD_LEVELS:
        raise InvalidArgument.field("unit_id", "households belong to a courtyard (小院) or a station (实践站)")


def require_keeper(principal: Principal, unit_path: Sequence[str]) -> None:
    """Creating, filling and rating a household: admins of its unit or above, nobody else."""
    if principal.role != Role.ROLE_UNIT_ADMIN:
        raise PermissionDenied("家庭户由所在小院或上级单位的管理员维护")
    if not principal.manages(unit_path):
        raise PermissionDenied("这个家庭户不在您的单位范围内")


def require_reader(principal: Principal, unit_path: Sequence[str], household_id: str,
                   callers_household_id: str) -> None:
    """Admins of the household's unit or above; a resident, only their own household."""
    if principal.role == Role.ROLE_RESIDENT:
        if household_id and household_id == callers_household_id:
            return
        raise PermissionDenied("居民只能查看自己所在的家庭户")
    require_keeper(principal, unit_path)


def check_new_member(household_id: str, household_unit_id: str, resident_courtyard_path: Sequence[str],
                     residents_household_id: str, members: int) -> bool:
    """Whether adding the resident changes anything (False: already a member). Refuses a
    resident of another household, one living outside the household's unit, and a full household."""
    if residents_household_id == household_id:
        return False
    if residents_household_id:
        raise FailedPrecondition("该居民已是另一户的成员，一位居民只能属于一户；请先从原户移出")
    if household_unit_id not in resident_courtyard_path:
        raise FailedPrecondition("该居民不住在这个家庭户所在的小院或站点范围内")
    if members >= MAX_MEMBERS:
        raise FailedPrecondition(f"一户最多 {MAX_MEMBERS} 位成员")
    return True


# ---- ratings ----

def year_stars(ratings: Sequence[dict], year: int) -> list[dict]:
    return next((list(r["stars"]) for r in ratings if r["year"] == year), [])


def rate(ratings: Sequence[dict], year: int, decisions: Sequence[Decision], actor_id: str, actor_name: str,
         now: dt.datetime) -> tuple[list[dict], list[dict]]:
    """The ratings after `decisions` for `year`, and the stars they changed. A star decided as it
    already stands keeps its recorder and time, so a repeat changes nothing."""
    current = {s["star"]: s for s in year_stars(ratings, year)}
    changed = []
    for decision in decisions:
        before = current.get(decision.star)
        if before is not None and before["awarded"] == decision.awarded and before["note"] == decision.note:
            continue
        current[decision.star] = {"star": decision.star, "awarded": decision.awarded, "note": decision.note,
                                  "decided_by": actor_id, "decided_by_name": actor_name, "decided_at": now}
        changed.append(current[decision.star])
    if not changed:
        return list(ratings), []
    others = [r for r in ratings if r["year"] != year]
    after = sorted([*others, {"year": year, "stars": list(current.values())}], key=lambda r: r["year"])
    return after, changed


def rating_of(ratings: Sequence[dict], year: int, stars: Sequence[str]) -> Rating:
    """The year's rating against the district's stars as they are now: a star no longer in the
    district's list does not count, a star not yet decided is not awarded."""
    decided = {s["star"]: s for s in year_stars(ratings, year)}
    shown = [decided.get(star) or {"star": star, "awarded": False, "note": "", "decided_by": "",
                                   "decided_by_name": "", "decided_at": None} for star in stars]
    return Rating(year=year, stars=shown, awarded=sum(1 for s in shown if s["awarded"]), total=len(stars))
