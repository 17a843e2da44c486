"""Seeds ordering for the demo district through its public API: the district's own menu taxonomy
(11 类 22 项 on the national 七讲 and 三关爱, 身边人讲身边事 mandatory for stations), the center's
service menu on it plus a station's own item, orders in every state of the
closed loop 点单 → 报单 → 派单 → 接单 → 评单 (including one placed on a resident's behalf, one
routed up to its station, one rejected by the center), a queue at the demo courtyard and station
(幸福小院 of 广场村, cy111-admin / st11-admin), tasks of the demo volunteer, and this month's
activities (小院讲堂 and more) on the calendar.

Service is measured, never typed in: the seed moves ordering's clock back (ctx.set_clock) to serve
orders on earlier days — check-in, time on site, check-out — and to hold this month's past
activities, then confirms the hours soon after, so they are VERIFIED and reach the hours leaderboard.

Called by seed_demo.seed_other_services(ctx) right after registration was seeded; ordering learns
units and volunteers from registration's events, so the first calls wait for them to arrive.
"""

from __future__ import annotations

import calendar
import datetime as dt
import itertools
import time
from collections.abc import Callable

import grpc
import seed_plans  # infra/local, beside this file
import seed_projects  # infra/local, beside this file
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.clock import CHINA
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import ordering_pb2_grpc
from wenming.ordering.v1 import types_pb2
from wenming.registration.v1 import registration_pb2 as reg

