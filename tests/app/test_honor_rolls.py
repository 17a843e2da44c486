"""善行义举榜 in the app: a station's admin compiles a roll (a volunteer of the station and a resident
by name), submits it; the institute's admin sends it back with a reason, which the station's admin
reads, fixes and resubmits; the institute approves; residents of a courtyard below then read it with
names masked, and the volunteer finds it under 我的善行义举. Nothing is public before approval."""

from __future__ import annotations

from playwright.sync_api import expect

from tests.support.registration import PASSWORD, new_phone
from tests.support.waiting import wait_until

STATION_ADMIN = "station0-admin"
INSTITUTE_ADMIN = "inst-admin"
DEED = "每周三为独居老人上门理发，坚持三年。"
REASON = "第二位的事迹请写明时间地点"


def test_a_roll_is_compiled_reviewed_and_read_by_residents(world, device, stack, mongo_client):
    yard = world.courtyards[0]
    volunteer = world.volunteer(yard, name="郑善行")  # registered as 郑善行0, published as 郑**0
    resident_phone = new_phone()
    world.district.resident(yard.unit_id, phone=resident_phone, name="李阿姨")
    media_volunteers = mongo_client[f"{stack.db_prefix}media"].registry_volunteers
    wait_until(lambda: media_volunteers.find_one({"_id": volunteer.id}) is not None,
               what="the volunteer in media's read model")

    admin = device("station")
    admin.login("管理员", STATION_ADMIN, PASSWORD)
    page = admin.open("/admin/honor-rolls")
    expect(page.get_by_text("还没有编制过善行义举榜")).to_be_visible()
    page.get_by_role("button", name="编制新榜单").click()
    expect(page.get_by_label("期间")).to_have_value(this_quarter())
    first = page.get_by_test_id("entry").nth(0)
    first.get_by_role("button", name="选择志愿者").click()
    picker = page.get_by_role("dialog", name="选择志愿者")
    picker.locator(f'[data-volunteer-id="{volunteer.id}"]').click()
    expect(first).to_contain_text("郑善行0")
    first.get_by_label("事迹").fill(DEED)
    page.get_by_role("button", name="再加一位").click()
    second = page.get_by_test_id("entry").nth(1)
    second.get_by_role("radio", name="居民").click()
    second.get_by_label("姓名").fill("张小明")
    second.get_by_label("事迹").fill("好")
    page.get_by_role("button", name="保存榜单").click()
    expect(second.get_by_text("事迹应为5至200个字")).to_be_visible()
    admin.settle()
    assert not admin.accessibility_violations()
    second.get_by_label("事迹").fill("拾到钱包归还失主。")
    page.get_by_role("button", name="保存榜单").click()
    preview = page.locator(".honor-roll")
    expect(preview).to_contain_text("郑**0")
    expect(preview).to_contain_text("张*明")
    expect(preview).not_to_contain_text("张小明")
    row = page.get_by_test_id("my-rolls").locator(".van-cell").first
    expect(row).to_contain_text("草稿")
    row.get_by_role("button", name="提交审核").click()
    expect(row).to_contain_text("待审核")
    expect(page.get_by_test_id("to-review")).to_have_count(0)  # never one's own

    # nothing is public before approval
    resident = device("resident")
    resident.login("居民", resident_phone, PASSWORD)
    honors = resident.open("/resident/honors")
    expect(honors.get_by_text("还没有发布的善行义举榜")).to_be_visible()

    reviewer = device("institute")
    reviewer.login("管理员", INSTITUTE_ADMIN, PASSWORD)
    queue = reviewer.open("/admin/honor-rolls")
    queue.get_by_test_id("to-review").get_by_role("button", name="审核").click()
    dialog = queue.get_by_role("dialog", name="审核榜单")
    expect(dialog).to_contain_text("郑**0")
    dialog.get_by_role("button", name="退回").click()
    expect(dialog.get_by_text("退回时请写明原因")).to_be_visible()
    reviewer.settle()
    assert not reviewer.accessibility_violations()
    dialog.get_by_label("退回原因").fill(REASON)
    dialog.get_by_role("button", name="退回").click()
    expect(queue.get_by_test_id("to-review")).to_have_count(0)

    page.reload()
    row = page.get_by_test_id("my-rolls").locator(".van-cell").first
    expect(row).to_contain_text("已退回")
    expect(row).to_contain_text(f"退回原因：{REASON}")
    row.get_by_role("button", name="修改").click()
    second = page.get_by_test_id("entry").nth(1)
    expect(second.get_by_label("姓名")).to_have_value("张*明")  # kept masked only
    second.get_by_label("事迹").fill("11月3日晚在小院门口拾到钱包，归还失主。")
    page.get_by_role("button", name="保存榜单").click()
    expect(page.locator(".honor-roll")).to_contain_text("11月3日晚")
    row.get_by_role("button", name="提交审核").click()
    expect(row).to_contain_text("待审核")

    queue.reload()
    queue.get_by_test_id("to-review").get_by_role("button", name="审核").click()
    dialog = queue.get_by_role("dialog", name="审核榜单")
    dialog.get_by_role("button", name="通过并发布").click()
    expect(queue.get_by_test_id("to-review")).to_have_count(0)
    admin.shot("admin-honor-rolls")

    honors.reload()
    roll = honors.locator(".honor-roll")
    expect(roll).to_contain_text("测试实践站0")
    expect(roll).to_contain_text("郑**0")
    expect(roll).to_contain_text("11月3日晚在小院门口拾到钱包")
    expect(roll).not_to_contain_text("郑善行0")
    resident.settle()
    assert not resident.accessibility_violations()
    resident.shot("resident-honor-roll")

    phone = device("volunteer")
    phone.login("志愿者", volunteer.phone, PASSWORD)
    me = phone.open("/volunteer/me")
    expect(me.get_by_test_id("my-honors")).to_contain_text(DEED)
    phone.settle()
    assert not phone.accessibility_violations()
    for d in (admin, reviewer, resident, phone):
        assert not d.unexpected_faults()


def this_quarter() -> str:
    """The period the page offers: this quarter, in China time."""
    import datetime as dt

    today = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date()
    return f"{today.year}年第{'一二三四'[(today.month - 1) // 3]}季度"
