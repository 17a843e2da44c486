"""The gateway over real HTTP in front of the real registration service."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import pytest

from tests.support.registration import PASSWORD

OTHER_UPSTREAMS_OFF = {f"{name.upper()}_GRPC_TARGET": "" for name in ("ordering", "points", "training", "media")}


@pytest.fixture(scope="module")
def gateway(stack, registration):
    proc = stack.service("gateway", extra_env={"REGISTRATION_GRPC_TARGET": registration.grpc_target,
                                               **OTHER_UPSTREAMS_OFF})
    proc.start()
    try:
        proc.wait_serving(60)
        yield proc
    finally:
        proc.stop()


def call(gateway, path: str, body=None, token: str | None = None, method: str = "POST", raw: bytes | None = None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    req = urllib.request.Request(f"{gateway.http_base}{path}", data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, json.loads(reply.read() or b"null"), dict(reply.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"null"), dict(err.headers)


def test_login_and_an_authorized_call_through_rest(gateway, module_district):
    status, body, _ = call(gateway, "/api/v1/registration/Login", {
        "district_id": module_district.id, "kind": "PRINCIPAL_KIND_ADMIN", "login": "center-admin",
        "password": PASSWORD})
    assert status == 200 and body["claims"]["role"] == "ROLE_UNIT_ADMIN"
    token = body["access_token"]
    status, body, _ = call(gateway, "/api/v1/registration/GetUnit", {"unit_id": module_district.center_id}, token)
    assert status == 200 and body["unit"]["level"] == "UNIT_LEVEL_CENTER"
    status, body, _ = call(gateway, "/api/v1/registration/GetUnitStats", {}, token)
    assert status == 200 and body["unit"]["unit_id"] == module_district.center_id


def test_errors_map_to_http_with_the_fields_named(gateway, module_district):
    token = module_district.center_admin_token
    status, body, _ = call(gateway, "/api/v1/registration/CreateUnit",
                           {"parent_unit_id": module_district.center_id, "name": "", "level": "UNIT_LEVEL_STATION"},
                           token)
    assert status == 400 and body["error"]["code"] == "INVALID_ARGUMENT"
    assert {"name"} <= {v["field"] for v in body["error"]["field_violations"]}
    assert call(gateway, "/api/v1/registration/GetUnit", {"unit_id": module_district.center_id})[0] == 401
    assert call(gateway, "/api/v1/registration/GetUnit", {"unit_id": "unit_nope"}, token)[0] == 404
    assert call(gateway, "/api/v1/registration/Login", {"district_id": module_district.id,
                                                        "kind": "PRINCIPAL_KIND_ADMIN", "login": "center-admin",
                                                        "password": "wrong-password"})[0] == 401


def test_bad_requests_are_refused_before_any_upstream_call(gateway, module_district):
    token = module_district.center_admin_token
    assert call(gateway, "/api/v1/registration/NoSuchMethod", {}, token)[0] == 404
    assert call(gateway, "/api/v1/nosuchservice/Get", {}, token)[0] == 404
    assert call(gateway, "/api/v1/registration/GetUnit", raw=b"{not json", token=token)[0] == 400
    status, body, _ = call(gateway, "/api/v1/registration/GetUnit", {"no_such_field": 1}, token)
    assert status == 400 and "GetUnitRequest" in body["error"]["message"]
    assert call(gateway, "/api/v1/registration/GetUnit", raw=b"x" * (1024 * 1024 + 1), token=token)[0] == 413


def test_dashboard_page_and_overview_for_the_logged_in_admin(gateway, module_district):
    req = urllib.request.Request(f"{gateway.http_base}/dashboard")
    with urllib.request.urlopen(req, timeout=10) as reply:
        page = reply.read().decode()
        assert reply.status == 200 and "指挥调度中心" in page
        assert "default-src 'self'" in reply.headers["Content-Security-Policy"]
    status, body, _ = call(gateway, "/dashboard/api/overview", method="GET", token=module_district.center_admin_token)
    assert status == 200 and body["organization"]["unit"]["unit_id"] == module_district.center_id
    assert call(gateway, "/dashboard/api/overview", method="GET")[0] == 401
    assert call(gateway, "/dashboard/api/overview", method="GET", token="not-a-token")[0] == 401


def test_readiness_and_metrics(gateway):
    status, body, _ = call(gateway, "/readyz", method="GET")
    assert status == 200 and body["checks"] == {"registration": True}
    with urllib.request.urlopen(f"{gateway.http_base}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    assert 'gateway_requests_total{route="registration.GetUnit",status="200"}' in text


@pytest.fixture(scope="module")
def gateway_with_peers(stack, registration):
    """The gateway in front of registration, ordering, points and training (real processes)."""
    peers = [stack.service(name, port_offset=1, log_name=f"{name}-for-gateway")
             for name in ("ordering", "points", "training")]
    for proc in peers:
        proc.start()
    gateway = stack.service("gateway", port_offset=1, log_name="gateway-with-peers", extra_env={
        "REGISTRATION_GRPC_TARGET": registration.grpc_target, **OTHER_UPSTREAMS_OFF,
        **{f"{p.definition.name.upper()}_GRPC_TARGET": p.grpc_target for p in peers},
        # configured but not running: its sections must degrade, not fail the page
        "MEDIA_GRPC_TARGET": "127.0.0.1:1"})
    try:
        for proc in peers:
            proc.wait_serving(90)
        gateway.start()
        deadline = time.monotonic() + 30  # alive, though never ready: media is down on purpose
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"{gateway.http_base}/healthz", timeout=1).close()
                break
            except OSError:
                time.sleep(0.3)
        yield gateway
    finally:
        for proc in [gateway, *peers]:
            proc.stop()


def test_dashboard_gathers_orders_scorecard_leaderboard_and_rotation(gateway_with_peers, module_district):
    def overview() -> dict:
        status, body, _ = call(gateway_with_peers, "/dashboard/api/overview", method="GET",
                               token=module_district.center_admin_token)
        assert status == 200, body
        return body

    deadline = time.monotonic() + 60
    while "同步中" in overview()["training"].get("unavailable", "") and time.monotonic() < deadline:
        time.sleep(1)  # training learns the new district's units from registration's events
    assert "尚未设置轮训周期" in overview()["training"]["unavailable"]
    policy = {"general_cycle_years": 5, "core_cycle_years": 3, "notice_days": 90, "effective_from": "2026-01-01"}
    deadline = time.monotonic() + 60
    while call(gateway_with_peers, "/api/v1/training/SetRotationPolicy", policy,
               module_district.center_admin_token)[0] != 200:  # training learns the district from events
        assert time.monotonic() < deadline
        time.sleep(1)
    deadline = time.monotonic() + 60
    while True:  # the peers learn the new district's units from registration's events
        status, body, _ = call(gateway_with_peers, "/dashboard/api/overview", method="GET",
                               token=module_district.center_admin_token)
        ready = status == 200 and "scorecard" in body.get("incentives", {}) and "rotation" in body.get("training", {})
        if ready or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert ready, body
    assert body["incentives"]["scorecard"]["unit"]["unit_id"] == module_district.center_id
    assert body["incentives"]["scorecard"]["grade_label"] in ("示范级", "达标级", "创建级")
    assert {c["plan"] for c in body["training"]["rotation"]} == {"ROTATION_PLAN_GENERAL", "ROTATION_PLAN_CORE"}
    # a new district has no orders yet (int64 numbers are JSON strings)
    assert body["orders"] == {"in_progress": [], "overdue": "0", "sla_breaches_last_30_days": "0"}
    # a configured upstream that is down makes the gateway not ready, but the page still answers
    status, ready_body, _ = call(gateway_with_peers, "/readyz", method="GET")
    assert status == 503 and ready_body["checks"]["media"] is False
