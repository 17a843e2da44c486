"""Ordering's own Prometheus metrics, beyond the kit's RPC, outbox and consumer metrics.

Counters count what this replica did; Prometheus sums them over replicas. Levels and statuses
are label values by name (UNIT_LEVEL_STATION, ORDER_STATUS_OPEN).
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from wenming.common.v1 import common_pb2
from wenming.ordering.v1 import types_pb2

_WAIT_BUCKETS = (60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 24 * 3600)

ORDER_TRANSITIONS = Counter("ordering_orders_total", "Orders entering a status, by status and the level of the "
                            "unit holding them", ["status", "level"])
SLA_BREACHES = Counter("ordering_sla_breaches_total", "Orders a unit did not acknowledge in time (四必接)", ["level"])
TIME_TO_ACKNOWLEDGE = Histogram("ordering_time_to_acknowledge_seconds", "From reaching a unit to its acknowledgement",
                                ["level"], buckets=_WAIT_BUCKETS)
TIME_TO_DISPATCH = Histogram("ordering_time_to_dispatch_seconds", "From placement to dispatch or the claim list",
                             ["level"], buckets=_WAIT_BUCKETS)
TIME_TO_ACCEPT = Histogram("ordering_time_to_accept_seconds", "From dispatch or the claim list to the first "
                           "volunteer accepting or claiming", ["level"], buckets=_WAIT_BUCKETS)
CLAIMS = Counter("ordering_claims_total", "Claims of open orders (认领/抢单) by result", ["result"])
PROJECTS = Counter("ordering_projects_total", "Volunteer service projects entering a status (申报, 立项, 品牌, …)",
                   ["status"])
COMPETITION_SCORES = Counter("ordering_competition_scores_total", "Scores given in project competitions (项目大赛)")
CREDIT_INCIDENTS = Counter("ordering_credit_incidents_total", "Volunteers' no-shows (爽约) and complaints (投诉) "
                           "recorded, by kind and whether a rule of the loop or an admin recorded them",
                           ["kind", "origin"])
CREDIT_APPEALS = Counter("ordering_credit_appeals_total", "Appeals (申诉) of credit incidents: made, upheld, rejected",
                         ["result"])
ACTIVITY_PLANS = Counter("ordering_activity_plans_total", "Activity plans (年有计划、月有安排、周有活动) drafted, "
                         "put out for comments, published and revised, by period and move", ["period", "move"])
PLAN_COMMENTS = Counter("ordering_activity_plan_comments_total", "Comments on plans open for comments (征求意见), "
                        "by result (accepted, or refused for a sensitive word)", ["result"])
ACTIVITY_SIGNUPS = Counter("ordering_activity_signups_total", "Activity sign-ups by role and result", ["role", "result"])


# visible from zero, so increase() counts a level's first breach
for _level in ("UNIT_LEVEL_COURTYARD", "UNIT_LEVEL_STATION", "UNIT_LEVEL_INSTITUTE", "UNIT_LEVEL_CENTER"):
    SLA_BREACHES.labels(_level)


def level_name(level: int) -> str:
    return common_pb2.UnitLevel.Name(level)


def status_name(status: int) -> str:
    return types_pb2.OrderStatus.Name(status)


def project_status_name(status: int) -> str:
    return types_pb2.ProjectStatus.Name(status)


def credit_kind_name(kind: int) -> str:
    return types_pb2.CreditIncidentKind.Name(kind)


def plan_period_name(period: int) -> str:
    return types_pb2.ActivityPlanPeriod.Name(period)