L = c.UnitLevel
MINUTE = dt.timedelta(minutes=1)
# name, description, category, handling level, skills, certifications, minutes, points rule
MENU = [
    ("理论宣讲进小院", "用群众身边事讲党的创新理论，小院讲堂、田间地头都可以讲", c.SERVICE_CATEGORY_LECTURE_THEORY,
     L.UNIT_LEVEL_STATION, [c.SKILL_THEORY_LECTURE], [], 90, "lecture.theory"),
    ("政策宣讲", "医保缴费、养老保险、惠农补贴等政策上门解读", c.SERVICE_CATEGORY_LECTURE_POLICY,
     L.UNIT_LEVEL_COURTYARD, [c.SKILL_POLICY_EXPLAIN], [], 60, "lecture.policy"),
    ("科普讲座", "防范电信诈骗、食品安全、农业新技术等科普知识", c.SERVICE_CATEGORY_LECTURE_SCIENCE,
     L.UNIT_LEVEL_STATION, [c.SKILL_SCIENCE_POP], [], 90, "lecture.science"),
    ("法律咨询", "婚姻家庭、土地承包、劳动报酬等法律问题咨询与调解", c.SERVICE_CATEGORY_LECTURE_LAW,
     L.UNIT_LEVEL_INSTITUTE, [c.SKILL_LEGAL_AID], [], 60, "lecture.law"),
    ("健康义诊", "测血压血糖、慢病用药指导、健康生活方式宣讲", c.SERVICE_CATEGORY_LECTURE_HEALTH,
     L.UNIT_LEVEL_STATION, [c.SKILL_MEDICAL_HEALTH], [], 120, "lecture.health"),
    ("身边好人故事会", "讲述道德模范、身边好人的感人事迹", c.SERVICE_CATEGORY_LECTURE_ROLE_MODELS,
     L.UNIT_LEVEL_STATION, [c.SKILL_THEORY_LECTURE], [], 60, "lecture.role_models"),
    ("家乡变化讲述", "请老党员、老村干部讲讲村里这些年的变化", c.SERVICE_CATEGORY_LECTURE_CHANGE,
     L.UNIT_LEVEL_COURTYARD, [], [], 60, "lecture.change"),
    ("助老理发", "为行动不便的老人上门理发", c.SERVICE_CATEGORY_CARE_FOR_OTHERS, L.UNIT_LEVEL_COURTYARD,
     [c.SKILL_HAIRCUT], [], 45, "care.others"),
    ("家电维修", "电视、电饭锅、洗衣机等小家电上门检修", c.SERVICE_CATEGORY_CARE_FOR_OTHERS, L.UNIT_LEVEL_STATION,
     [c.SKILL_APPLIANCE_REPAIR], [], 90, "care.others"),
    ("心理疏导", "为空巢老人、留守妇女儿童提供心理陪伴与疏导", c.SERVICE_CATEGORY_CARE_FOR_OTHERS,
     L.UNIT_LEVEL_STATION, [c.SKILL_PSYCH_COUNSEL], [], 60, "care.others"),
    ("智能手机教学", "教老人用手机视频通话、扫码缴费、防范诈骗", c.SERVICE_CATEGORY_CARE_FOR_OTHERS,
     L.UNIT_LEVEL_COURTYARD, [c.SKILL_DIGITAL_HELP], [], 60, "care.others"),
    ("留守儿童课业辅导", "周末为留守儿童辅导作业、陪伴阅读", c.SERVICE_CATEGORY_CARE_FOR_OTHERS,
     L.UNIT_LEVEL_COURTYARD, [c.SKILL_CHILD_CARE], [], 90, "care.others"),
    ("应急救护培训", "心肺复苏、止血包扎等急救技能进村入户", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY,
     L.UNIT_LEVEL_STATION, [c.SKILL_EMERGENCY_RESCUE], ["first_aid"], 120, "care.society"),
    ("文艺演出进村", "秦腔、贤孝、广场舞等文艺节目送到村里", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY,
     L.UNIT_LEVEL_CENTER, [c.SKILL_CULTURE_ART], [], 180, "care.society"),
    ("垃圾分类宣传", "入户讲解垃圾分类，指导厨余垃圾处理", c.SERVICE_CATEGORY_CARE_FOR_NATURE,
     L.UNIT_LEVEL_COURTYARD, [c.SKILL_ENVIRONMENT], [], 60, "care.nature"),
    ("植树护绿", "春秋两季植树、古树名木巡护", c.SERVICE_CATEGORY_CARE_FOR_NATURE, L.UNIT_LEVEL_INSTITUTE,
     [c.SKILL_ENVIRONMENT], [], 180, "care.nature"),
]
S = c.ServiceCategory
# the district's own menu taxonomy, 11 类 22 项 in the style of the seeds, each category on a national
# one; 身边人讲身边事 is mandatory for every station once a month (the 三级创建 scorecard checks it)
TAXONOMY = [
    ("theory", "理论宣讲", S.SERVICE_CATEGORY_LECTURE_THEORY,
     [("courtyard_class", "小院讲堂"), ("theory_talk", "理论宣讲进小院")]),
    ("policy", "政策解读", S.SERVICE_CATEGORY_LECTURE_POLICY,
     [("policy_talk", "惠民政策宣讲"), ("policy_desk", "政策咨询代办")]),
    ("science", "科学普及", S.SERVICE_CATEGORY_LECTURE_SCIENCE,
     [("science_talk", "科普讲座"), ("anti_fraud", "防范电信诈骗")]),
    ("law", "法治服务", S.SERVICE_CATEGORY_LECTURE_LAW, [("legal_advice", "法律咨询"), ("mediation", "矛盾纠纷调解")]),
    ("health", "健康服务", S.SERVICE_CATEGORY_LECTURE_HEALTH, [("health_clinic", "健康义诊")]),
    ("role_models", "榜样引领", S.SERVICE_CATEGORY_LECTURE_ROLE_MODELS,
     [("neighbours_talk", "身边人讲身边事"), ("good_people", "身边好人故事会")]),
    ("change", "家乡变化", S.SERVICE_CATEGORY_LECTURE_CHANGE, [("hometown_change", "家乡变化讲述")]),
    ("elderly", "助老爱老", S.SERVICE_CATEGORY_CARE_FOR_OTHERS, [("haircut", "助老理发"), ("smartphone", "智能手机教学")]),
    ("neighbours", "邻里互助", S.SERVICE_CATEGORY_CARE_FOR_OTHERS,
     [("appliance_repair", "家电维修"), ("counselling", "心理疏导"), ("homework", "留守儿童课业辅导")]),
    ("civility", "文明新风", S.SERVICE_CATEGORY_CARE_FOR_SOCIETY,
     [("first_aid", "应急救护培训"), ("culture_show", "文艺演出进村"), ("farm_machinery", "农机具检修")]),
    ("nature", "生态环保", S.SERVICE_CATEGORY_CARE_FOR_NATURE, [("waste_sorting", "垃圾分类宣传"), ("tree_planting", "植树护绿")]),
]
MANDATORY = {"neighbours_talk": [types_pb2.MandatoryRule(level=L.UNIT_LEVEL_STATION, min_per_month=1)]}
# the district item of each menu item (by its name)
ITEM_CODES = {"理论宣讲进小院": "theory_talk", "政策宣讲": "policy_talk", "科普讲座": "science_talk",
              "法律咨询": "legal_advice", "健康义诊": "health_clinic", "身边好人故事会": "good_people",
              "家乡变化讲述": "hometown_change", "助老理发": "haircut", "家电维修": "appliance_repair",
              "心理疏导": "counselling", "智能手机教学": "smartphone", "留守儿童课业辅导": "homework",
              "应急救护培训": "first_aid", "文艺演出进村": "culture_show", "垃圾分类宣传": "waste_sorting",
              "植树护绿": "tree_planting", "农机具检修": "farm_machinery"}
