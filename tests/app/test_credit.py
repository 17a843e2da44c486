"""志愿者信用 in the app: a volunteer finds a complaint the courtyard recorded under 我的信用记录,
appeals it (the page refuses a reason too short before sending), the station's admin finds the
appeal on 信用申诉 and upholds it, and the volunteer's record then reads voided; a courtyard's
admin records a no-show by hand on an order's page, the organizer a complaint on an activity's
page, and the volunteer finds each."""

from __future__ import annotations

import datetime as dt

from google.protobuf.timestamp_pb2 import Timestamp
from playwright.sync_api import expect

from tests.support.registration import PASSWORD
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

STATION_ADMIN = "station0-admin"  # above the second courtyard (tests.support.registration.small_tree)
YARD_ADMIN = "yard00-admin"  # the first courtyard's admin
REASON = "居民来电反映未按约定时间上门"


def test_a_volunteer_appeals_a_complaint_and_the_station_upholds_it(world, device):
    yard = world.courtyards[1]
    volunteer = world.volunteer(yard, name="郑信用")
    _, resident = world.resident(yard)
    order = world.accepted_order(resident, volunteer)
    incident = world.stub.RecordCreditIncident(pb.RecordCreditIncidentRequest(
        volunteer_id=volunteer.id, kind=types_pb2.CREDIT_INCIDENT_KIND_COMPLAINT, reason=REASON,
        order_id=order.order_id, idempotency_key="app-credit-1"), metadata=world.as_admin(yard), timeout=10).incident

    phone = device("volunteer")
    phone.login("志愿者", volunteer.phone, PASSWORD)
    page = phone.open("/volunteer/me")
    row = page.get_by_test_id("credit-incidents").locator(f'[data-incident-id="{incident.incident_id}"]')
    expect(row).to_contain_text(f"投诉：{REASON}")
    expect(row).to_contain_text("有效")
    expect(row).to_contain_text("前申诉")  # the appeal period's end
    expect(page.get_by_test_id("credit-standing")).to_have_text("近90天有效爽约0次、投诉1次")
    phone.settle()
    assert not phone.accessibility_violations()

    row.get_by_role("button", name="申诉").click()
    popup = page.get_by_role("dialog", name="申诉")
    popup.get_by_label("申诉理由").fill("临时")
    popup.get_by_role("button", name="提交申诉").click()
    expect(popup.get_by_text("申诉理由应为5至300个字")).to_be_visible()
    # with the popup open: its overlay and close icon are named buttons, its refusal shown
    assert not phone.accessibility_violations()
    expect(page.locator(".van-popup__close-icon").first).to_have_attribute("aria-label", "关闭")
    popup.get_by_label("申诉理由").fill("当天暴雨封路，已提前电话告知居民改期")
    popup.get_by_role("button", name="提交申诉").click()
    expect(row).to_contain_text("申诉中")
    expect(row).to_contain_text("我的申诉：当天暴雨封路，已提前电话告知居民改期")
    expect(row.get_by_role("button", name="申诉")).to_have_count(0)  # once
    expect(popup).to_be_hidden()
    phone.shot("volunteer-credit-appealed")

    admin = device("admin")
    admin.login("管理员", STATION_ADMIN, PASSWORD)
    desk = admin.open("/admin/appeals")
    pending = desk.get_by_test_id("pending-appeals").locator(f'[data-incident-id="{incident.incident_id}"]')
    expect(pending).to_contain_text("郑信用0 · 投诉")
    expect(pending).to_contain_text("申诉理由：当天暴雨封路")
    admin.settle()
    assert not admin.accessibility_violations()
    admin.shot("head-credit-appeals")
    pending.get_by_role("button", name="处理郑信用0的申诉").click()
    dialog = desk.get_by_role("dialog", name="处理申诉")
    dialog.get_by_role("button", name="提交").click()
    expect(dialog.get_by_text("请选择处理结果")).to_be_visible()
    dialog.get_by_role("radio", name="申诉成立").click()
    dialog.get_by_label("处理意见").fill("经核实当天封路，撤销投诉")
    dialog.get_by_role("button", name="提交").click()
    expect(pending).to_have_count(0)
    expect(dialog).to_be_hidden()
    expect(desk.locator(".van-toast")).to_be_hidden()  # Vant's toast is an unnamed dialog while it shows
    assert not admin.accessibility_violations()

    page = phone.open("/volunteer/me")
    row = page.get_by_test_id("credit-incidents").locator(f'[data-incident-id="{incident.incident_id}"]')
    expect(row).to_contain_text("申诉成立，已撤销")
    expect(row).to_contain_text("处理意见：经核实当天封路，撤销投诉")
    expect(page.get_by_test_id("credit-standing")).to_have_text("近90天无有效爽约、投诉记录")


