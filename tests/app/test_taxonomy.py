"""The district's menu taxonomy in the app: the center's admin finds the national categories,
renames the first, gives it an item (a bad code refused on the page before sending) and marks it
mandatory for stations; a resident's menu then groups by the district's categories and names the
district item; a station's admin may read but not edit. The district goes back to the national
default at the end (the package shares one district)."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.support.registration import PASSWORD, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb


@pytest.fixture
def restored(world):
    """The shared district back on the national default afterwards."""
    made = []
    yield made
    center = world.as_center()
    for item_id in made:
        world.stub.RetireMenuItem(pb.RetireMenuItemRequest(item_id=item_id, reason="测试结束"), metadata=center,
                                  timeout=10)
    taxonomy = world.stub.GetDistrictTaxonomy(pb.GetDistrictTaxonomyRequest(), metadata=center, timeout=10).taxonomy
    if not taxonomy.defaults:
        world.stub.SetDistrictTaxonomy(pb.SetDistrictTaxonomyRequest(expected_version=taxonomy.version),
                                       metadata=center, timeout=10)


def test_the_center_edits_the_taxonomy_and_the_menu_groups_by_it(world, device, restored):
    admin = device("center")
    admin.login("管理员", "center-admin", PASSWORD)
    page = admin.open("/admin/taxonomy")
    expect(page.get_by_role("heading", name="本区服务菜单：10 类 0 项")).to_be_visible()
    expect(page.get_by_text("现为国家默认类别")).to_be_visible()
    admin.settle()
    assert not admin.accessibility_violations()

    first = page.get_by_role("region", name="第1类 讲理论")
    first.get_by_label("类别名称").fill("理论宣讲")
    first = page.get_by_role("region", name="第1类 理论宣讲")
    first.get_by_role("button", name="添加项目").click()
    first.get_by_label("项目1").fill("身边人讲身边事")
    first.get_by_label("项目编码").fill("Bad Code")
    page.get_by_role("button", name="保存分类").click()
    expect(first.get_by_text("编码为2至40位小写字母")).to_be_visible()
    first.get_by_label("项目编码").fill("neighbours_talk")
    first.get_by_role("button", name="设为必办").click()
    expect(first.get_by_label("身边人讲身边事必办的单位层级")).to_have_value("UNIT_LEVEL_STATION")
    first.get_by_label("身边人讲身边事在实践站每月至少场次").fill("2")
    page.get_by_role("button", name="保存分类").click()
    expect(page.get_by_role("heading", name="本区服务菜单：10 类 1 项")).to_be_visible()
    expect(page.get_by_text("现为国家默认类别")).to_have_count(0)
    admin.settle()
    assert not admin.accessibility_violations()
    admin.shot("admin-taxonomy")

    saved = world.stub.GetDistrictTaxonomy(pb.GetDistrictTaxonomyRequest(), metadata=world.as_center(),
                                           timeout=10).taxonomy
    talk = saved.categories[0].items[0]
    assert (saved.version, saved.categories[0].name, talk.code) == (1, "理论宣讲", "neighbours_talk")
    assert [(r.level, r.min_per_month) for r in talk.mandatory] == [(c.UNIT_LEVEL_STATION, 2)]

    item = world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
        name="请身边榜样来讲", district_item_code="neighbours_talk", handling_level=c.UNIT_LEVEL_STATION,
        expected_minutes=60), metadata=world.as_center(), timeout=10).item
    restored.append(item.item_id)

    phone = new_phone()
    resident, _ = world.district.resident(world.courtyards[0].unit_id, phone=phone, name="钱阿姨")
    screen = device("resident")
    screen.login("居民", phone, PASSWORD)
    menu = screen.open("/resident")
    menu.get_by_role("tab", name="理论宣讲").click()
    listed = menu.locator(f"[data-item-id='{item.item_id}'] >> visible=true")
    expect(listed).to_contain_text("身边人讲身边事 · 约1小时")
    expect(menu.get_by_role("tab", name="讲理论")).to_have_count(0)
    expect(menu.get_by_role("tab", name="关爱他人")).to_be_visible()  # the default's names for the rest
    screen.settle()
    assert not screen.accessibility_violations()
    screen.shot("resident-menu-taxonomy")

    station = device("station")
    station.login("管理员", "station0-admin", PASSWORD)
    read_only = station.open("/admin/taxonomy")
    expect(read_only.get_by_text("只有区县新时代文明实践中心的管理员可以修改分类")).to_be_visible()
    expect(read_only.get_by_role("button", name="保存分类")).to_have_count(0)
    station.settle()
    assert not station.accessibility_violations()