NOTES = {
    "助老理发": "老伴腿脚不便，想请志愿者上门理发",
    "智能手机教学": "想学用手机和孙子视频通话，还有扫码缴费",
    "垃圾分类宣传": "小区垃圾总是分不清，想请人来讲讲",
    "家乡变化讲述": "想听老支书讲讲村里这些年的变化",
    "政策宣讲": "想了解今年城乡居民医保缴费的新政策",
    "留守儿童课业辅导": "孩子父母在外打工，想请志愿者周末辅导作业",
    "家电维修": "家里的电视机没有声音了",
    "文艺演出进村": "村里老人想看一场秦腔演出",
}


def _ts(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(dt.UTC))
    return stamp


def _eventually(call, waits_for=grpc.StatusCode.NOT_FOUND, timeout: float = 90.0):
    """Registration's events reach ordering a moment after the seed created units and volunteers."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return call()
        except grpc.RpcError as error:
            if error.code() != waits_for or time.monotonic() > deadline:
                raise
            time.sleep(0.3)


class _Desk:
    """The seed's calls, each as the person who would make it, at the time the seed chooses."""

    def __init__(self, ctx, stub):
        self.ctx = ctx
        self.stub = stub
        self._admins: dict[str, list] = {}
        self._people: dict[str, list] = {}

    def at(self, moment: dt.datetime | None) -> None:
        """Ordering's clock shows `moment` from now on, never a time still to come (None: the real
        time again)."""
        offset = 0.0 if moment is None else (moment - dt.datetime.now(dt.UTC)).total_seconds()
        self.ctx.set_clock(min(0.0, offset))

    def admin(self, unit_id: str) -> list:
        if unit_id not in self._admins:
            self._admins[unit_id] = self.ctx.center_admin if unit_id == self.ctx.center_id else \
                self.ctx.login_admin(unit_id)
        return self._admins[unit_id]

    def resident(self, phone: str) -> list:
        if phone not in self._people:
            self._people[phone] = self.ctx.login_resident(phone)
        return self._people[phone]

    def volunteer(self, volunteer_id: str) -> list:
        if volunteer_id not in self._people:
            self._people[volunteer_id] = self.ctx.login_volunteer(volunteer_id)
        return self._people[volunteer_id]

    def holder(self, order: pb.Order) -> list:
        return self.admin(order.current_unit.unit_id)

    def place(self, phone: str, item: pb.MenuItem, **fields) -> pb.Order:
        return self.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=item.item_id, note=NOTES.get(item.name, ""),
                                                         **fields), metadata=self.resident(phone), timeout=10).order

    def acknowledge(self, order: pb.Order) -> pb.Order:
        return self.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id),
                                          metadata=self.holder(order), timeout=10).order

    def dispatch(self, order: pb.Order, volunteer_id: str) -> pb.Order:
        return _eventually(lambda: self.stub.DispatchOrder(pb.DispatchOrderRequest(
            order_id=order.order_id, volunteer_ids=[volunteer_id]), metadata=self.holder(order), timeout=10).order)

    def accept(self, order: pb.Order, volunteer_id: str) -> pb.Order:
        return self.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=order.order_id),
                                     metadata=self.volunteer(volunteer_id), timeout=10).order

    def code(self, order: pb.Order) -> str:
        return self.stub.IssueOrderCheckinCode(pb.IssueOrderCheckinCodeRequest(order_id=order.order_id),
                                               metadata=self.holder(order), timeout=10).checkin.code

    def check_in(self, order: pb.Order, volunteer_id: str) -> pb.Order:
        return self.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=self.code(order)),
                                      metadata=self.volunteer(volunteer_id), timeout=10).order

    def check_out(self, order: pb.Order, volunteer_id: str) -> pb.Order:
        return self.stub.CheckOutOrder(pb.CheckOutOrderRequest(
            order_id=order.order_id, code=self.code(order), report=f"已完成{order.item_name}服务，群众表示满意"),
            metadata=self.volunteer(volunteer_id), timeout=10).order

    def served(self, phone: str, item: pb.MenuItem, volunteer_id: str, ended: dt.datetime,
               minutes: int) -> pb.Order:
        """点单 → 受理 → 派单 → 接单 → 签到 → 签退, the service ending at `ended`: the clock is moved
        through the day, so the time on site is measured. The clock is real again afterwards."""
        begin = ended - (minutes + 60) * MINUTE
        steps: list[tuple[dt.timedelta, Callable[[pb.Order], pb.Order]]] = [
            (8 * MINUTE, self.acknowledge), (15 * MINUTE, lambda o: self.dispatch(o, volunteer_id)),
            (25 * MINUTE, lambda o: self.accept(o, volunteer_id)), (60 * MINUTE, lambda o: self.check_in(o, volunteer_id)),
            ((60 + minutes) * MINUTE, lambda o: self.check_out(o, volunteer_id))]
        self.at(begin)
        order = self.place(phone, item)
        for after, step in steps:
            self.at(begin + after)
            order = step(order)
        self.at(None)
        return order

    def after_service(self, order: pb.Order, phone: str, ended: dt.datetime, until: str) -> pb.Order:
        """时长审核, 评单 and 办结 in the hours after a service that ended at `ended`, up to `until`."""
        for status, step, later in (("HOURS_CONFIRMED", self.confirm, 30), ("RATED", lambda o: self.rate(o, phone), 90),
                                    ("CLOSED", self.close, 150)):
            if until == "COMPLETED":
                break
            self.at(ended + later * MINUTE)
            order = step(order)
            if status == until:
                break
        self.at(None)
        return order

    def confirm(self, order: pb.Order) -> pb.Order:
        """时长审核: the measured time, VERIFIED; remembered for the points seed (certificates)."""
        confirmed = self.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id),
                                                metadata=self.holder(order), timeout=10).order
        for hours in confirmed.hours:
            self.ctx.verified_minutes[(hours.volunteer_id, confirmed.current_unit.unit_id)] += hours.minutes
        return confirmed

    def rate(self, order: pb.Order, phone: str) -> pb.Order:
        return self.stub.RateOrder(pb.RateOrderRequest(order_id=order.order_id, rating=5,
                                                       comment="志愿者很热心，服务很周到"),
                                   metadata=self.resident(phone), timeout=10).order

    def close(self, order: pb.Order) -> pb.Order:
        return self.stub.CloseOrder(pb.CloseOrderRequest(order_id=order.order_id), metadata=self.holder(order),
                                    timeout=10).order


