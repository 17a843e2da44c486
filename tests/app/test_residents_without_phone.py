"""Everyone counts, in the app: at 代群众点单 a station's admin registers an old man who has no mobile
phone — the page refuses a form without a name; the first answer is lost on the way back and the
retry with the form's one key finds the same record — then orders a service for him, which
ordering holds for his courtyard. Nothing of the form is left when the admin starts again."""

from __future__ import annotations

import uuid

from playwright.sync_api import expect

from tests.support.registration import PASSWORD
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.registration.v1 import registration_pb2 as reg

STATION_ADMIN = "station0-admin"  # its courtyards are the tree's first two (tests.support.registration.small_tree)


def test_an_admin_registers_a_resident_without_a_phone_once_and_orders_for_him(world, device):
    courtyard = world.courtyards[1]
    name = f"孙{uuid.uuid4().hex[:2]}爷爷"
    admin = device("wendesk")
    admin.login("管理员", STATION_ADMIN, PASSWORD)
    page = admin.open("/admin/proxy")
    page.get_by_role("button", name="登记居民").click()
    form = page.get_by_role("form", name="登记没有手机的居民")
    form.get_by_role("button", name="登记并代为点单").click()
    expect(form.get_by_text("请填写姓名")).to_be_visible()
    expect(form.get_by_text("请选择所属小院")).to_be_visible()
    form.get_by_label("姓名").fill(name)
    form.get_by_label("所属小院").select_option(label=courtyard.name)
    admin.settle()
    assert not admin.accessibility_violations()  # the form with its refusals

    # registration stores him, its answer is lost: the form keeps its key for the retry
    admin.lose_next_answer("registration/RegisterResident")
    form.get_by_role("button", name="登记并代为点单").click()
    expect(page.get_by_text("网络连接失败，请检查网络后重试")).to_be_visible()
    form.get_by_role("button", name="登记并代为点单").click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.get_by_text(f"无手机 · {courtyard.name}")).to_be_visible()

    found = world.district.stub.SearchResidents(reg.SearchResidentsRequest(query=name),
                                                metadata=world.as_admin(world.stations[0]), timeout=5).residents
    assert [(r.name, r.phone_masked, r.courtyard.unit_id) for r in found] == [(name, "", courtyard.unit_id)]
    resident_id = found[0].resident_id
    world.wait_resident_known(resident_id)  # ordering hears of him before an order names him

    page.locator(f"[data-item-id='{world.items['haircut'].item_id}']").click()
    page.get_by_label("需求说明").fill("老人行动不便，请上门理发")
    admin.settle()
    assert not admin.accessibility_violations()
    page.get_by_role("button", name="代为点单").click()
    page.wait_for_url("**/admin/orders/*")
    order_id = page.url.rsplit("/", 1)[-1]
    order = world.stub.GetOrder(pb.GetOrderRequest(order_id=order_id), metadata=world.as_admin(world.stations[0]),
                                timeout=5).order
    assert order.resident_id == resident_id and order.origin_courtyard.unit_id == courtyard.unit_id

    # starting again shows an empty form
    page = admin.open("/admin/proxy")
    page.get_by_role("button", name="登记居民").click()
    expect(page.get_by_role("form", name="登记没有手机的居民").get_by_label("姓名")).to_have_value("")
