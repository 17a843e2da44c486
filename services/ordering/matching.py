"""Who may take an order, and who should (派单 helper).

Eligible: an ACTIVE volunteer serving inside the handling unit's subtree, with every skill and
every (unexpired) certification the item requires. Ranked by:

- distance (same courtyard first, then station, institute),
- current load (orders offered to or accepted by them and not finished),
- stars from the verified hours ordering has confirmed for them (national rule, 100 h = 1★),
- availability (weekdays and periods they said they serve) against the time the resident wants.

Every candidate carries the factors of its score, worded for the dispatcher (Simplified Chinese),
and their credit standing (志愿者信用, 近90天有效爽约/投诉) as a factor of 0 points: the dispatcher
sees it and judges, the ranking does not punish a volunteer for an incident still under appeal.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from services.common.clock import CHINA, as_utc
from services.common.errors import FailedPrecondition, NotFound
from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2
from wenming.registration.v1 import registration_pb2 as reg

from .credit import CreditBook
from .models import Order
from .readmodels import Certifications, Registry

S = types_pb2.OrderStatus
ACTIVE_STATUSES = [S.ORDER_STATUS_DISPATCHED, S.ORDER_STATUS_ACCEPTED, S.ORDER_STATUS_IN_SERVICE]
STAR_HOURS = (100, 300, 600, 1000, 1500)  # 1★ … 5★ (national rule; points owns the official level)
MAX_PER_TIER = 500  # volunteers read per distance tier; the nearest tiers fill the list first

SKILL_NAMES = {
    common_pb2.SKILL_THEORY_LECTURE: "理论宣讲", common_pb2.SKILL_POLICY_EXPLAIN: "政策解读",
    common_pb2.SKILL_CULTURE_ART: "文化文艺", common_pb2.SKILL_SCIENCE_POP: "科学普及",
    common_pb2.SKILL_LEGAL_AID: "法律服务", common_pb2.SKILL_MEDICAL_HEALTH: "医疗健康",
    common_pb2.SKILL_ENVIRONMENT: "环境保护", common_pb2.SKILL_EMERGENCY_RESCUE: "应急救援",
    common_pb2.SKILL_ELDERLY_CARE: "助老服务", common_pb2.SKILL_CHILD_CARE: "关爱未成年人",
    common_pb2.SKILL_PSYCH_COUNSEL: "心理疏导", common_pb2.SKILL_DIGITAL_HELP: "数字助老",
    common_pb2.SKILL_APPLIANCE_REPAIR: "家电维修", common_pb2.SKILL_HAIRCUT: "义务理发",
    common_pb2.SKILL_AGRI_TECH: "农技推广", common_pb2.SKILL_SPORTS_FITNESS: "体育健身",
}
WEEKDAY_NAMES = ("", "周一", "周二", "周三", "周四", "周五", "周六", "周日")
PERIOD_NAMES = {common_pb2.DAY_PERIOD_MORNING: "上午", common_pb2.DAY_PERIOD_AFTERNOON: "下午",
                common_pb2.DAY_PERIOD_EVENING: "晚上"}
DISTANCE = {4: (40, "同一小院"), 3: (25, "同一实践站"), 2: (10, "同一实践所"), 1: (0, "同属本中心")}


def wanted_slot(wanted_at: dt.datetime) -> tuple[int, int]:
    """(weekday, day period) of a moment in China Standard Time."""
    local = as_utc(wanted_at).astimezone(CHINA)
    period = (common_pb2.DAY_PERIOD_MORNING if local.hour < 12 else
              common_pb2.DAY_PERIOD_AFTERNOON if local.hour < 18 else common_pb2.DAY_PERIOD_EVENING)
    return local.isoweekday(), period


def stars_for(minutes: int) -> int:
    return sum(1 for hours in STAR_HOURS if minutes >= hours * 60)


@dataclass
class Scored:
    volunteer: dict
    score: int = 0
    active: int = 0
    stars: int = 0
    factors: list[pb.ScoreFactor] = field(default_factory=list)

    def add(self, factor: str, points: int, explanation: str) -> None:
        self.score += points
        self.factors.append(pb.ScoreFactor(factor=factor, points=points, explanation=explanation))


class Matcher:
    def __init__(self, registry: Registry, certifications: Certifications, credit: CreditBook):
        self.registry = registry
        self.certifications = certifications
        self.credit = credit

    # ---- eligibility ----

    def why_not(self, order: Order, volunteer: dict, held: set[str], *, check_scope: bool = True) -> str | None:
        """None when the volunteer may take the order, else the reason."""
        if volunteer["status"] != reg.VOLUNTEER_STATUS_ACTIVE:
            return "is not an active volunteer"
        if check_scope and order.current.unit_id not in volunteer.get("scope", ()):
            return f"does not serve inside {order.current.name or order.current.unit_id}"
        missing = [SKILL_NAMES.get(s, str(s)) for s in order.required_skills if s not in volunteer.get("skills", ())]
        if missing:
            return f"lacks the required skill(s) {', '.join(missing)}"
        missing = [c for c in order.required_certifications if c not in held]
        if missing:
            return f"holds no valid certification {', '.join(missing)}"
        return None

    def require_eligible(self, order: Order, volunteer_id: str, *, check_scope: bool = True,
                         volunteer: dict | None = None) -> dict:
        volunteer = volunteer or self.registry.volunteer(order.district_id, volunteer_id)
        if volunteer is None:
            raise NotFound("volunteer", volunteer_id)
        held = self.certifications.valid_codes(order.district_id, [volunteer_id])[volunteer_id]
        reason = self.why_not(order, volunteer, held, check_scope=check_scope)
        if reason:
            raise FailedPrecondition(f"volunteer {volunteer.get('number') or volunteer_id} cannot take this order: "
                                     f"{reason}")
        return volunteer

    def eligible_members(self, order: Order, member_ids: list[str]) -> list[str]:
        """The team members who may take the order (a team is chosen for its members, wherever
        they serve, so only status, skills and certifications count)."""
        held = self.certifications.valid_codes(order.district_id, member_ids)
        members = self.registry.volunteers.find({"_id": {"$in": member_ids}, "district_id": order.district_id})
        return sorted(m["_id"] for m in members
                      if self.why_not(order, m, held[m["_id"]], check_scope=False) is None)

    # ---- ranking ----

    def suggest(self, order: Order, limit: int) -> tuple[list[Scored], int]:
        """The best `limit` candidates and how many volunteers were eligible in all."""
        pool = self._nearest_pool(order, want=max(limit * 3, 50))
        ids = [v["_id"] for v in pool]
        held = self.certifications.valid_codes(order.district_id, ids)
        eligible = [v for v in pool if self.why_not(order, v, held[v["_id"]]) is None]
        ids = [v["_id"] for v in eligible]
        loads = self._active_orders(order.district_id, ids)
        minutes = self._verified_minutes(order.district_id, ids)
        slot = wanted_slot(order.wanted_at) if order.wanted_at else None
        scored = [self._score(order, v, loads.get(v["_id"], 0), minutes.get(v["_id"], 0), slot) for v in eligible]
        scored.sort(key=lambda s: (-s.score, s.active, s.volunteer.get("number", "")))
        shown = scored[:limit]
        standings = self.credit.standings(order.district_id, [s.volunteer["_id"] for s in shown])
        for s in shown:
            s.add("credit", 0, standings[s.volunteer["_id"]].summary)
        return shown, len(eligible)

    def _nearest_pool(self, order: Order, want: int) -> list[dict]:
        """Volunteers serving in the subtree of the origin courtyard, then of each unit above it
        up to the handling unit, until enough are found."""
        origin = list(order.origin.path)
        handling_depth = origin.index(order.current.unit_id) if order.current.unit_id in origin else 0
        seen: dict[str, dict] = {}
        for depth in range(len(origin) - 1, handling_depth - 1, -1):
            query = {"district_id": order.district_id, "scope": origin[depth],
                     "status": reg.VOLUNTEER_STATUS_ACTIVE, "_id": {"$nin": list(seen)}}
            for volunteer in self.registry.volunteers.find(query).limit(MAX_PER_TIER):
                seen[volunteer["_id"]] = volunteer
            if len(seen) >= want:
                break
        return list(seen.values())

    def _active_orders(self, district_id: str, ids: list[str]) -> dict[str, int]:
        counts: dict[str, int] = {}
        if not ids:
            return counts
        for doc in Order.collection().find({"district_id": district_id, "offered_ids": {"$in": ids},
                                            "status": {"$in": ACTIVE_STATUSES}}, {"offered_ids": 1}):
            for vid in doc["offered_ids"]:
                counts[vid] = counts.get(vid, 0) + 1
        return counts

    def _verified_minutes(self, district_id: str, ids: list[str]) -> dict[str, int]:
        if not ids:
            return {}
        pipeline = [
            {"$match": {"district_id": district_id, "hours.volunteer_id": {"$in": ids}}},
            {"$unwind": "$hours"},
            {"$match": {"hours.volunteer_id": {"$in": ids}, "hours.source": common_pb2.HOURS_SOURCE_VERIFIED}},
            {"$group": {"_id": "$hours.volunteer_id", "minutes": {"$sum": "$hours.minutes"}}},
        ]
        return {row["_id"]: row["minutes"] for row in Order.collection().aggregate(pipeline)}

    def _score(self, order: Order, volunteer: dict, active: int, minutes: int, slot: tuple[int, int] | None) -> Scored:
        s = Scored(volunteer, active=active, stars=stars_for(minutes))
        origin = list(order.origin.path)
        shared = max((_common_prefix(u["path"], origin) for u in volunteer.get("units", ())), default=1)
        points, label = DISTANCE.get(shared, DISTANCE[1])
        nearest = next((u for u in volunteer.get("units", ()) if _common_prefix(u["path"], origin) == shared), None)
        s.add("distance", points, f"{label}（{nearest['name'] if nearest else ''}）" if shared >= 2 else label)
        load_points = -10 * min(active, 3)
        s.add("load", load_points, f"当前在办 {active} 单" if active else "当前没有在办任务")
        s.add("stars", 4 * s.stars, f"{s.stars}星志愿者（本平台确认服务 {minutes // 60} 小时）")
        weekdays, periods = volunteer.get("weekdays") or [], volunteer.get("periods") or []
        if slot is None:
            s.add("availability", 0, "群众未指定服务时间")
        elif not weekdays and not periods:
            s.add("availability", 0, "未填写可服务时间")
        else:
            when = f"{WEEKDAY_NAMES[slot[0]]}{PERIOD_NAMES[slot[1]]}"
            if (not weekdays or slot[0] in weekdays) and (not periods or slot[1] in periods):
                s.add("availability", 15, f"{when}通常有空")
            else:
                s.add("availability", -10, f"{when}通常没空")
        if order.required_skills:
            s.add("skills", 0, "具备所需技能：" + "、".join(SKILL_NAMES.get(k, str(k)) for k in order.required_skills))
        if order.required_certifications:
            s.add("certifications", 0, "持有所需证书：" + "、".join(order.required_certifications))
        return s


def _common_prefix(a: list[str], b: list[str]) -> int:
    n = 0
    for x, y in zip(a, b, strict=False):  # paths of different depths share a prefix
        if x != y:
            break
        n += 1
    return n
