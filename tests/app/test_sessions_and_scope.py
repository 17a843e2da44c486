"""Who sees what, and what is left on screen: a station head sees only their subtree (the URL
cannot widen it); logging out or an expired session returns to the login page with a Chinese
notice and nothing of the previous user; a service that is down is said so in Chinese."""

from __future__ import annotations

import json
import re
import urllib.request

import pytest
from playwright.sync_api import expect

from tests.support.grpc_helpers import bearer
from tests.support.registration import PASSWORD, new_phone
from wenming.registration.v1 import registration_pb2 as reg

from tests.support.waiting import wait_until

from .conftest import gateway_env


def _alive(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=1):
            return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def two_stations(world):
    """An order waiting at a courtyard of each station."""
    placed = {}
    for yard in (world.courtyards[0], world.courtyards[2]):
        phone = new_phone()
        resident, _ = world.district.resident(yard.unit_id, phone=phone, name="钱大爷")
        world.wait_resident_known(resident.resident_id)
        token = bearer(world.district.login(reg.PRINCIPAL_KIND_RESIDENT, phone))
        placed[yard.unit_id] = (world.place(token, "haircut", note="理发"), phone)
    return placed


def test_a_station_head_sees_only_their_subtree(world, two_stations, device):
    mine, theirs = world.stations
    own_order = two_stations[world.courtyards[0].unit_id][0]
    other_order = two_stations[world.courtyards[2].unit_id][0]
    head = device("station-head")
    head.login("管理员", "station0-admin", PASSWORD)
    page = head.page
    page.get_by_role("tab", name="下级全部").click()
    expect(page.locator(f"[data-order-id='{own_order.order_id}']")).to_be_visible()
    expect(page.locator(f"[data-order-id='{other_order.order_id}']")).to_have_count(0)

    # the 指挥调度中心 drills down inside the subtree, and the URL keeps the unit
    head.open("/admin/center")
    expect(page.get_by_test_id("center-unit")).to_have_text(mine.name)
    page.locator(f"[data-unit-id='{world.courtyards[1].unit_id}']").click()
    expect(page.get_by_test_id("center-unit")).to_have_text(world.courtyards[1].name)
    assert f"unit={world.courtyards[1].unit_id}" in page.url
    page.reload()
    expect(page.get_by_test_id("center-unit")).to_have_text(world.courtyards[1].name)
    page.get_by_role("button", name="上一级").click()
    expect(page.get_by_test_id("center-unit")).to_have_text(mine.name)
    expect(page.get_by_role("button", name="上一级")).to_have_count(0)  # never above their own unit

    # another station by URL: refused, in Chinese, with nothing of it shown
    head.open(f"/admin/center?unit={theirs.unit_id}")
    expect(page.get_by_role("alert").first).to_contain_text("没有权限")
    expect(page.get_by_text(theirs.name)).to_have_count(0)
    head.open(f"/admin/orders/{other_order.order_id}")
    expect(page.get_by_role("alert")).to_contain_text("没有权限")
    expect(page.get_by_text("受理", exact=True)).to_have_count(0)


def test_logging_out_leaves_nothing_of_the_user_and_the_next_one_sees_only_their_own(world, two_stations, device):
    (first_order, first_phone), (second_order, second_phone) = two_stations.values()
    phone = device("shared-phone")
    phone.login("居民", first_phone, PASSWORD)
    page = phone.page
    phone.open("/resident/orders")
    expect(page.locator(f"[data-order-id='{first_order.order_id}']")).to_be_visible()

    phone.open("/resident/me")
    page.get_by_text("退出登录").click()
    page.get_by_role("button", name="确认").click()
    page.wait_for_url(re.compile(r"/app/login"))
    expect(page.get_by_role("status")).to_contain_text("已退出登录")
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    page.go_back()
    page.wait_for_url(re.compile(r"/app/login"))
    expect(page.locator(f"[data-order-id='{first_order.order_id}']")).to_have_count(0)

    phone.login("居民", second_phone, PASSWORD)
    phone.open("/resident/orders")
    expect(page.locator(f"[data-order-id='{second_order.order_id}']")).to_be_visible()
    expect(page.locator(f"[data-order-id='{first_order.order_id}']")).to_have_count(0)


def test_an_expired_session_returns_to_the_login_page_saying_so(world, two_stations, device):
    order, resident_phone = next(iter(two_stations.values()))
    phone = device("expired")
    phone.login("居民", resident_phone, PASSWORD)
    page = phone.page
    phone.open("/resident/orders")
    expect(page.locator(f"[data-order-id='{order.order_id}']")).to_be_visible()
    # the access token and the refresh token both stop being accepted (as after a long absence)
    saved = json.loads(page.evaluate("localStorage.getItem('wenming.session')"))
    saved.update(accessToken="expired-token", refreshToken="spent-refresh-token")
    page.evaluate("s => localStorage.setItem('wenming.session', s)", json.dumps(saved))
    phone.open("/resident/orders")
    page.wait_for_url(re.compile(r"/app/login"))
    expect(page.get_by_role("status")).to_contain_text("登录已过期")
    expect(page.locator(f"[data-order-id='{order.order_id}']")).to_have_count(0)
    assert page.evaluate("localStorage.getItem('wenming.session')") is None


def test_a_service_that_is_down_is_said_so_in_chinese(stack, registration, peers, world, two_stations, device):
    _, resident_phone = next(iter(two_stations.values()))
    broken = stack.service("gateway", port_offset=9, log_name="gateway-ordering-down", extra_env=gateway_env(
        registration, peers, ORDERING_GRPC_TARGET="127.0.0.1:1", APP_DISTRICT_ID=world.district.id))
    broken.start()
    try:
        # alive, never ready: one of its upstreams is down on purpose
        wait_until(lambda: _alive(broken.http_base), what="the gateway to answer /healthz")
        phone = device("ordering-down", base=broken.http_base)
        phone.expect_fault(r"server error 503: .*/api/v1/ordering/")
        phone.expect_fault(r"Failed to load resource: .* status of 503")
        phone.login("居民", resident_phone, PASSWORD)
        alert = phone.page.get_by_role("alert")
        expect(alert).to_contain_text("服务暂时不可用，请稍后再试")
        expect(alert.get_by_role("button", name="重新加载")).to_be_visible()
        phone.shot("service-down")
    finally:
        broken.stop()
