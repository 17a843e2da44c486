"""活动计划 in the app: a station's admin drafts next month's arrangements (the page says when a
time lies outside the month), puts them out for comments; a resident of the station's courtyard
reads the draft on the calendar page and comments; the admin reads the comment, is told the
deadline has not passed, publishes after it, and the resident finds the arrangements week by week
and in the month's list. Every page checked with axe."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect

from services.common.events import to_timestamp
from tests.ordering.support import next_month
from tests.support.registration import PASSWORD, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb

STATION_ADMIN = "station0-admin"  # the first station (tests.support.registration.small_tree)
CHINA = dt.timezone(dt.timedelta(hours=8))


def test_a_station_consults_and_publishes_its_month_and_a_resident_reads_it(world, device, app_clock):
    month, first = next_month()
    phone = new_phone()
    resident, _ = world.district.resident(world.courtyards[0].unit_id, phone=phone, name="赵阿姨")
    world.wait_resident_known(resident.resident_id)

    desk = device("station-admin")
    desk.login("管理员", STATION_ADMIN, PASSWORD)
    page = desk.open("/admin/plans")
    expect(page.get_by_text("本单位及下级还没有活动计划")).to_be_visible()
    desk.settle()
    assert not desk.accessibility_violations()

    page.get_by_role("button", name="新建计划").click()
    expect(page.get_by_label("时段")).to_have_value(month)
    page.get_by_role("button", name="创建").click()
    expect(page.get_by_test_id("plan-head")).to_contain_text("草拟中")

    # a time outside the month is refused with the service's reason
    page.get_by_label("活动名称").fill("理论宣讲进小院")
    page.get_by_label("时间", exact=True).fill("2020-01-01")
    page.get_by_label("类别").select_option(label="讲理论")
    page.get_by_role("button", name="添加安排").click()
    expect(page.locator(".van-field__error-message")).to_contain_text("时间不在计划的时段")
    page.get_by_label("时间", exact=True).fill(f"{month}-06")
    page.get_by_role("button", name="添加安排").click()
    entries = page.get_by_test_id("plan-entries")
    expect(entries).to_contain_text("理论宣讲进小院")
    page.get_by_label("活动名称").fill("志愿服务集中日")
    page.get_by_label("时间", exact=True).fill(f"{month}-20")
    page.get_by_label("类别").select_option(label="关爱社会")
    page.get_by_label("承办单位").select_option(label=f"{world.courtyards[1].name}（小院）")
    page.get_by_label("备注").fill("上午九点在站前广场集合")
    page.get_by_role("button", name="添加安排").click()
    expect(entries).to_contain_text("志愿服务集中日")
    expect(entries).to_contain_text(world.courtyards[1].name)  # held by the courtyard below
    desk.settle()
    assert not desk.accessibility_violations()

    deadline = dt.datetime.now(CHINA) + dt.timedelta(days=2)
    page.get_by_label("征求意见截止时间").fill(deadline.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_role("button", name="发布征求意见").click()
    page.locator(".van-dialog").get_by_role("button", name="确认").click()
    expect(page.get_by_test_id("plan-head")).to_contain_text("征求意见中")
    expect(page.get_by_test_id("plan-comments")).to_contain_text("还没有收到意见")

    # the resident reads the draft on next month's calendar and comments
    home = device("resident")
    home.login("居民", phone, PASSWORD)
    mine = home.open("/resident/activities")
    mine.get_by_role("link", name="活动计划").click()
    mine.get_by_role("button", name="下个月").click()
    consulting = mine.get_by_test_id("consulting-plans")
    expect(consulting).to_contain_text("理论宣讲进小院")
    expect(consulting).to_contain_text("征求意见中")
    home.settle()
    assert not home.accessibility_violations()
    consulting.get_by_role("button", name="提意见").first.click()
    mine.get_by_label("我的意见").fill("集中日能不能改到周六，上班的人也能参加")
    home.settle()
    assert not home.accessibility_violations()
    mine.get_by_role("button", name="提交意见").click()
    expect(mine.get_by_role("status")).to_contain_text("意见已提交，感谢参与")
    home.shot("resident-plan-consultation")

    # the admin reads it; publishing waits for the deadline, which the service's clock decides
    page.reload()
    comments = page.get_by_test_id("plan-comments")
    expect(comments).to_contain_text("集中日能不能改到周六")
    expect(comments).to_contain_text(f"居民 · {world.courtyards[0].name}")
    page.get_by_role("button", name="发布计划").click()
    expect(page.get_by_role("alert")).to_contain_text("征求意见尚未截止，截止后才能发布")
    desk.settle()
    assert not desk.accessibility_violations()
    app_clock.advance(2 * 86400 + 120)
    try:
        page.get_by_role("button", name="发布计划").click()
        expect(page.get_by_test_id("plan-head")).to_contain_text("已发布")
    finally:
        app_clock.set(0)
    desk.shot("admin-plan-published")

    # the activity the first entry became, planned afterwards, is linked to it
    world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=world.stations[0].unit_id, title="理论宣讲：乡村振兴", category=c.SERVICE_CATEGORY_LECTURE_THEORY,
        starts_at=to_timestamp(dt.datetime.combine(first + dt.timedelta(days=5), dt.time(1), dt.UTC)),
        ends_at=to_timestamp(dt.datetime.combine(first + dt.timedelta(days=5), dt.time(3), dt.UTC)), resident_capacity=30),
        metadata=world.as_admin(world.stations[0]), timeout=10)
    page.get_by_role("button", name="为「理论宣讲进小院」关联活动").click()
    choice = page.locator("option", has_text="理论宣讲：乡村振兴")
    expect(choice).to_have_count(1)
    page.get_by_label("活动", exact=True).select_option(choice.get_attribute("value"))
    desk.settle()
    assert not desk.accessibility_violations()
    page.get_by_role("button", name="保存").click()
    expect(entries).to_contain_text("已关联活动")

    # on the resident's calendar: by week, and the whole month
    mine.reload()
    mine.get_by_role("button", name="下个月").click()
    week = mine.locator("[data-week]", has_text="理论宣讲进小院")
    expect(week).to_contain_text("讲理论")
    expect(week.get_by_role("link", name="查看活动「理论宣讲进小院」")).to_be_visible()
    expect(mine.get_by_test_id("consulting-plans")).to_have_count(0)
    mine.get_by_role("tab", name="全月").click()
    listed = mine.get_by_test_id("month-entries")
    expect(listed).to_contain_text("理论宣讲进小院")
    expect(listed).to_contain_text("志愿服务集中日")
    home.settle()
    assert not home.accessibility_violations()
    home.shot("resident-plan-calendar")