def seed(ctx) -> None:
    if ctx.set_clock is None:
        raise RuntimeError("seed_ordering serves orders in the past: it needs ordering's CLOCK_OFFSET_FILE "
                           "(infra/local/launcher.py sets it)")
    channel = grpc.insecure_channel(ctx.targets["ordering"])
    stub = ordering_pb2_grpc.OrderingServiceStub(channel)
    desk = _Desk(ctx, stub)
    center = ctx.center_admin
    # the last courtyard registration created: once ordering knows it, it knows the tree
    _eventually(lambda: stub.ListMenu(pb.ListMenuRequest(unit_id=ctx.courtyards[-1].unit_id), metadata=center,
                                      timeout=10))

    taxonomy = stub.SetDistrictTaxonomy(pb.SetDistrictTaxonomyRequest(categories=[
        types_pb2.DistrictCategory(code=code, name=name, national_category=national, items=[
            types_pb2.DistrictItem(code=item, name=item_name, mandatory=MANDATORY.get(item, []))
            for item, item_name in entries]) for code, name, national, entries in TAXONOMY]),
        metadata=center, timeout=10).taxonomy
    items = {}
    for name, description, category, level, skills, certs, minutes, rule in MENU:
        items[name] = stub.PublishMenuItem(pb.PublishMenuItemRequest(
            name=name, description=description, category=category, handling_level=level, required_skills=skills,
            required_certifications=certs, expected_minutes=minutes, points_rule=rule,
            district_item_code=ITEM_CODES[name]), metadata=center, timeout=10).item
    own_station = ctx.stations[0]
    items["农机具检修"] = stub.PublishMenuItem(pb.PublishMenuItemRequest(
        name="农机具检修", description="春耕前为农户检修播种机、旋耕机", category=c.SERVICE_CATEGORY_CARE_FOR_SOCIETY,
        handling_level=L.UNIT_LEVEL_STATION, required_skills=[c.SKILL_AGRI_TECH], expected_minutes=120,
        points_rule="care.society", district_item_code=ITEM_CODES["农机具检修"]), metadata=desk.admin(own_station.unit_id), timeout=10).item

    # pairs of a resident and a volunteer of their courtyard who can serve one of its courtyard items
    active = [v for v in ctx.volunteers if v.status == reg.VOLUNTEER_STATUS_ACTIVE]
    courtyard_items = [items[name] for name, *_ in MENU if items[name].handling_level == L.UNIT_LEVEL_COURTYARD
                       and not items[name].required_certifications]
    pairs = []
    for resident, phone in ctx.residents:
        yard = resident.courtyard.unit_id
        for item in courtyard_items:
            volunteer = next((v for v in active if any(u.unit_id == yard for u in v.service_units)
                              and set(item.required_skills) <= set(v.skills)), None)
            if volunteer is not None:
                pairs.append((resident, phone, item, volunteer.volunteer_id))
                break
    if not pairs:
        raise RuntimeError("seed_ordering: no courtyard has an active volunteer for one of its menu items")
    pairs = itertools.cycle(pairs)  # a small district: residents order more than once

    orders: list[pb.Order] = []
    before_service = ("ACKNOWLEDGED", "DISPATCHED", "ACCEPTED", "IN_SERVICE")

    def taken(until: str, days_ago: int = 0) -> pb.Order:
        """One order taken along the main path up to `until`; what was served, `days_ago`."""
        resident, phone, item, vid = next(pairs)
        if until in ("PLACED", *before_service):
            order = desk.place(phone, item)
            for status, step in [("ACKNOWLEDGED", desk.acknowledge), ("DISPATCHED", lambda o: desk.dispatch(o, vid)),
                                 ("ACCEPTED", lambda o: desk.accept(o, vid)),
                                 ("IN_SERVICE", lambda o: desk.check_in(o, vid))]:
                if until == "PLACED":
                    break
                order = step(order)
                if status == until:
                    break
        else:
            ended = _service_end(days_ago)
            order = desk.served(phone, item, vid, ended, item.expected_minutes - 10 * (len(orders) % 3))
            order = desk.after_service(order, phone, ended, until)
        orders.append(order)
        return order

    for state in ("PLACED", "ACKNOWLEDGED", "DISPATCHED", "ACCEPTED", "IN_SERVICE", "COMPLETED", "HOURS_CONFIRMED",
                  "RATED", "CLOSED", "CLOSED"):
        taken(state, days_ago=len(orders) % 4)
    for days_ago in range(1, 13):  # the last days' service: the hours leaderboard and the trends
        taken("CLOSED", days_ago=days_ago)

    resident, phone, item, vid = next(pairs)  # 报单: the courtyard passes it up to its station
    order = desk.acknowledge(desk.place(phone, item, urgent=True))
    orders.append(stub.EscalateOrder(pb.EscalateOrderRequest(order_id=order.order_id, reason="本院暂无合适志愿者，报实践站协调"),
                                     metadata=desk.holder(order), timeout=10).order)
    resident, phone, item, vid = next(pairs)  # 认领: on the claim list
    order = desk.acknowledge(desk.place(phone, item))
    orders.append(stub.OpenOrder(pb.OpenOrderRequest(order_id=order.order_id), metadata=desk.holder(order),
                                 timeout=10).order)
    resident, phone, item, vid = next(pairs)  # given back by the volunteer, waiting for re-dispatch
    order = desk.accept(desk.dispatch(desk.acknowledge(desk.place(phone, item)), vid), vid)
    orders.append(stub.DeclineOrder(pb.DeclineOrderRequest(order_id=order.order_id, reason="临时外出，无法按时上门"),
                                    metadata=desk.volunteer(vid), timeout=10).order)
    resident, phone, item, vid = next(pairs)  # cancelled by the resident
    order = desk.place(phone, item)
    orders.append(stub.CancelOrder(pb.CancelOrderRequest(order_id=order.order_id, reason="家里人已经帮忙解决了"),
                                   metadata=desk.resident(phone), timeout=10).order)
    resident, phone, item, vid = next(pairs)  # 问需台: the courtyard head records it for the resident
    orders.append(_eventually(lambda: stub.PlaceOrder(pb.PlaceOrderRequest(
        item_id=items["助老理发"].item_id, resident_id=resident.resident_id, note="电话问需：老人想理发，不会用手机下单"),
        metadata=desk.admin(resident.courtyard.unit_id), timeout=10).order))
    resident, phone, item, vid = next(pairs)  # 微心愿: a wish, with where to come and whom to call
    orders.append(desk.stub.PlaceOrder(pb.PlaceOrderRequest(
        wish="家里水龙头漏水，想请志愿者帮忙看看", address="幸福巷12号", contact_phone=phone),
        metadata=desk.resident(phone), timeout=10).order)
    resident, phone, item, vid = next(pairs)  # a station's item routed past the courtyard
    orders.append(desk.place(phone, items["家电维修"]))
    resident, phone, item, vid = next(pairs)  # 重大事项 reaches the center, which rejects it
    order = desk.place(phone, items["文艺演出进村"])
    orders.append(stub.RejectOrder(pb.RejectOrderRequest(order_id=order.order_id,
                                                         reason="该需求为个人包场演出，不属于志愿服务范围"),
                                   metadata=center, timeout=10).order)

    orders += _demo_queues(ctx, desk, items)
    activities = _seed_activities(ctx, stub, desk, active)
    desk.at(None)
    seed_projects.seed(ctx, stub, desk.admin, orders, activities)
    seed_plans.seed(ctx, stub, desk, activities)
    channel.close()
    states = {o.status for o in orders}
    confirmed = sum(1 for o in orders if o.hours)
    held = sum(1 for a in activities if a.status == types_pb2.ACTIVITY_STATUS_COMPLETED)
    upcoming = sum(1 for a in activities if a.status == types_pb2.ACTIVITY_STATUS_PUBLISHED)
    print(f"  ordering: {len(items)} menu items, {len(orders)} orders in {len(states)} states ({confirmed} with "
          f"verified hours), {len(activities)} activities this month ({held} held, {upcoming} open for sign-up, "
          f"{len(activities) - held - upcoming} planned)", flush=True)
    print(f"  ordering: menu taxonomy {len(taxonomy.categories)} 类 "
          f"{sum(len(category.items) for category in taxonomy.categories)} 项, mandatory for stations: "
          f"{', '.join(i.name for category in taxonomy.categories for i in category.items if i.mandatory)}", flush=True)


