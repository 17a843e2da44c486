"""Every page of the app, as each kind of user opens it on a phone (390×844) and on a desk
(1440×900): it renders its content, axe-core finds nothing serious or critical, and a screenshot
lands in build/screenshots. The app shell paints within a second."""

from __future__ import annotations

import datetime as dt

import grpc
import openpyxl
import pytest
from playwright.sync_api import expect

from services.common.events import to_timestamp
from tests.support.waiting import wait_until
from tests.support.grpc_helpers import bearer, or_not_found
from tests.support.registration import PASSWORD, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2
from wenming.points.v1 import points_pb2, points_pb2_grpc
from wenming.registration.v1 import registration_pb2 as reg


@pytest.fixture(scope="module")
def people(world, peers):
    """A resident with an order and a published activity at their courtyard; a volunteer with a
    commendation (表彰)."""
    yard = world.courtyards[0]
    phone = new_phone()
    resident, _ = world.district.resident(yard.unit_id, phone=phone, name="赵大妈")
    world.wait_resident_known(resident.resident_id)
    volunteer = world.volunteer(yard, skills=(c.SKILL_HAIRCUT,), name="周志愿")
    order = world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=world.items["haircut"].item_id, note="上门理发",
                                                       address="5号楼1单元", contact_phone="13900139000"),
                                  metadata=_resident_token(world, phone), timeout=10).order
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=yard.unit_id, title="小院讲堂·防范电信诈骗", description="民警讲解常见骗局", category=c.SERVICE_CATEGORY_LECTURE_LAW,
        location="幸福小院活动室", starts_at=to_timestamp(start), ends_at=to_timestamp(start + dt.timedelta(hours=2)),
        volunteer_capacity=5, resident_capacity=30), metadata=world.as_admin(yard), timeout=10).activity
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=activity.activity_id),
                               metadata=world.as_admin(yard), timeout=10)
    # the courtyard's own 阵地, a room open every day and a booking in it
    venue = world.district.stub.CreateVenue(reg.CreateVenueRequest(
        unit_id=yard.unit_id, name="幸福小院", kind=reg.VENUE_KIND_COURTYARD), metadata=world.as_admin(yard),
        timeout=10).venue
    room = world.district.stub.CreateRoom(reg.CreateRoomRequest(
        venue_id=venue.venue_id, name="活动室", kind=reg.ROOM_KIND_ACTIVITY, capacity=30,
        opening_hours=[reg.OpeningPeriod(weekday=d, opens_minute=0, closes_minute=24 * 60) for d in range(1, 8)]),
        metadata=world.as_admin(yard), timeout=10).room
    slot = start.replace(minute=0, second=0, microsecond=0)
    world.district.stub.BookRoom(reg.BookRoomRequest(room_id=room.room_id, starts_at=to_timestamp(slot),
                                                     ends_at=to_timestamp(slot + dt.timedelta(minutes=30)), purpose="小院议事会"),
                                 metadata=world.as_admin(yard), timeout=10)
    # the courtyard's project, approved by its station
    project = world.stub.ProposeProject(pb.ProposeProjectRequest(
        unit_id=yard.unit_id, name="银龄互助·结对帮扶", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, target_group="独居老人",
        plan="每月两次入户探访", budget_source="街道专项经费"), metadata=world.as_admin(yard), timeout=10).project
    station = world.as_admin(world.stations[0])
    for to in (types_pb2.PROJECT_STATUS_UNDER_REVIEW, types_pb2.PROJECT_STATUS_APPROVED):
        world.stub.MoveProject(pb.MoveProjectRequest(project_id=project.project_id, to_status=to, comment="同意"),
                               metadata=station, timeout=10)
    _commend(peers["points"].grpc_target, volunteer.id, world.as_admin(yard))
    return {"resident_phone": phone, "volunteer": volunteer, "order_id": order.order_id,
            "activity_id": activity.activity_id, "room_id": room.room_id, "project_id": project.project_id}


