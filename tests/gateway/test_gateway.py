"""The gateway over real HTTP in front of the real registration service."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import openpyxl

import pytest

from services.common.clock import CHINA
from tests.support.registration import PASSWORD, new_phone
from wenming.common.v1 import common_pb2 as c

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
OTHER_UPSTREAMS_OFF = {f"{name.upper()}_GRPC_TARGET": "" for name in ("ordering", "points", "training", "media",
                                                                       "notification")}


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


def fetch_file(gateway, service: str, job_id: str, token: str | None):
    """(status, file or JSON error, headers) of GET /api/v1/<service>/exports/<job_id>/file."""
    req = urllib.request.Request(f"{gateway.http_base}/api/v1/{service}/exports/{job_id}/file",
                                 headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as reply:
            return reply.status, reply.read(), dict(reply.headers)
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read()), dict(err.headers)


def test_login_and_an_authorized_call_through_rest(gateway, module_district):
    status, body, _ = call(gateway, "/api/v1/registration/Login", {
        "district_id": module_district.id, "kind": "PRINCIPAL_KIND_ADMIN", "login": "center-admin",
        "password": PASSWORD})
    assert status == 200 and body["claims"]["role"] == "ROLE_UNIT_ADMIN"
    token = body["accessToken"]  # proto3 JSON: lowerCamelCase out, either spelling in
    status, body, _ = call(gateway, "/api/v1/registration/GetUnit", {"unitId": module_district.center_id}, token)
    assert status == 200 and body["unit"]["level"] == "UNIT_LEVEL_CENTER"
    status, body, _ = call(gateway, "/api/v1/registration/GetUnitStats", {}, token)
    assert status == 200 and body["unit"]["unitId"] == module_district.center_id
    # fields at their defaults are written too, so a client needs no defaults of its own
    assert body["volunteersSuspended"] == "0" and body["institutes"] == "0"


def test_errors_map_to_http_with_the_fields_named(gateway, module_district):
    token = module_district.center_admin_token
    status, body, _ = call(gateway, "/api/v1/registration/CreateUnit",
                           {"parent_unit_id": module_district.center_id, "name": "", "level": "UNIT_LEVEL_STATION"},
                           token)
    assert status == 400 and body["error"]["status"] == "INVALID_ARGUMENT" and body["error"]["code"] == 400
    [bad_request] = body["error"]["details"]
    assert bad_request["@type"] == "type.googleapis.com/google.rpc.BadRequest"
    assert {"name"} <= {v["field"] for v in bad_request["fieldViolations"]}
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


def test_every_path_answers_json_errors(gateway):
    for path, method, status in [("/nowhere", "GET", 404), ("/api/v1/registration/GetUnit", "GET", 405),
                                 ("/api/v1/registration/GetUnit", "PUT", 405), ("/api", "GET", 404)]:
        code, body, headers = call(gateway, path, method=method)
        assert code == status and headers["Content-Type"].startswith("application/json"), (path, method)
        assert body["error"]["code"] == status and body["error"]["status"] in ("NOT_FOUND", "METHOD_NOT_ALLOWED")


def test_an_openapi_document_describes_every_rpc_and_the_replies_match_it(gateway, module_district):
    from jsonschema import Draft202012Validator, FormatChecker
    from openapi_spec_validator import validate

    status, document, _ = call(gateway, "/api/v1/openapi.json", method="GET")
    assert status == 200
    validate(document)
    registration = {p.rsplit("/", 1)[-1] for p in document["paths"] if p.startswith("/api/v1/registration/")}
    assert {"Login", "GetUnitStats", "SearchVolunteers"} <= registration
    operation = document["paths"]["/api/v1/registration/GetUnitStats"]["post"]
    reply_schema = operation["responses"]["200"]["content"]["application/json"]["schema"]
    status, body, _ = call(gateway, "/api/v1/registration/GetUnitStats", {}, module_district.center_admin_token)
    Draft202012Validator({**reply_schema, "components": document["components"]},
                         format_checker=FormatChecker()).validate(body)
    status, body, _ = call(gateway, "/api/v1/registration/CreateUnit", {"name": ""}, module_district.center_admin_token)
    error_schema = document["components"]["responses"]["Error"]["content"]["application/json"]["schema"]
    Draft202012Validator(error_schema).validate(body)
    with urllib.request.urlopen(f"{gateway.http_base}/app/api-docs/", timeout=10) as reply:
        assert b"swagger-ui-bundle.js" in reply.read()


def test_a_sheet_is_checked_and_imported_through_rest(gateway, module_district):
    """The onboarding RPCs need nothing of the gateway's own: file bytes travel as base64."""
    district, token = module_district, module_district.center_admin_token
    status, body, _ = call(gateway, "/api/v1/registration/GetImportTemplate",
                           {"kind": "IMPORT_KIND_RESIDENTS", "format": "IMPORT_FORMAT_CSV"}, token)
    assert status == 200 and body["headers"] == ["姓名", "手机号", "所属小院"]
    institute = district.unit(district.center_id, "导入所", c.UNIT_LEVEL_INSTITUTE)
    station = district.unit(institute.unit_id, "导入站", c.UNIT_LEVEL_STATION)
    district.unit(station.unit_id, "导入小院", c.UNIT_LEVEL_COURTYARD)
    sheet = base64.b64decode(body["content"]) + f"王五,{new_phone()},导入站/导入小院\n张六,123,导入小院\n".encode()
    file = {"fileName": "群众.csv", "content": base64.b64encode(sheet).decode()}
    status, body, _ = call(gateway, "/api/v1/registration/CheckImport", {"kind": "IMPORT_KIND_RESIDENTS", "file": file},
                           token)
    assert status == 200 and (body["rows"], body["validRows"], body["markedCells"]) == (2, 1, 1)
    assert body["issues"] == [{"row": 3, "column": "手机号", "reason": "应为11位大陆手机号（13–19开头）",
                               "alreadyRegistered": False}]
    status, body, _ = call(gateway, "/api/v1/registration/StartImport", {"kind": "IMPORT_KIND_RESIDENTS", "file": file},
                           token)
    assert status == 200 and body["job"]["totalRows"] == 2
    deadline = time.monotonic() + 60
    while body["job"]["state"] != "IMPORT_JOB_STATE_DONE" and time.monotonic() < deadline:
        time.sleep(0.3)
        status, body, _ = call(gateway, "/api/v1/registration/GetImportJob", {"jobId": body["job"]["jobId"]}, token)
    assert (body["job"]["registered"], body["job"]["refused"]) == (1, 1)