def _service_end(days_ago: int) -> dt.datetime:
    """When a service `days_ago` ended (two hours before now, that many days back), kept inside
    this month so its hours count on this month's and this year's leaderboards."""
    return dt.datetime.now(dt.UTC) - dt.timedelta(days=days_ago % dt.datetime.now(CHINA).day, hours=2)


def _demo_queues(ctx, desk: _Desk, items: dict[str, pb.MenuItem]) -> list[pb.Order]:
    """Work waiting for the demo logins: the courtyard head (cy111-admin) and the station head
    (st11-admin) each have a queue in several states; the demo volunteer has a task to accept, and
    services already confirmed (verified hours, a certificate from the points seed)."""
    yard = ctx.courtyards[0]
    neighbours = itertools.cycle([phone for r, phone in ctx.residents if r.courtyard.unit_id == yard.unit_id])
    demo = ctx.demo_volunteer.volunteer_id
    talk = items["家乡变化讲述"]  # needs no skill: any volunteer of the courtyard may serve it
    queue = [
        desk.place(next(neighbours), items["助老理发"], urgent=True),                          # 受理 waits
        desk.stub.PlaceOrder(pb.PlaceOrderRequest(wish="院里的路灯坏了，晚上出门看不清", address="幸福小院东巷3号"),
                             metadata=desk.resident(next(neighbours)), timeout=10).order,      # a wish to take
        desk.acknowledge(desk.place(next(neighbours), items["智能手机教学"])),                  # 派单 waits
        desk.dispatch(desk.acknowledge(desk.place(next(neighbours), talk)), demo),            # the volunteer's 接单
        desk.served(next(neighbours), talk, demo, _service_end(0), 55),                      # 时长审核 waits
    ]
    for days_ago, minutes in ((9, 60), (3, 50)):  # the demo volunteer's record
        phone, ended = next(neighbours), _service_end(days_ago)
        queue.append(desk.after_service(desk.served(phone, talk, demo, ended, minutes), phone, ended, "RATED"))
    # the station: an item routed past the courtyard, one passed up (报单), one it has taken on
    queue.append(desk.place(next(neighbours), items["家电维修"]))
    passed_up = desk.acknowledge(desk.place(next(neighbours), items["政策宣讲"]))
    queue.append(desk.stub.EscalateOrder(pb.EscalateOrderRequest(order_id=passed_up.order_id,
                                                                 reason="涉及医保政策细节，请实践站安排专人讲解"),
                                         metadata=desk.holder(passed_up), timeout=10).order)
    queue.append(desk.acknowledge(desk.place(next(neighbours), items["健康义诊"])))
    return queue