def _commend(points_target: str, volunteer_id: str, admin) -> None:
    """优秀志愿者 for last year, recorded by the courtyard's admin once points knows the volunteer."""
    year = dt.datetime.now(dt.UTC).year - 1
    request = points_pb2.RecordCommendationRequest(
        volunteer_id=volunteer_id, year=year, level=points_pb2.COMMENDATION_LEVEL_DISTRICT, title="优秀志愿者",
        issuer="区文明办", awarded_on=f"{year}-12-05", idempotency_key="pages-commendation")

    with grpc.insecure_channel(points_target) as channel:
        stub = points_pb2_grpc.PointsServiceStub(channel)
        # points may not have heard of the volunteer yet
        wait_until(lambda: or_not_found(lambda: stub.RecordCommendation(request, metadata=admin, timeout=10)),
                   timeout=60, what="the volunteer in points")


def _resident_token(world, phone: str):
    return bearer(world.district.login(reg.PRINCIPAL_KIND_RESIDENT, phone))


def pages(people) -> dict[str, list[tuple[str, str, str]]]:
    """(name, path, text the page must show) per kind of login."""
    order, activity = people["order_id"], people["activity_id"]
    return {
        "居民": [
            ("resident-menu", "/resident", "助老理发"),
            ("resident-place-order", "/resident/order?item={haircut}", "服务地址"),
            ("resident-wish", "/resident/order?wish=1", "微心愿"),
            ("resident-orders", "/resident/orders", "助老理发"),
            ("resident-order", f"/resident/orders/{order}", "办理进度"),
            ("resident-activities", "/resident/activities", "小院讲堂"),
            ("resident-me", "/resident/me", "文明实践积分"),
            ("resident-store", "/resident/store", "我的积分"),
            ("inbox", "/inbox", "消息"),
        ],
        "志愿者": [
            ("volunteer-tasks", "/volunteer", "我的任务"),
            ("volunteer-activities", "/volunteer/activities", "小院讲堂"),
            ("volunteer-training", "/volunteer/training", "培训班次"),
            ("volunteer-me", "/volunteer/me", "星级"),
            ("volunteer-commendations", "/volunteer/me", "我的表彰"),
            ("volunteer-commendation", "/volunteer/me", "年度 · 区文明办"),
            ("volunteer-credit", "/volunteer/me", "我的信用记录"),
            ("volunteer-perks", "/volunteer/me", "我的礼遇"),
            ("volunteer-store", "/volunteer/store", "我的积分"),
        ],
        "管理员": [
            ("head-queue", "/admin", "助老理发"),
            ("head-order", f"/admin/orders/{order}", "受理"),
            ("head-proxy-order", "/admin/proxy", "查找居民"),
            ("head-activities", "/admin/activities", "小院讲堂"),
            ("head-plan-activity", "/admin/activities/new", "活动名称"),
            ("head-activity", f"/admin/activities/{activity}", "出示签到码"),
            ("head-center", "/admin/center", "办理漏斗"),
            ("head-center-big-screen", "/admin/center?screen=1", "退出大屏"),
            ("head-exports", "/admin/exports", "开始导出"),
            ("head-commendations", "/admin/commendations", "周志愿"),
            ("head-perks", "/admin/perks", "登记爱心商家"),
            ("head-store-stock", "/admin/store", "补充库存"),
            ("head-credit-appeals", "/admin/appeals", "申诉成立则撤销记录"),
            ("head-grade-evidence", "/admin/evidence", "有机制：制度文件"),
            ("head-me", "/admin/me", "退出登录"),
            ("head-venues", "/admin/venues", "活动室"),
            ("head-room", f"/admin/rooms/{people['room_id']}", "小院议事会"),
            ("head-projects", "/admin/projects", "银龄互助"),
            ("head-propose-project", "/admin/projects/new", "经费来源"),
            ("head-project", f"/admin/projects/{people['project_id']}", "服务成效"),
        ],
    }


LOGINS = {"居民": lambda p: p["resident_phone"], "志愿者": lambda p: p["volunteer"].phone, "管理员": lambda p: "yard00-admin"}


