"""The gateway over real HTTP in front of the real registration service."""

from __future__ import annotations

import json
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
