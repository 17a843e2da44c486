"""志愿者信用 in the app: a volunteer finds a complaint the courtyard recorded under 我的信用记录,
appeals it (the page refuses a reason too short before sending), the station's admin finds the
appeal on 信用申诉 and upholds it, and the volunteer's record then reads voided."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.registration import PASSWORD
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

STATION_ADMIN = "station0-admin"  # above the second courtyard (tests.support.registration.small_tree)
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