@pytest.mark.parametrize("kind", ["居民", "志愿者", "管理员"])
@pytest.mark.parametrize("desk", [False, True], ids=["phone", "desk"])
def test_every_page_renders_accessibly(kind, desk, world, people, device):
    screen = device(f"{'desk' if desk else 'phone'}", desk=desk)
    screen.login(kind, LOGINS[kind](people), PASSWORD)
    findings = {}
    for name, path, text in pages(people)[kind]:
        page = screen.open(path.replace("{haircut}", world.items["haircut"].item_id))
        expect(page.get_by_text(text).first).to_be_visible()
        screen.settle()
        screen.shot(name)
        found = screen.accessibility_violations()
        if found:
            findings[name] = found
    if findings:
        pytest.fail("axe-core found serious or critical problems:\n" + "\n".join(
            f"{name}: {problem}" for name, problems in findings.items() for problem in problems))


def _first_paint(page) -> float:
    """Milliseconds to the first contentful paint; the browser may record it a moment after the
    content is visible."""
    entry = "performance.getEntriesByName('first-contentful-paint')"
    page.wait_for_function(f"{entry}.length > 0")
    return page.evaluate(f"{entry}[0].startTime")


def test_login_and_public_pages_are_accessible_and_fast(device, gateway):
    screen = device("phone")
    page = screen.open("/login")
    expect(page.get_by_role("button", name="以居民身份登录")).to_be_visible()
    paints = [_first_paint(page)]
    # the suite's other workers share the two cores: the best of three loads is the page's own cost
    while min(paints) >= 1000 and len(paints) < 3:
        page.reload()
        expect(page.get_by_role("button", name="以居民身份登录")).to_be_visible()
        paints.append(_first_paint(page))
    assert min(paints) < 1000, f"first contentful paint of the app shell took {paints} ms"
    screen.shot("login")
    assert not screen.accessibility_violations()
    page = screen.open("/verify/NO-SUCH-NUMBER")
    expect(page.get_by_role("alert")).to_contain_text("证明")
    assert not screen.accessibility_violations()
    # the REST API's viewer, offline from any CDN like the app
    page = screen.open("/api-docs/")
    page.get_by_role("heading", name="ordering").click()
    expect(page.get_by_text("/api/v1/ordering/PlaceOrder")).to_be_visible()
    screen.shot("api-docs")


def test_an_admin_exports_the_roster_and_downloads_the_workbook(world, people, device, tmp_path):
    """数据导出: the page starts the job, shows its progress and downloads the named file."""
    screen = device("exports")
    screen.login("管理员", "yard00-admin", PASSWORD)
    page = screen.open("/admin/exports")
    page.get_by_role("radio", name="志愿者花名册").click()
    saved = screen.export_and_download(tmp_path)
    assert saved.name.startswith("志愿者花名册-") and saved.name.endswith(".xlsx")
    names = [row[1] for row in openpyxl.load_workbook(saved).worksheets[0].iter_rows(min_row=2, values_only=True)]
    assert any(name.startswith("周志愿") for name in names)  # the courtyard's volunteer (people)


def test_the_courtyard_head_hands_an_order_to_the_next_courtyard(world, people, device):
    """分单 from the order page: the sibling courtyard is offered, the reason is required, and the
    order lands there with its own deadline; the trail shows the step."""
    yard, next_yard = world.courtyards[0], world.courtyards[1]
    order = world.stub.PlaceOrder(pb.PlaceOrderRequest(item_id=world.items["haircut"].item_id),
                                  metadata=_resident_token(world, people["resident_phone"]), timeout=10).order
    screen = device("phone")
    screen.login("管理员", LOGINS["管理员"](people), PASSWORD)
    page = screen.open(f"/admin/orders/{order.order_id}")
    page.get_by_role("button", name="分单").click()
    popup = page.get_by_role("dialog", name="分单")
    popup.get_by_label("接收单位").select_option(next_yard.unit_id)
    send = popup.get_by_role("button", name="分单")
    expect(send).to_be_disabled()  # no reason yet
    popup.get_by_label("分单原因").fill("邻院有理发志愿者")
    send.click()
    expect(page.get_by_text(f"所在单位：{next_yard.name}")).to_be_visible()
    expect(page.get_by_text("原因：邻院有理发志愿者")).to_be_visible()
    screen.shot("head-order-handed-over")
    handed = world.get(order.order_id)
    assert handed.current_unit.unit_id == next_yard.unit_id and handed.status == types_pb2.ORDER_STATUS_PLACED
    assert yard.unit_id != next_yard.unit_id and 0 < handed.sla_seconds_left <= 2 * 3600