def test_a_courtyard_admin_records_a_no_show_on_the_order_and_the_volunteer_sees_it(world, device):
    yard = world.courtyards[0]
    volunteer = world.volunteer(yard, name="王登记")
    _, resident = world.resident(yard)
    order = world.accepted_order(resident, volunteer)

    admin = device("admin")
    admin.login("管理员", YARD_ADMIN, PASSWORD)
    page = admin.open(f"/admin/orders/{order.order_id}")
    expect(page.get_by_test_id("order-status")).to_contain_text("已接单")
    admin.settle()
    assert not admin.accessibility_violations()
    page.get_by_role("button", name="登记信用记录").click()
    dialog = page.get_by_role("dialog", name="登记信用记录")
    expect(dialog.get_by_role("radio", name="王登记0")).to_be_visible()  # the name, read from registration
    # the page checks what the server checks before sending
    dialog.get_by_label("情况说明").fill("迟")
    dialog.get_by_role("button", name="登记", exact=True).click()
    expect(dialog.get_by_text("请选择志愿者")).to_be_visible()
    expect(dialog.get_by_text("请选择类型")).to_be_visible()
    expect(dialog.get_by_text("情况说明应为2至200个字")).to_be_visible()
    _record(admin, page, "王登记0", "爽约", "已接单，未按约定时间到场，也未请假")
    _expect_only_record(device, volunteer, "爽约：已接单，未按约定时间到场，也未请假", "近90天有效爽约1次、投诉0次")


def test_an_organizer_records_a_complaint_on_the_activity_and_the_volunteer_sees_it(world, device):
    yard = world.courtyards[0]
    organizer = world.as_admin(yard)
    starts, ends = Timestamp(), Timestamp()
    start = dt.datetime.now(dt.UTC) + dt.timedelta(days=1)
    starts.FromDatetime(start)
    ends.FromDatetime(start + dt.timedelta(hours=2))
    activity_id = world.stub.PlanActivity(pb.PlanActivityRequest(
        title="小院义诊", category=c.SERVICE_CATEGORY_CARE_FOR_SOCIETY, starts_at=starts, ends_at=ends,
        volunteer_capacity=2), metadata=organizer, timeout=10).activity.activity_id
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=activity_id), metadata=organizer, timeout=10)
    volunteer = world.volunteer(yard, name="李活动")
    world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=activity_id), metadata=volunteer.token, timeout=10)

    admin = device("admin")
    admin.login("管理员", YARD_ADMIN, PASSWORD)
    page = admin.open(f"/admin/activities/{activity_id}")
    page.get_by_role("button", name="登记信用记录").click()
    _record(admin, page, "李活动0", "投诉", "居民反映义诊现场态度生硬")
    _expect_only_record(device, volunteer, "投诉：居民反映义诊现场态度生硬", "近90天有效爽约0次、投诉1次")


def _record(admin, page, volunteer_name: str, kind: str, reason: str) -> None:
    """Fills the open 登记信用记录 form and sends it; the page is clean afterwards."""
    dialog = page.get_by_role("dialog", name="登记信用记录")
    dialog.get_by_role("radio", name=volunteer_name).click()
    dialog.get_by_role("radio", name=kind).click()
    dialog.get_by_label("情况说明").fill(reason)
    dialog.get_by_role("button", name="登记", exact=True).click()
    expect(dialog).to_be_hidden()
    expect(page.locator(".van-toast")).to_be_hidden()  # Vant's toast is an unnamed dialog while it shows
    assert not admin.accessibility_violations()


def _expect_only_record(device, volunteer, text: str, standing: str) -> None:
    phone = device("volunteer")
    phone.login("志愿者", volunteer.phone, PASSWORD)
    mine = phone.open("/volunteer/me")
    row = mine.get_by_test_id("credit-incidents").locator("[data-incident-id]")
    expect(row).to_have_count(1)
    expect(row).to_contain_text(text)
    expect(mine.get_by_test_id("credit-standing")).to_have_text(standing)
