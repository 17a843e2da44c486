"""家庭户与十星评定 in the app: a courtyard's admin creates 张家 (a double tap creates one), adds a
registered resident found by name, is told clearly that a resident of another household cannot
join, awards all ten stars of the year with a note (十星文明户); the resident sees their own
household's stars on their phone. Both pages pass axe with nothing serious."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import expect

from services.common.clock import CHINA
from tests.support.grpc_helpers import bearer
from tests.support.registration import PASSWORD, new_phone
from wenming.registration.v1 import registration_pb2 as reg

ADMIN = "yard00-admin"  # the first courtyard's admin (tests.support.registration.small_tree)
YEAR = dt.datetime.now(CHINA).year


def test_an_admin_rates_a_ten_star_household_and_its_resident_sees_it(world, device):
    yard = world.courtyards[0]
    district = world.district
    phone = new_phone()
    grandpa, _ = district.resident(yard.unit_id, phone=phone, name="张守礼")
    neighbour, _ = district.resident(yard.unit_id, name="李守信")
    li = district.stub.CreateHousehold(reg.CreateHouseholdRequest(unit_id=yard.unit_id, name="李家",
                                                                  idempotency_key="app-li"),
                                       metadata=world.as_admin(yard), timeout=10).household
    district.stub.AddHouseholdMember(reg.AddHouseholdMemberRequest(household_id=li.household_id,
                                                                   resident_id=neighbour.resident_id),
                                     metadata=world.as_admin(yard), timeout=10)

    admin = device("admin")
    admin.login("管理员", ADMIN, PASSWORD)
    page = admin.open("/admin/households")
    expect(page.get_by_test_id("households")).to_contain_text("李家")
    admin.settle()
    assert not admin.accessibility_violations()

    page.get_by_label("户名").fill("张家")
    page.get_by_label("住址").fill("幸福路12号3单元501")
    page.get_by_role("button", name="建立家庭户").dblclick()  # one form, one key: one household
    card = page.get_by_test_id("household")
    expect(card).to_contain_text("张家")
    expect(card).to_contain_text("幸福路****")

    page.get_by_role("button", name="添加成员").click()
    page.get_by_placeholder("居民姓名、手机号或手机尾号4位").fill("张守礼")
    page.get_by_role("button", name="查找").click()
    page.locator(f"[data-resident-id='{grandpa.resident_id}']").click()
    expect(page.get_by_test_id("members")).to_contain_text("张守礼")
    # a resident of another household is refused, with the rule's own words
    page.get_by_role("button", name="添加成员").click()
    page.get_by_placeholder("居民姓名、手机号或手机尾号4位").fill("李守信")
    page.get_by_role("button", name="查找").click()
    page.locator(f"[data-resident-id='{neighbour.resident_id}']").click()
    expect(page.get_by_text("该居民已是另一户的成员")).to_be_visible()
    expect(page.get_by_test_id("members")).not_to_contain_text("李守信")

    stars = page.get_by_test_id("stars")
    for box in stars.get_by_role("checkbox").all():
        box.click()
    stars.get_by_label("孝老爱亲星说明").fill("照顾卧床老人十年")
    page.get_by_role("button", name="保存评定").click()
    expect(page.get_by_test_id("rating")).to_contain_text("已获 10 / 10 星")
    expect(card).to_contain_text("十星文明户")
    expect(stars.locator("[data-star='孝老爱亲星']")).to_contain_text("测试小院00管理员")
    admin.settle()
    assert not admin.accessibility_violations()
    admin.shot("admin-households")

    page.get_by_role("button", name="返回家庭户列表").click()
    households = page.get_by_test_id("households")
    expect(households.locator(".van-cell", has_text="张家")).to_have_count(1)
    expect(households.locator(".van-cell", has_text="张家")).to_contain_text("十星文明户")

    resident = device("resident")
    resident.login("居民", phone, PASSWORD)
    mine = resident.open("/resident/me")
    mine.get_by_text("我家的文明户评星").click()
    expect(mine.get_by_test_id("rating")).to_contain_text("十星文明户")
    expect(mine.get_by_test_id("rating")).to_contain_text("已获 10 / 10 星")
    expect(mine.get_by_test_id("stars")).to_contain_text("照顾卧床老人十年")
    resident.settle()
    assert not resident.accessibility_violations()
    resident.shot("resident-household")
    own = district.stub.GetHousehold(reg.GetHouseholdRequest(), metadata=bearer(district.login(
        reg.PRINCIPAL_KIND_RESIDENT, phone)), timeout=10).household
    assert own.name == "张家" and own.rating.year == YEAR and own.rating.all_stars