# day of the month, hour (China time), organizer (level, index), title, category, location, minutes,
# volunteer and resident places, published
CALENDAR = [
    (3, 9, ("courtyard", 0), "小院讲堂：学习贯彻党的二十届三中全会精神", c.SERVICE_CATEGORY_LECTURE_THEORY, "小院议事厅",
     90, 3, 40, True),
    (6, 15, ("station", 0), "健康义诊进村", c.SERVICE_CATEGORY_LECTURE_HEALTH, "村卫生室门前广场", 150, 8, 100, True),
    (9, 9, ("courtyard", 3), "垃圾分类宣传进小院", c.SERVICE_CATEGORY_CARE_FOR_NATURE, "小院门口", 90, 4, 30, True),
    (12, 15, ("courtyard", 0), "防范电信诈骗小院讲堂", c.SERVICE_CATEGORY_LECTURE_SCIENCE, "小院议事厅", 90, 2, 30, True),
    (16, 9, ("station", 0), "智能手机使用培训", c.SERVICE_CATEGORY_CARE_FOR_OTHERS, "实践站活动室", 90, 4, 30, True),
    (2, 15, ("courtyard", 0), "小院讲堂：身边人讲身边事", c.SERVICE_CATEGORY_LECTURE_ROLE_MODELS, "小院议事厅", 60, 2,
     30, True),
    (23, 9, ("station", 1), "秦腔进村文艺汇演", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY, "村文化广场", 120, 10, 200, True),
    (26, 15, ("courtyard", 0), "小院讲堂：民法典进万家", c.SERVICE_CATEGORY_LECTURE_LAW, "小院议事厅", 90, 2, 30, True),
    (28, 14, ("institute", 0), "新时代文明实践月度宣讲", c.SERVICE_CATEGORY_LECTURE_POLICY, "镇文化站多功能厅", 120, 10,
     200, False),
]


