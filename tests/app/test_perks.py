"""礼遇 and 爱心商家 in the app: the center's admin registers a merchant (the page refuses a bad
phone before sending) and gives one-star volunteers 20 % off its items with a free service; a
courtyard's store offers the merchant's item and one reserved for two stars; a one-star volunteer
sees 我的礼遇 with what the second star brings, the discounted price in the 积分超市, redeems at
that price, and finds the reserved item closed to them."""

from __future__ import annotations

import grpc
import pytest
from playwright.sync_api import expect

from tests.points.support import Feed
from tests.support.registration import PASSWORD
from tests.support.waiting import wait_until
from wenming.points.v1 import points_pb2, points_pb2_grpc

MERCHANT = "爱心面包房"


@pytest.fixture(scope="module")
def points(peers):
    with grpc.insecure_channel(peers["points"].grpc_target) as channel:
        yield points_pb2_grpc.PointsServiceStub(channel)


@pytest.fixture(scope="module")
def starred(world, points, stack):
    """A volunteer of the first courtyard with one star (100 verified hours, 1000 points)."""
    yard, station = world.courtyards[0], world.stations[0]
    made = world.volunteer(yard, name="郑星")
    feed = Feed(stack.kafka)
    try:
        feed.verified_hours(world.district.id, made.id, 100, courtyard=yard, station=station)
    finally:
        feed.close()
    account = points_pb2.GetAccountRequest(account_id=made.id)
    wait_until(lambda: points.GetAccount(account, metadata=world.as_admin(yard), timeout=5).account.star_level == 1,
               timeout=60, what="the volunteer's first star")
    return made


def test_the_center_sets_perks_a_volunteer_sees_and_uses_them(world, starred, points, device):
    admin = device("center")
    admin.login("管理员", "center-admin", PASSWORD)
    page = admin.open("/admin/perks")
    expect(page.get_by_text("还没有登记爱心商家")).to_be_visible()
    admin.settle()
    assert not admin.accessibility_violations()

    page.get_by_label("商家名称").fill(MERCHANT)
    page.get_by_label("地址").fill("凉州区东大街12号")
    page.get_by_label("联系人").fill("李师傅")
    page.get_by_label("联系电话").fill("1381234")
    page.get_by_role("button", name="登记商家").click()
    expect(page.get_by_text("请填写11位手机号码")).to_be_visible()
    page.get_by_label("联系电话").fill("13812345678")
    page.get_by_role("button", name="登记商家").dblclick()  # one form, one key: one merchant
    merchants = page.get_by_test_id("merchants")
    expect(merchants).to_contain_text(MERCHANT)
    expect(merchants).to_contain_text("李师傅 13812345678")  # in full for the registering unit's admin
    expect(merchants.locator(".van-cell")).to_have_count(1)

    page.get_by_label("最低星级").fill("1")
    page.get_by_label("优惠（%）").fill("20")
    page.get_by_label("限定商家").select_option(label=MERCHANT)
    page.get_by_label("免费服务").fill("生日蛋糕免费裱花")
    page.get_by_role("button", name="添加礼遇").click()
    rules = page.get_by_test_id("perk-rules")
    expect(rules).to_contain_text(f"「{MERCHANT}」的物品8折兑换 · 生日蛋糕免费裱花")
    page.get_by_label("最低星级").fill("2")
    page.get_by_label("优惠（%）").fill("0")
    page.get_by_label("免费服务").fill("免费体检、景区免票")
    page.get_by_role("button", name="添加礼遇").click()
    expect(rules).to_contain_text("免费体检、景区免票")
    admin.shot("head-perks")

    merchant = points.ListMerchants(points_pb2.ListMerchantsRequest(), metadata=world.as_center(), timeout=5).merchants[0]
    yard = world.courtyards[0]
    points.CreateStoreItem(points_pb2.CreateStoreItemRequest(
        unit_id=yard.unit_id, name="全麦面包", price_points=50, stock=5, merchant_id=merchant.merchant_id),
        metadata=world.as_admin(yard), timeout=5)
    points.CreateStoreItem(points_pb2.CreateStoreItemRequest(
        unit_id=yard.unit_id, name="体检套餐", price_points=30, stock=5, min_star_level=2),
        metadata=world.as_admin(yard), timeout=5)

    phone = device("volunteer")
    phone.login("志愿者", starred.phone, PASSWORD)
    me = phone.open("/volunteer/me")
    perks = me.get_by_test_id("my-perks")
    expect(perks).to_contain_text(f"「{MERCHANT}」的物品8折兑换")
    expect(me.get_by_test_id("next-perks")).to_contain_text("免费体检、景区免票")
    perks.get_by_role("button", name="去积分超市兑换").click()
    bread = me.locator(".card", has_text="全麦面包")
    expect(bread).to_contain_text(f"爱心商家：{MERCHANT}")
    expect(bread.get_by_test_id("your-price")).to_have_text("40 积分")
    checkup = me.locator(".card", has_text="体检套餐")
    expect(checkup).to_contain_text("仅限2星及以上志愿者兑换")
    expect(checkup.get_by_role("button", name="星级未到")).to_be_disabled()
    phone.settle()
    assert not phone.accessibility_violations()
    phone.shot("volunteer-store-perks")

    bread.get_by_role("button", name="兑换", exact=True).click()
    expect(me.locator(".van-dialog")).to_contain_text("用 40 积分兑换「全麦面包」× 1？")
    me.locator(".van-dialog").get_by_role("button", name="确认").click()
    expect(me.locator(".van-dialog")).to_contain_text("取货码")
    me.locator(".van-dialog").get_by_role("button", name="确认").click()
    redeemed = points.ListRedemptions(points_pb2.ListRedemptionsRequest(account_id=starred.id),
                                      metadata=world.as_admin(yard), timeout=5).redemptions
    assert [(r.cost_points, r.discount_percent) for r in redeemed] == [(40, 20)]
    assert not phone.unexpected_faults()

    # the center suspends the merchant: a reason too short is refused in the sheet, then it stands
    page.get_by_role("button", name=f"暂停{MERCHANT}").click()
    sheet = page.get_by_role("dialog", name="商家合作状态")
    expect(sheet).to_contain_text(f"暂停合作：{MERCHANT}")
    sheet.get_by_label("原因").fill("停")
    sheet.get_by_role("button", name="确定").click()
    expect(sheet.get_by_text("原因应为2至200个字")).to_be_visible()
    assert not admin.accessibility_violations()
    sheet.get_by_label("原因").fill("停业整顿")
    sheet.get_by_role("button", name="确定").click()
    expect(merchants).to_contain_text("已暂停")
    assert points.ListMerchants(points_pb2.ListMerchantsRequest(), metadata=world.as_center(),
                                timeout=5).merchants[0].status == points_pb2.MERCHANT_STATUS_SUSPENDED