def test_an_export_is_downloaded_as_a_named_xlsx_file(gateway, module_district):
    """The roster's file streams through GET …/exports/<job>/file with its type and Chinese name;
    another station's admin gets 403, an unready or unknown job the JSON errors."""
    district = module_district
    institute = district.unit(district.center_id, "导出所", c.UNIT_LEVEL_INSTITUTE)
    stations = [district.unit(institute.unit_id, f"导出站{i}", c.UNIT_LEVEL_STATION) for i in range(2)]
    yard = district.unit(stations[0].unit_id, "导出小院", c.UNIT_LEVEL_COURTYARD)
    district.volunteer(yard.unit_id, name="导出志愿者")
    mine, theirs = (district.admin(s, f"export-admin{i}") for i, s in enumerate(stations))
    status, body, _ = call(gateway, "/api/v1/registration/StartRosterExport", {}, mine)
    assert status == 200 and body["job"]["unit"]["unitId"] == stations[0].unit_id
    job_id = body["job"]["jobId"]
    deadline = time.monotonic() + 60
    while body["job"]["state"] != "EXPORT_JOB_STATE_DONE" and time.monotonic() < deadline:
        time.sleep(0.3)
        status, body, _ = call(gateway, "/api/v1/registration/GetExportJob", {"jobId": job_id}, mine)
    assert body["job"]["rowsDone"] == 1

    def fetch(token: str | None, job: str = job_id):
        return fetch_file(gateway, "registration", job, token)

    status, content, headers = fetch(mine)
    assert status == 200 and headers["Content-Type"] == XLSX and headers["Cache-Control"] == "no-store"
    assert headers["Content-Disposition"] == (
        f"attachment; filename=\"{job_id}.xlsx\"; filename*=UTF-8''"
        f"{urllib.parse.quote(body['job']['fileName'], safe='')}")
    sheet = openpyxl.load_workbook(io.BytesIO(content)).worksheets[0]
    assert sheet["B2"].value == "导出志愿者"
    assert fetch(theirs)[0] == 403 and fetch(None)[0] == 401
    status, error, _ = fetch(mine, "exp_unknown")
    assert status == 404 and error["error"]["status"] == "NOT_FOUND"