# the district items of activities of the calendar (by title): the mandatory one held by station 0's
# courtyard early in the month, so its 必办项目 line is met and station 1's is missed
CALENDAR_ITEMS = {"小院讲堂：身边人讲身边事": "neighbours_talk", "小院讲堂：学习贯彻党的二十届三中全会精神": "courtyard_class"}


def _seed_activities(ctx, stub, desk: _Desk, active) -> list[pb.Activity]:
    """This month's calendar: what is over was held (sign-ups, attendance by the unit's code and by
    a participant's pass, completion with verified hours), the rest is open for sign-up."""
    now = dt.datetime.now(CHINA)
    month = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    last_day = calendar.monthrange(now.year, now.month)[1]
    units = {"courtyard": ctx.courtyards, "station": ctx.stations, "institute": ctx.institutes}
    activities = []
    for day, hour, (level, index), title, category, location, minutes, volunteers, residents, publish in CALENDAR:
        unit = units[level][index]
        starts = month.replace(day=min(day, last_day), hour=hour)
        ends = starts + minutes * MINUTE
        held = publish and ends < now
        if not held and starts < now + 30 * MINUTE:  # under way, or past but never published: tomorrow
            later = dt.timedelta(days=(now.date() - starts.date()).days + 1)
            starts, ends = starts + later, ends + later
        admin = desk.admin(unit.unit_id)
        if held:
            desk.at(starts - dt.timedelta(days=7))  # announced a week before
        activity = stub.PlanActivity(pb.PlanActivityRequest(
            unit_id=unit.unit_id, title=title, category=category, district_item_code=CALENDAR_ITEMS.get(title, ""),
            location=location, starts_at=_ts(starts),
            ends_at=_ts(ends), volunteer_capacity=volunteers, resident_capacity=residents,
            description=f"{unit.name}组织，欢迎志愿者和群众报名参加"), metadata=admin, timeout=10).activity
        if publish:
            activity = stub.PublishActivity(pb.PublishActivityRequest(activity_id=activity.activity_id),
                                            metadata=admin, timeout=10).activity
            residents_in, volunteers_in = _sign_up(ctx, stub, desk, active, unit, activity.activity_id)
            if held:
                activity = _hold(ctx, stub, desk, activity, residents_in, volunteers_in, starts, ends)
        activities.append(activity)
        desk.at(None)
    return activities


