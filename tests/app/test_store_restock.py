"""积分超市补货 in the app: the admin of the station that runs a store restocks an item with goods a
慈善超市 donated — the page refuses a bad quantity before sending; the first answer is lost on the
way back; the form closed and opened again is the same form, and a double tap retries with its one
idempotency key, so points adds the stock once (read back through ListStoreItems) — and the admin of the sibling station is refused,
on the page and by RestockStoreItem, with nothing added."""

from __future__ import annotations

import uuid

import grpc
import pytest
from playwright.sync_api import expect

from tests.support.grpc_helpers import expect_error
from tests.support.registration import PASSWORD
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2, points_pb2_grpc

STORE_ADMIN = "station1-admin"  # the second station's admin (tests.support.registration.small_tree)
OTHER_ADMIN = "station0-admin"  # its sibling's
DONOR = "凉州区慈善超市"


@pytest.fixture(scope="module")
def points(peers):
    with grpc.insecure_channel(peers["points"].grpc_target) as channel:
        yield points_pb2_grpc.PointsServiceStub(channel)


def test_a_store_admin_restocks_once_per_form_and_another_units_admin_is_refused(world, points, device):
    station = world.stations[1]
    name = f"环保布袋{uuid.uuid4().hex[:4]}"
    item = points.CreateStoreItem(points_pb2.CreateStoreItemRequest(unit_id=station.unit_id, name=name,
                                                                    price_points=20, stock=3),
                                  metadata=world.as_admin(station), timeout=5).item

    def stored() -> points_pb2.StoreItem:
        items = points.ListStoreItems(points_pb2.ListStoreItemsRequest(unit_id=station.unit_id, include_inactive=True,
                                                                       page=c.PageRequest(page_size=100)),
                                      metadata=world.as_admin(station), timeout=5).items
        return next(i for i in items if i.item_id == item.item_id)

    admin = device("store-admin")
    admin.login("管理员", STORE_ADMIN, PASSWORD)
    page = admin.open("/admin/me")
    page.get_by_text("积分超市补货").click()
    row = page.locator(f"[data-store-item='{item.item_id}']")
    expect(row).to_contain_text("20 积分 · 库存 3")
    admin.settle()
    assert not admin.accessibility_violations()

    row.get_by_role("button", name=f"补货：{name}").click()
    form = page.get_by_role("dialog", name="补货")
    expect(form).to_contain_text("现有库存 3")
    form.get_by_label("补货数量").fill("0")
    form.get_by_role("button", name="确认补货").click()
    expect(form.get_by_text("补货数量应为1至100000的整数")).to_be_visible()
    form.get_by_label("补货数量").fill("5")
    form.get_by_role("radio", name="慈善超市捐赠").click()
    form.get_by_role("button", name="确认补货").click()
    expect(form.get_by_text("慈善超市名称应为2至40个字")).to_be_visible()
    form.get_by_label("慈善超市", exact=True).fill(DONOR)
    admin.settle()
    assert not admin.accessibility_violations()  # the form with its refusals

    # the restock reaches points, its answer is lost: the form keeps its key for the retry
    admin.lose_next_answer("points/RestockStoreItem")
    form.get_by_role("button", name="确认补货").click()
    expect(page.get_by_text("网络连接失败，请检查网络后重试")).to_be_visible()
    assert stored().stock == 8  # added once already
    form.get_by_role("button", name="关闭").click()  # closed and opened again: the same form, the same key
    expect(form).to_be_hidden()
    row.get_by_role("button", name=f"补货：{name}").click()
    expect(form.get_by_label("补货数量")).to_have_value("5")
    form.get_by_role("button", name="确认补货").dblclick()  # a double tap of the same form
    expect(page.get_by_text(f"「{name}」已补货 5 件")).to_be_visible()
    expect(row).to_contain_text("库存 8 · 累计受赠 5")
    expect(form).to_be_hidden()
    after = stored()
    assert (after.stock, after.donated_stock) == (8, 5)
    admin.shot("head-store-restock")

    # another station's admin: the store's list and the restock itself are refused, nothing added
    other = device("other-admin")
    other.login("管理员", OTHER_ADMIN, PASSWORD)
    refused = other.open(f"/admin/store?unit={station.unit_id}")
    expect(refused.get_by_text("您没有权限查看或办理此事项")).to_be_visible()
    other.settle()
    assert not other.accessibility_violations()
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        points.RestockStoreItem(points_pb2.RestockStoreItemRequest(item_id=item.item_id, quantity=5,
                                                                   idempotency_key=f"rs-{uuid.uuid4().hex}"),
                                metadata=world.as_admin(world.stations[0]), timeout=5)
    assert stored().stock == 8
    assert not admin.unexpected_faults() and not other.unexpected_faults()
