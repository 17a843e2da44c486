"""The `make run` seed (infra/local/seed_ordering.py) against the real services, on a small
district built here the way seed_demo builds the demo one."""

from __future__ import annotations

import grpc
import seed_demo  # infra/local, on the path through tests.support.stack
import seed_ordering
import seed_points

from tests.support.grpc_helpers import bearer
from tests.support.registration import PASSWORD, District, new_national_id, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2
from wenming.points.v1 import points_pb2 as pts
from wenming.points.v1 import points_pb2_grpc
from wenming.registration.v1 import registration_pb2 as reg

from .support import S

A = types_pb2.ActivityStatus


class _Logins:
    """What the seed context asks of seed_demo.Seeder, for a test district."""

    def __init__(self, district: District):
        self.district = district

    def login(self, kind: int, login: str):
        reply = self.district.stub.Login(reg.LoginRequest(district_id=self.district.id, kind=kind, login=login,
                                                          password=PASSWORD), timeout=10)
        return bearer(reply.access_token), reply.claims


def test_the_seed_builds_a_menu_orders_in_every_state_verified_hours_and_a_month_of_activities(
        registration, ordering_proc, ordering, clock, spawn, capsys):
    points_proc = spawn("points", port_offset=3, log_name="points-for-seed")
    points_proc.wait_serving(90)
    district = District(registration.grpc_target, registration.env)
    try:
        tree = district.small_tree()
        logins = {tree.institute.unit_id: "inst-admin"}
        for i, station in enumerate(tree.stations):
            logins[station.unit_id] = f"station{i}-admin"
            for j, yard in enumerate(tree.courtyards[2 * i:2 * i + 2]):
                logins[yard.unit_id] = f"yard{i}{j}-admin"
        ctx = seed_demo.SeedContext(
            targets={"ordering": ordering_proc.grpc_target, "registration": registration.grpc_target,
                     "points": points_proc.grpc_target},
            center_admin=district.as_center(), center_id=district.center_id, institutes=[tree.institute],
            stations=tree.stations, courtyards=tree.courtyards, admin_logins=logins, registration=_Logins(district),
            set_clock=clock.set)
        for yard in tree.courtyards:
            phone = new_phone()
            volunteer = district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
                district_id=district.id, name="种子志愿者", national_id=new_national_id(), phone=phone,
                password=PASSWORD, political_status=reg.POLITICAL_STATUS_CPC_MEMBER,
                skills=[c.SKILL_HAIRCUT, c.SKILL_DIGITAL_HELP, c.SKILL_ENVIRONMENT, c.SKILL_POLICY_EXPLAIN],
                service_unit_ids=[yard.unit_id]), metadata=district.as_center(), timeout=10).volunteer
            ctx.volunteers.append(volunteer)
            ctx.volunteer_phones[volunteer.volunteer_id] = phone
            phone = new_phone()
            resident, _ = district.resident(yard.unit_id, phone=phone, name="种子居民")
            ctx.residents.append((resident, phone))

        seed_ordering.seed(ctx)
        seed_points.seed(ctx)

        summary = capsys.readouterr().out
        assert "ordering: 17 menu items" in summary and "in 14 states" in summary
        assert "9 activities this month" in summary and "certificate ZM-" in summary
        center = district.as_center()
        menu = ordering.stub.ListMenu(pb.ListMenuRequest(unit_id=tree.courtyards[0].unit_id,
                                                         page=c.PageRequest(page_size=100)),
                                      metadata=center, timeout=10).items
        assert {"助老理发", "家电维修", "法律咨询", "健康义诊", "心理疏导", "政策宣讲", "垃圾分类宣传",
                "农机具检修"} <= {i.name for i in menu}
        # the district's own taxonomy, 11 类 22 项, every menu item on one of its items
        assert "menu taxonomy 11 类 22 项, mandatory for stations: 身边人讲身边事" in summary
        taxonomy = ordering.stub.GetDistrictTaxonomy(pb.GetDistrictTaxonomyRequest(), metadata=center,
                                                     timeout=10).taxonomy
        codes = {i.code for category in taxonomy.categories for i in category.items}
        assert all(i.district_item_code in codes for i in menu)
        orders = []
        token = ""
        while True:
            reply = ordering.stub.ListUnitQueue(pb.ListUnitQueueRequest(
                unit_id=district.center_id, include_subtree=True, statuses=list(range(1, 15)),
                page=c.PageRequest(page_size=100, page_token=token)), metadata=center, timeout=10)
            orders += reply.orders
            token = reply.page.next_page_token
            if not token:
                break
        assert {o.status for o in orders} == set(range(S.ORDER_STATUS_PLACED, S.ORDER_STATUS_REJECTED + 1))
        # served with the clock moved back: measured on site, confirmed as VERIFIED, never typed in
        confirmed = [o for o in orders if o.hours]
        assert len(confirmed) >= 15 and all(h.source == c.HOURS_SOURCE_VERIFIED for o in confirmed for h in o.hours)
        assert all(o.sessions[0].measured_minutes > 0 for o in confirmed)

        # the demo heads have a queue; the demo volunteer has a task to accept
        yard, station = tree.courtyards[0], tree.stations[0]
        at_yard = {o.status for o in orders if o.current_unit.unit_id == yard.unit_id}
        assert {S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ACKNOWLEDGED, S.ORDER_STATUS_DISPATCHED,
                S.ORDER_STATUS_COMPLETED} <= at_yard
        assert {S.ORDER_STATUS_PLACED, S.ORDER_STATUS_ESCALATED, S.ORDER_STATUS_ACKNOWLEDGED} <= {
            o.status for o in orders if o.current_unit.unit_id == station.unit_id}
        demo = ctx.demo_volunteer.volunteer_id
        tasks = ordering.stub.ListMyTasks(pb.ListMyTasksRequest(), metadata=ctx.login_volunteer(demo),
                                          timeout=10).orders
        assert S.ORDER_STATUS_DISPATCHED in {t.status for t in tasks}

        # this month's calendar: held (completed, with verified hours) where the day is over
        activities = ordering.stub.ListActivities(pb.ListActivitiesRequest(
            unit_id=district.center_id, subtree=True, page=c.PageRequest(page_size=100)), metadata=center,
            timeout=10).activities
        assert len(activities) == 9 and any(a.volunteers_signed_up and a.residents_signed_up for a in activities)
        for held in (a for a in activities if a.status == A.ACTIVITY_STATUS_COMPLETED):
            assert held.hours and all(h.source == c.HOURS_SOURCE_VERIFIED for h in held.hours)

        # points: the hours leaderboard is not empty, the demo volunteer holds a certificate
        points = points_pb2_grpc.PointsServiceStub(grpc.insecure_channel(points_proc.grpc_target))
        rows = points.GetLeaderboard(pts.GetLeaderboardRequest(
            unit_id=district.center_id, metric=pts.LEADERBOARD_METRIC_VERIFIED_HOURS), metadata=center,
            timeout=10).rows
        assert rows and demo in {r.account_id for r in rows}
        certificates = points.ListCertificates(pts.ListCertificatesRequest(), metadata=ctx.login_volunteer(demo),
                                               timeout=10).certificates
        assert len(certificates) == 1 and certificates[0].verified_minutes > 0
        # with the two commendations (表彰) the points seed recorded for them
        assert [(x.title, x.level_label) for x in certificates[0].commendations] == [
            ("优秀志愿者", "区县级"), ("学雷锋志愿服务先进个人", "市级")]
        assert float(clock.path.read_text()) == 0  # the seed left ordering on the real time

        # projects in several states; the first station's brand shows what its linked work achieved
        projects = ordering.stub.ListProjects(pb.ListProjectsRequest(), metadata=center, timeout=10).projects
        assert {p.status for p in projects} == {types_pb2.PROJECT_STATUS_BRANDED, types_pb2.PROJECT_STATUS_APPROVED,
                                                types_pb2.PROJECT_STATUS_UNDER_REVIEW,
                                                types_pb2.PROJECT_STATUS_REJECTED, types_pb2.PROJECT_STATUS_DECLARED}
        (brand,) = [p for p in projects if p.status == types_pb2.PROJECT_STATUS_BRANDED]
        outcome = ordering.stub.GetProject(pb.GetProjectRequest(project_id=brand.project_id), metadata=center,
                                           timeout=10).project.outcome
        assert outcome.people_served > 0 and outcome.volunteer_minutes > 0 and outcome.orders_served > 0

        # a month of published plans (the year's, the month's, its weeks'), next month's open for comments
        plans = ordering.stub.ListActivityPlans(pb.ListActivityPlansRequest(page=c.PageRequest(page_size=100)),
                                                metadata=center, timeout=10).plans
        by_status = {s: [p for p in plans if p.status == s] for s in (types_pb2.ACTIVITY_PLAN_STATUS_PUBLISHED,
                                                                      types_pb2.ACTIVITY_PLAN_STATUS_CONSULTING)}
        assert len(by_status[types_pb2.ACTIVITY_PLAN_STATUS_CONSULTING]) == 1
        assert {p.period for p in by_status[types_pb2.ACTIVITY_PLAN_STATUS_PUBLISHED]} == {
            types_pb2.ACTIVITY_PLAN_PERIOD_YEAR, types_pb2.ACTIVITY_PLAN_PERIOD_MONTH, types_pb2.ACTIVITY_PLAN_PERIOD_WEEK}
        assert any(e.activity_id for p in by_status[types_pb2.ACTIVITY_PLAN_STATUS_PUBLISHED]
                   for e in p.published_entries)
        assert "activity plans:" in summary and "1 open for comments" in summary
    finally:
        district.close()