def _sign_up(ctx, stub, desk: _Desk, active, unit, activity_id: str) -> tuple[list[list], list[list]]:
    """Residents under the unit and two of its volunteers sign up; their tokens."""
    request = pb.SignUpActivityRequest(activity_id=activity_id)
    residents = [desk.resident(phone) for r, phone in ctx.residents if unit.unit_id in r.courtyard.path][:5]
    for token in residents:
        stub.SignUpActivity(request, metadata=token, timeout=10)
    volunteers = [desk.volunteer(v.volunteer_id) for v in active
                  if any(unit.unit_id in u.path for u in v.service_units)][:2]
    for token in volunteers:
        _eventually(lambda t=token: stub.SignUpActivity(request, metadata=t, timeout=10),
                    waits_for=grpc.StatusCode.FAILED_PRECONDITION)  # the profile may still be on its way
    return residents, volunteers


def _hold(ctx, stub, desk: _Desk, activity: pb.Activity, residents: list[list], volunteers: list[list],
          starts: dt.datetime, ends: dt.datetime) -> pb.Activity:
    """The day itself: the first participant shows their pass at the door, the others scan the
    unit's code (one resident stayed home); completed an hour after the end, the volunteers'
    planned time counts as verified hours."""
    aid = activity.activity_id
    admin = desk.admin(activity.unit.unit_id)
    present = residents[:-1] if len(residents) > 1 else residents
    at_door, *scanning = present + volunteers
    desk.at(starts + 10 * MINUTE)
    pass_code = stub.GetActivityPass(pb.GetActivityPassRequest(activity_id=aid), metadata=at_door,
                                     timeout=10).pass_code
    stub.RecordActivityAttendance(pb.RecordActivityAttendanceRequest(activity_id=aid, pass_code=pass_code),
                                  metadata=admin, timeout=10)
    code = stub.IssueActivityCheckinCode(pb.IssueActivityCheckinCodeRequest(activity_id=aid), metadata=admin,
                                         timeout=10).checkin.code
    for token in scanning:
        stub.CheckInActivity(pb.CheckInActivityRequest(activity_id=aid, code=code), metadata=token, timeout=10)
    desk.at(ends + 60 * MINUTE)
    done = stub.CompleteActivity(pb.CompleteActivityRequest(activity_id=aid), metadata=admin, timeout=10).activity
    for hours in done.hours:
        ctx.verified_minutes[(hours.volunteer_id, done.unit.unit_id)] += hours.minutes
    desk.at(ends + 120 * MINUTE)
    stub.RateActivity(pb.RateActivityRequest(activity_id=aid, rating=5, comment="内容实在，很受用"), metadata=at_door,
                      timeout=10)
    desk.at(None)
    return done
