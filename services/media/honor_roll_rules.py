"""善行义举榜 (good-deeds honour roll) as plain functions, tested in tests/unit/test_honor_roll_rules.py;
storing and the review workflow live in honor_rolls.py and articles.py.

What a roll may say (`validate`), who compiles one (`require_compiler`), which people an entry
may name and how they are shown (`resolve_entries`: volunteers of the roll's unit subtree and
residents, both masked; a commendation only of that volunteer and not revoked), the article body
the entries make (`body_of`, which submit screens like any article's text) and whether a retry
with an idempotency key is the same request (`request_digest`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

from services.common.auth import Principal
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.pii import mask_name
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.media.v1 import media_pb2 as pb

PERIOD_CHARS = (2, 30)
DEED_CHARS = (5, 200)
NAME_CHARS = (1, 20)
MAX_TITLE, MAX_SUMMARY = 100, 300
MAX_ENTRIES = 50
COMPILING_LEVELS = (common_pb2.UNIT_LEVEL_CENTER, common_pb2.UNIT_LEVEL_INSTITUTE, common_pb2.UNIT_LEVEL_STATION)
COMMENDATION_LEVEL_LABEL = {1: "区县级", 2: "市级", 3: "省级", 4: "国家级"}  # points' CommendationLevel


@dataclass(frozen=True)
class EntryInput:
    volunteer_id: str
    shown_name: str  # residents: masked at once, the name typed is never kept
    deed: str
    commendation_id: str


@dataclass(frozen=True)
class RollInput:
    period: str
    title: str
    summary: str
    entries: tuple[EntryInput, ...]


def validate(v: Validator, period: str, title: str, summary: str,
             entries: Sequence[pb.HonorRollEntry]) -> RollInput:
    """Every field of a roll, each violation named by its field (reported by `v.check()`)."""
    period = v.text("period", period, min_len=PERIOD_CHARS[0], max_len=PERIOD_CHARS[1])
    title = v.text("title", title, max_len=MAX_TITLE, required=False)
    summary = v.text("summary", summary, max_len=MAX_SUMMARY, required=False)
    if not 1 <= len(entries) <= MAX_ENTRIES:
        v.fail("entries", f"must list 1 to {MAX_ENTRIES} people (got {len(entries)})")
    asked = []
    seen_volunteers: set[str] = set()
    for i, entry in enumerate(entries[:MAX_ENTRIES]):
        field = f"entries[{i}]"
        volunteer_id = v.ident(f"{field}.volunteer_id", entry.volunteer_id, required=False)
        name = v.text(f"{field}.resident_name", entry.resident_name, min_len=NAME_CHARS[0], max_len=NAME_CHARS[1],
                      required=False)
        if bool(volunteer_id) == bool(name):
            v.fail(f"{field}.volunteer_id", "name exactly one of volunteer_id, resident_name")
        if volunteer_id and volunteer_id in seen_volunteers:
            v.fail(f"{field}.volunteer_id", "is already on this roll")
        seen_volunteers.add(volunteer_id)
        deed = v.text(f"{field}.deed", entry.deed, min_len=DEED_CHARS[0], max_len=DEED_CHARS[1])
        commendation_id = v.ident(f"{field}.commendation_id", entry.commendation_id, required=False)
        if commendation_id and not volunteer_id:
            v.fail(f"{field}.commendation_id", "only a volunteer's entry links a commendation")
        asked.append(EntryInput(volunteer_id, mask_name(name) if name else "", deed, commendation_id))
    return RollInput(period, title, summary, tuple(asked))


def require_compiler(principal: Principal, unit_level: int, unit_path: Sequence[str]) -> None:
    """A roll is compiled by an admin of a 实践站, 实践所 or the 中心 (or of a unit above it)."""
    if not (principal.is_admin and principal.manages(unit_path)):
        raise PermissionDenied("善行义举榜由本单位（或上级单位）的管理员编制")
    if unit_level not in COMPILING_LEVELS:
        raise PermissionDenied("善行义举榜由实践站、实践所或中心编制")


def default_title(unit_name: str, period: str) -> str:
    return f"{unit_name}善行义举榜（{period}）"[:MAX_TITLE]


def resolve_entries(asked: RollInput, unit_id: str, volunteer: Callable[[str], dict | None],
                    commendation: Callable[[str], dict | None]) -> list[dict]:
    """The entries as stored and shown. `volunteer(id)` is media's copy of registration's
    volunteer ({name, units: [{path}]}); `commendation(id)` its copy of points' commendation
    ({volunteer_id, year, level, title, revoked}). A volunteer must serve in the roll's unit
    subtree; a linked commendation must be that volunteer's and not revoked."""
    resolved = []
    for i, entry in enumerate(asked.entries):
        field = f"entries[{i}]"
        shown, title = entry.shown_name, ""
        if entry.volunteer_id:
            found = volunteer(entry.volunteer_id)
            if found is None or not any(unit_id in u.get("path", []) for u in found.get("units", [])):
                raise InvalidArgument.field(f"{field}.volunteer_id", "须为本单位（或下级单位）的志愿者")
            shown = mask_name(found.get("name", "")) or "志愿者"
            if entry.commendation_id:
                title = commendation_title(field, entry.volunteer_id, commendation(entry.commendation_id))
        resolved.append({"volunteer_id": entry.volunteer_id, "shown_name": shown, "deed": entry.deed,
                         "commendation_id": entry.commendation_id, "commendation_title": title})
    return resolved


def commendation_title(field: str, volunteer_id: str, found: dict | None) -> str:
    if found is None:
        raise FailedPrecondition("关联的表彰不存在或尚未同步，请稍后再试")
    if found["volunteer_id"] != volunteer_id:
        raise InvalidArgument.field(f"{field}.commendation_id", "须为该志愿者本人的表彰")
    if found.get("revoked"):
        raise FailedPrecondition("关联的表彰已撤销，不能列入善行义举榜")
    return f"{found['year']}年{COMMENDATION_LEVEL_LABEL.get(found['level'], '')}{found['title']}"


def body_of(entries: Sequence[dict]) -> str:
    """The article body the entries make: what submit screens and a plain reader shows."""
    lines = []
    for n, entry in enumerate(entries, start=1):
        who = entry["shown_name"] + ("（志愿者）" if entry["volunteer_id"] else "")
        honor = f"（{entry['commendation_title']}）" if entry["commendation_title"] else ""
        lines.append(f"{n}. {who}：{entry['deed']}{honor}")
    return "\n".join(lines)


def request_digest(unit_id: str, asked: RollInput) -> str:
    """What a retry must repeat exactly (resident names already masked: no name is hashed)."""
    data = {"unit_id": unit_id, **asdict(asked)}
    return hashlib.sha256(json.dumps(data, ensure_ascii=False, sort_keys=True).encode()).hexdigest()


def honors_of(volunteer_id: str, entries: Sequence[dict]) -> list[dict]:
    """The volunteer's entries on one roll (one, since a roll names a volunteer once)."""
    return [e for e in entries if e["volunteer_id"] == volunteer_id]
