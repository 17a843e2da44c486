"""Seeds the demo district's activity plans (年有计划、月有安排、周有活动) through ordering's API: the
center's plan for the year, this month's arrangements of the first institute and of the stations
(each linked to the activities the ordering seed put on this month's calendar), the first
station's plan for every week of the month — all consulted on ten days ago, with residents'
comments, and published — and the first station's plan for next month, open for comments now.

Called by seed_ordering.seed() once the activities exist (plans are ordering's).
"""

from __future__ import annotations

import datetime as dt
import itertools

from google.protobuf.timestamp_pb2 import Timestamp

from services.common.clock import CHINA
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

PERIOD = types_pb2.ActivityPlanPeriod
MONTHLY = [  # (day, title, category): a station's month beside its activities
    (3, "理论宣讲进小院", c.SERVICE_CATEGORY_LECTURE_THEORY),
    (10, "志愿服务集中日", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY),
    (16, "移风易俗·红白事简办宣讲", c.SERVICE_CATEGORY_LECTURE_POLICY),
    (24, "护河巡河", c.SERVICE_CATEGORY_CARE_FOR_NATURE),
]
YEARLY = ["新春送福进万家", "学雷锋志愿服务月", "清明文明祭扫", "全民健身月", "端午邻里节", "防溺水安全宣讲",
          "建党节红色故事会", "暑期青少年托管", "丰收节农技服务", "敬老月入户探访", "宪法宣传周", "岁末关爱困难群众"]
WEEKLY = ["小院讲堂", "数字助老课堂", "卫生大扫除", "邻里议事会"]
COMMENTS = ["希望讲堂安排在周末上午，方便上班的年轻人参加", "集中日可以加上免费量血压", "巡河能不能带上孩子们一起",
            "移风易俗宣讲请村里的老党员讲，大家更愿意听"]


def _ts(moment: dt.datetime) -> Timestamp:
    ts = Timestamp()
    ts.FromDatetime(moment)
    return ts


def seed(ctx, stub, desk, activities: list[pb.Activity]) -> None:
    """`desk`: seed_ordering's _Desk (admins' and residents' tokens, ordering's clock)."""
    now = dt.datetime.now(CHINA)
    month = f"{now:%Y-%m}"
    keys = itertools.count(1)
    drafted = now - dt.timedelta(days=10)

    def create(unit_id: str, period: int, period_key: str, title: str, entries: list[pb.ActivityPlanEntry]):
        return stub.CreateActivityPlan(pb.CreateActivityPlanRequest(
            unit_id=unit_id, period=period, period_key=period_key, title=title, entries=entries,
            idempotency_key=f"seed-plan-{next(keys)}"), metadata=desk.admin(unit_id), timeout=10).plan

    def consult(plan: pb.ActivityPlan, deadline: dt.datetime) -> None:
        stub.OpenActivityPlanConsultation(pb.OpenActivityPlanConsultationRequest(
            plan_id=plan.plan_id, deadline=_ts(deadline)), metadata=desk.admin(plan.unit.unit_id), timeout=10)

    def comment(plan: pb.ActivityPlan, count: int) -> int:
        phones = [phone for r, phone in ctx.residents if plan.unit.unit_id in r.courtyard.path][:count]
        for phone, text in zip(phones, COMMENTS, strict=False):  # fewer residents than comments: fine
            stub.CommentOnActivityPlan(pb.CommentOnActivityPlanRequest(
                plan_id=plan.plan_id, text=text, idempotency_key=f"seed-comment-{next(keys)}"),
                metadata=desk.resident(phone), timeout=10)
        return len(phones)

    def entry(title: str, when: str, category: int, unit_id: str = "", activity_id: str = "") -> pb.ActivityPlanEntry:
        return pb.ActivityPlanEntry(title=title, when=when, category=category, unit=c.UnitRef(unit_id=unit_id),
                                    activity_id=activity_id)

    def held_here(unit) -> list[pb.ActivityPlanEntry]:
        """This month's activities of the unit's subtree, as entries naming them."""
        found = [a for a in activities if unit.unit_id in a.unit.path
                 and f"{a.starts_at.ToDatetime(dt.UTC).astimezone(CHINA):%Y-%m}" == month]
        return [entry(a.title, f"{a.starts_at.ToDatetime(dt.UTC).astimezone(CHINA):%Y-%m-%d}", a.category,
                      a.unit.unit_id, a.activity_id) for a in found]

    def month_entries(unit) -> list[pb.ActivityPlanEntry]:
        return [entry(title, f"{month}-{day:02d}", category) for day, title, category in MONTHLY] + held_here(unit)

    # drafted and put out for comments ten days ago, commented on the day after, published now
    desk.at(drafted)
    published = [create(ctx.center_id, PERIOD.ACTIVITY_PLAN_PERIOD_YEAR, f"{now.year}", f"{now.year}年度文明实践计划",
                        [entry(title, f"{now.year}-{m:02d}", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY)
                         for m, title in enumerate(YEARLY, start=1)])]
    published.append(create(ctx.institutes[0].unit_id, PERIOD.ACTIVITY_PLAN_PERIOD_MONTH, month,
                            f"{now.month}月活动安排", held_here(ctx.institutes[0])[:20]
                            or [entry("志愿服务集中日", f"{month}-10", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY)]))
    for station in ctx.stations[:3]:
        published.append(create(station.unit_id, PERIOD.ACTIVITY_PLAN_PERIOD_MONTH, month, f"{now.month}月活动安排",
                                month_entries(station)))
    first = ctx.stations[0]
    day = now.date().replace(day=1)
    while day.month == now.month:
        year, week, _ = day.isocalendar()
        monday = day - dt.timedelta(days=day.weekday())
        days = [monday + dt.timedelta(days=n) for n in (2, 5)]  # Wednesday and Saturday
        published.append(create(first.unit_id, PERIOD.ACTIVITY_PLAN_PERIOD_WEEK, f"{year}-W{week:02d}",
                                f"第{week}周活动", [entry(WEEKLY[(week + i) % len(WEEKLY)], d.isoformat(),
                                                         c.SERVICE_CATEGORY_CARE_FOR_OTHERS)
                                                   for i, d in enumerate(days)]))
        day = monday + dt.timedelta(days=7)
    for plan in published:
        consult(plan, drafted + dt.timedelta(days=3))
    desk.at(drafted + dt.timedelta(days=1))
    comments = sum(comment(plan, 2) for plan in published if plan.period == PERIOD.ACTIVITY_PLAN_PERIOD_MONTH)
    desk.at(None)
    for plan in published:
        stub.PublishActivityPlan(pb.PublishActivityPlanRequest(plan_id=plan.plan_id),
                                 metadata=desk.admin(plan.unit.unit_id), timeout=10)

    # next month's arrangements of the first station: open for comments until five days from now
    following = (now.date().replace(day=1) + dt.timedelta(days=32)).replace(day=1)
    next_month = f"{following:%Y-%m}"
    consulting = create(first.unit_id, PERIOD.ACTIVITY_PLAN_PERIOD_MONTH, next_month, f"{following.month}月活动安排（征求意见稿）",
                        [entry(title, f"{next_month}-{day:02d}", category) for day, title, category in MONTHLY])
    consult(consulting, now + dt.timedelta(days=5))
    comments += comment(consulting, 2)
    print(f"  activity plans: {len(published)} published (the year, {month} and its weeks), "
          f"1 open for comments ({first.name}, {next_month}), {comments} comments", flush=True)