def test_the_app_is_served_with_its_routes_and_cache_rules(gateway, module_district):
    def get(path: str):
        try:
            with urllib.request.urlopen(f"{gateway.http_base}{path}", timeout=10) as reply:
                return reply.status, reply.read(), reply.headers, reply.url
        except urllib.error.HTTPError as err:
            return err.code, err.read(), err.headers, path

    status, page, headers, _ = get("/app/")
    assert status == 200 and b'lang="zh-CN"' in page and headers["Cache-Control"] == "no-cache"
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    # a shared link or a reload of any page of the app opens the app
    assert get("/app/admin/orders/ord_123")[1] == page
    asset = re.search(rb'/app/(assets/index-[^"]+\.js)', page).group(1).decode()
    status, _, headers, _ = get(f"/app/{asset}")
    assert status == 200 and "immutable" in headers["Cache-Control"]
    assert get("/app/assets/../../../etc/passwd")[0] == 404
    # the old dashboard address and the root lead into the app
    assert get("/dashboard")[3].endswith("/app/admin/center") and get("/")[3].endswith("/app/")
    status, body, _ = call(gateway, "/app/config.json", method="GET")
    assert status == 200 and body == {"districtId": "", "districtName": "", "regionReports": False}


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


def test_every_upstream_answers_through_rest_and_a_down_one_only_fails_readiness(gateway_with_peers, module_district):
    token = module_district.center_admin_token
    deadline = time.monotonic() + 60

    def settled(path: str, expected: int):
        """The answer once the peer has learned the new district (from registration's events):
        each peer on its own time, so each is waited for."""
        while True:
            status, body, _ = call(gateway_with_peers, path, {}, token)
            if status == expected or time.monotonic() > deadline:
                return status, body
            time.sleep(1)

    # a new district has no orders yet (int64 numbers are JSON strings)
    status, body = settled("/api/v1/ordering/GetOrderStats", 200)
    assert (status, body) == (200, {"inProgress": [], "overdue": "0", "slaBreachesLast30Days": "0"})
    status, body = settled("/api/v1/points/GetPointRules", 200)
    assert status == 200 and len(body["rules"]["starThresholdHours"]) == 5
    status, body = settled("/api/v1/training/GetRotationReport", 409)
    assert status == 409 and body["error"]["status"] == "FAILED_PRECONDITION"  # no rotation policy set yet
    status, body, _ = call(gateway_with_peers, "/api/v1/media/ListAssets", {}, token)
    assert status == 503 and body["error"]["status"] == "UNAVAILABLE"
    status, ready_body, _ = call(gateway_with_peers, "/readyz", method="GET")
    assert status == 503 and ready_body["checks"]["media"] is False


def test_a_points_export_is_downloaded_through_the_same_route(gateway_with_peers, module_district):
    """The 三级创建 scorecards, started and followed through REST, stream from
    GET /api/v1/points/exports/<job>/file as registration's roster does."""
    token = module_district.center_admin_token
    deadline = time.monotonic() + 60
    status, body, _ = call(gateway_with_peers, "/api/v1/points/StartScorecardExport", {}, token)
    while status == 404 and time.monotonic() < deadline:  # points has not learned the new district's center yet
        time.sleep(1)
        status, body, _ = call(gateway_with_peers, "/api/v1/points/StartScorecardExport", {}, token)
    assert status == 200 and body["job"]["kind"] == "EXPORT_KIND_SCORECARDS"
    job_id = body["job"]["jobId"]
    while body["job"]["state"] != "EXPORT_JOB_STATE_DONE" and time.monotonic() < deadline:
        time.sleep(0.3)
        status, body, _ = call(gateway_with_peers, "/api/v1/points/GetExportJob", {"jobId": job_id}, token)
    assert body["job"]["state"] == "EXPORT_JOB_STATE_DONE"

    status, content, headers = fetch_file(gateway_with_peers, "points", job_id, token)
    assert status == 200 and headers["Content-Type"] == XLSX and headers["Cache-Control"] == "no-store"
    assert urllib.parse.quote(body["job"]["fileName"], safe="") in headers["Content-Disposition"]
    book = openpyxl.load_workbook(io.BytesIO(content))
    assert book.sheetnames == [f"三级创建 {dt.datetime.now(CHINA).year}年", "评分明细"]
    assert book.worksheets[0].max_row == 1 + body["job"]["rowsDone"]  # the header and one row per unit
    assert fetch_file(gateway_with_peers, "points", job_id, None)[0] == 401
