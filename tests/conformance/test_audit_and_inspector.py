"""The audit record across services, the inspector who reads it and changes nothing, and ended
sessions refused by every service."""

from __future__ import annotations

import csv
import datetime as dt
import importlib
import io
import json
import time
import urllib.request

import grpc
import pytest
from google.protobuf import descriptor_pool, timestamp_pb2

from services.common.audit import method_effect
from services.common.ids import new_id
from tests.support.waiting import wait_until
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import PASSWORD, District, new_phone
from wenming.common.v1 import common_pb2
from wenming.notification.v1 import notification_pb2 as notify_pb
from wenming.notification.v1 import notification_pb2_grpc as notify_grpc
from wenming.ordering.v1 import ordering_pb2 as order_pb
from wenming.ordering.v1 import ordering_pb2_grpc as order_grpc
from wenming.registration.v1 import registration_pb2 as reg

SERVICES = {"registration": "wenming.registration.v1.RegistrationService",
            "ordering": "wenming.ordering.v1.OrderingService", "points": "wenming.points.v1.PointsService",
            "training": "wenming.training.v1.TrainingService", "media": "wenming.media.v1.MediaService",
            "notification": "wenming.notification.v1.NotificationService",
            "rollup": "wenming.rollup.v1.RollupService"}
READ, OWN_ACCOUNT = common_pb2.METHOD_EFFECT_READ, common_pb2.METHOD_EFFECT_OWN_ACCOUNT


def _inspector(district: District, username: str = "inspector") -> str:
    district.stub.CreateInspectorAccount(reg.CreateInspectorAccountRequest(
        username=username, password=PASSWORD, display_name="区纪检监督员"), metadata=district.as_center(), timeout=10)
    return district.login(reg.PRINCIPAL_KIND_INSPECTOR, username)


def _records(district: District, token: str, *, at_least: int = 0, timeout: float = 20.0, **filters):
    """The inspector's view, waiting until `at_least` records arrived (they travel through Kafka)."""
    deadline = time.monotonic() + timeout
    while True:
        records = district.stub.ListAuditRecords(reg.ListAuditRecordsRequest(
            filter=reg.AuditFilter(**filters), page=common_pb2.PageRequest(page_size=100)),
            metadata=bearer(token), timeout=10).records
        if len(records) >= at_least or time.monotonic() > deadline:
            return list(records)
        time.sleep(0.3)


def _rest(gateway, service: str, method: str, body: dict, token: str, forwarded_for: str) -> int:
    request = urllib.request.Request(f"{gateway.http_base}/api/v1/{service}/{method}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                                              "X-Forwarded-For": forwarded_for}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as error:
        return error.code


def test_admin_actions_in_two_services_are_recorded_once_each(fleet, fleet_district):
    district = fleet_district
    tree = district.small_tree()
    station, yard = tree.stations[0], tree.courtyards[0]
    station_admin = tree.admins[station.unit_id]
    station_actor = district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=station_admin),
                                              timeout=5).claims.subject
    inspector = _inspector(district)
    # what the setup did (the units, the inspector's own account) may still be on its way through
    # Kafka: the actions under test are told apart by time, not by what has arrived so far
    started = dt.datetime.now(dt.UTC)

    def new(records) -> list:
        return [r for r in records if r.occurred_at.ToDatetime(dt.UTC) >= started]

    # registration: a rename straight over gRPC, a new courtyard through the gateway (behind an ingress)
    district.stub.RenameUnit(reg.RenameUnitRequest(unit_id=yard.unit_id, name="改名的小院"),
                             metadata=bearer(station_admin), timeout=10)
    assert _rest(fleet["gateway"], "registration", "CreateUnit",
                 {"parentUnitId": station.unit_id, "name": "新小院", "level": "UNIT_LEVEL_COURTYARD"},
                 station_admin, "203.0.113.66, 198.51.100.23") == 200
    # ordering: the center's policy, and an order that does not exist (a refused attempt is recorded too)
    with grpc.insecure_channel(fleet["ordering"].grpc_target) as channel:
        ordering = order_grpc.OrderingServiceStub(channel)
        ordering.SetOrderPolicy(order_pb.SetOrderPolicyRequest(rating_window_days=14), metadata=district.as_center(),
                                timeout=10)
        missing_order = new_id("ord")
        with expect_error(grpc.StatusCode.NOT_FOUND):
            ordering.AcknowledgeOrder(order_pb.AcknowledgeOrderRequest(order_id=missing_order),
                                      metadata=bearer(station_admin), timeout=10)
        ordering.ListUnitQueue(order_pb.ListUnitQueueRequest(), metadata=bearer(station_admin), timeout=10)  # a read
    # a resident's own actions are not admin actions
    phone = new_phone()
    _, resident = district.resident(yard.unit_id, phone=phone)
    district.stub.ChangePassword(reg.ChangePasswordRequest(old_password=PASSWORD, new_password="Resident-2026"),
                                 metadata=bearer(resident), timeout=10)
    with grpc.insecure_channel(fleet["notification"].grpc_target) as channel:
        notify_grpc.NotificationServiceStub(channel).MarkInboxRead(notify_pb.MarkInboxReadRequest(all=True),
                                                                   metadata=bearer(resident), timeout=10)

    wait_until(lambda: len(new(_records(district, inspector))) >= 4, what="the four admin actions' records")
    time.sleep(2)  # anything recorded twice would have arrived by now
    records = new(_records(district, inspector))
    by_method = {}
    for record in records:
        by_method.setdefault(record.method.rpartition("/")[2], []).append(record)
    assert sorted(by_method) == ["AcknowledgeOrder", "CreateUnit", "RenameUnit", "SetOrderPolicy"], by_method.keys()
    assert all(len(found) == 1 for found in by_method.values()), "an action recorded more than once"

    rename, create = by_method["RenameUnit"][0], by_method["CreateUnit"][0]
    assert (rename.service, rename.actor_id, rename.actor_role, rename.actor_unit_id, rename.code) == \
        ("registration", station_actor, common_pb2.ROLE_UNIT_ADMIN, station.unit_id, "OK")
    # the object named first, then the ids the answer names (the courtyard's station)
    assert list(rename.object_ids) == [yard.unit_id, station.unit_id] and rename.client_address == "127.0.0.1"
    assert rename.trace_id and rename.district_id == district.id
    # the new unit's id comes from the answer; the address is the one the ingress saw, not the forged one
    assert create.object_ids[0] == station.unit_id and len(create.object_ids) == 2
    assert create.client_address == "198.51.100.23" and create.peer == "127.0.0.1"
    policy, refused = by_method["SetOrderPolicy"][0], by_method["AcknowledgeOrder"][0]
    assert (policy.service, policy.actor_id, policy.code) == ("ordering", district.stub.VerifyToken(
        reg.VerifyTokenRequest(access_token=district.center_admin_token), timeout=5).claims.subject, "OK")
    assert (refused.service, list(refused.object_ids), refused.code) == ("ordering", [missing_order], "NOT_FOUND")
    # never a request body or personal data
    assert "改名的小院" not in str(records) and phone not in str(records)

    # filters: by actor, by object, by time window; newest first, page by page
    assert {r.action_id for r in _records(district, inspector, actor_id=station_actor)} >= \
        {rename.action_id, create.action_id, refused.action_id}
    assert [r.action_id for r in _records(district, inspector, object_id=yard.unit_id)
            if r.occurred_at.ToDatetime(dt.UTC) >= started] == [rename.action_id]
    since = timestamp_pb2.Timestamp()
    since.FromDatetime(create.occurred_at.ToDatetime())
    windowed = _records(district, inspector, since=since)
    assert rename.action_id not in {r.action_id for r in windowed} and create.action_id in {r.action_id for r in windowed}
    pages, token = [], ""
    while True:
        answer = district.stub.ListAuditRecords(reg.ListAuditRecordsRequest(
            page=common_pb2.PageRequest(page_size=2, page_token=token)), metadata=bearer(inspector), timeout=10)
        pages.append([r.action_id for r in answer.records])
        token = answer.page.next_page_token
        if not token:
            break
    listed = [a for page in pages for a in page]
    assert listed == sorted(listed, reverse=True) and len(listed) == len(set(listed)) >= len(records)

    # the CSV export
    export = district.stub.ExportAuditRecords(reg.ExportAuditRecordsRequest(
        filter=reg.AuditFilter(actor_id=station_actor)), metadata=bearer(inspector), timeout=10)
    rows = list(csv.DictReader(io.StringIO(export.csv.decode("utf-8-sig"))))
    assert export.records == len(rows) >= 3 and not export.truncated
    assert {r["action_id"] for r in rows} >= {rename.action_id, create.action_id}
    row = next(r for r in rows if r["action_id"] == create.action_id)
    assert (row["method"], row["actor_role"], row["client_address"]) == \
        ("/wenming.registration.v1.RegistrationService/CreateUnit", "ROLE_UNIT_ADMIN", "198.51.100.23")


def test_the_record_is_for_the_districts_inspectors_only(fleet, fleet_district, registration):
    district = fleet_district
    inspector = _inspector(district, "inspector-own")
    district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=district.center_id, name="审计所",
                                                   level=common_pb2.UNIT_LEVEL_INSTITUTE),
                             metadata=district.as_center(), timeout=10)
    assert _records(district, inspector, at_least=1)
    other = District(registration.grpc_target, registration.env)
    try:
        elsewhere = _inspector(other, "inspector-other")
        seen = _records(other, elsewhere)
        assert all(r.district_id == other.id for r in seen) and not any(r.district_id == district.id for r in seen)
        # admins (the center's included), volunteers and residents are refused
        tree = other.small_tree()
        _, resident = other.resident(tree.courtyards[0].unit_id)
        for token in (other.center_admin_token, tree.admins[tree.stations[0].unit_id], resident):
            with expect_error(grpc.StatusCode.PERMISSION_DENIED):
                other.stub.ListAuditRecords(reg.ListAuditRecordsRequest(), metadata=bearer(token), timeout=10)
            with expect_error(grpc.StatusCode.PERMISSION_DENIED):
                other.stub.ExportAuditRecords(reg.ExportAuditRecordsRequest(), metadata=bearer(token), timeout=10)
        # only the center creates inspectors
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            other.stub.CreateInspectorAccount(reg.CreateInspectorAccountRequest(
                username="not-allowed", password=PASSWORD, display_name="x"),
                metadata=bearer(tree.admins[tree.stations[0].unit_id]), timeout=10)
    finally:
        other.close()
    # bad input names the field
    for bad, field in ((reg.AuditFilter(actor_id="not an id!"), "filter.actor_id"),
                       (reg.AuditFilter(object_id="x" * 300), "filter.object_id"),
                       (reg.AuditFilter(since=timestamp_pb2.Timestamp(seconds=2000), until=timestamp_pb2.Timestamp(
                           seconds=1000)), "filter.until")):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            district.stub.ListAuditRecords(reg.ListAuditRecordsRequest(filter=bad), metadata=bearer(inspector),
                                           timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="page.page_token"):
        district.stub.ListAuditRecords(reg.ListAuditRecordsRequest(page=common_pb2.PageRequest(page_token="%%%")),
                                       metadata=bearer(inspector), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="username"):
        district.stub.CreateInspectorAccount(reg.CreateInspectorAccountRequest(username="X", password=PASSWORD,
                                                                               display_name="x"),
                                             metadata=district.as_center(), timeout=10)


def _call(channel: grpc.Channel, method) -> tuple:
    path = f"/{method.containing_service.full_name}/{method.name}"
    if method.client_streaming:
        call = channel.stream_unary(path, request_serializer=bytes, response_deserializer=bytes)
        arguments = iter([b""])
    elif method.server_streaming:
        call = channel.unary_stream(path, request_serializer=bytes, response_deserializer=bytes)
        arguments = b""
    else:
        call = channel.unary_unary(path, request_serializer=bytes, response_deserializer=bytes)
        arguments = b""
    return call, arguments


def test_an_inspector_is_refused_every_write_of_every_service(fleet, fleet_district):
    district = fleet_district
    inspector = bearer(_inspector(district, "inspector-writes"))
    checked = 0
    for name, service_name in SERVICES.items():
        importlib.import_module(f"wenming.{name}.v1.{name}_pb2")
        service = descriptor_pool.Default().FindServiceByName(service_name)
        with grpc.insecure_channel(fleet[name].grpc_target) as channel:
            for method in service.methods:
                if method_effect(f"/{service_name}/{method.name}") in (READ, OWN_ACCOUNT):
                    continue
                call, arguments = _call(channel, method)
                with pytest.raises(grpc.RpcError) as refused:
                    answer = call(arguments, metadata=inspector, timeout=10)
                    if method.server_streaming:
                        list(answer)
                assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED, \
                    f"{service_name}/{method.name}: {refused.value.code().name} {refused.value.details()}"
                checked += 1
    assert checked > 80  # every write of the six services
    # media's HTTP upload is UploadAsset by another door, under the same rule
    upload = urllib.request.Request(f"{fleet['media'].http_base}/v1/assets", data=b"--b--\r\n", method="POST",
                                    headers={"Authorization": inspector[0][1],
                                             "Content-Type": "multipart/form-data; boundary=b"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(upload, timeout=10)
    assert refused.value.code == 403
    # reading is not refused by the rule (what an inspector may read is each method's own business)
    assert district.stub.ListAuditRecords(reg.ListAuditRecordsRequest(), metadata=inspector, timeout=10) is not None
    with grpc.insecure_channel(fleet["notification"].grpc_target) as channel:
        notify_grpc.NotificationServiceStub(channel).ListInbox(notify_pb.ListInboxRequest(), metadata=inspector,
                                                               timeout=10)


def test_an_ended_session_is_refused_by_every_service(fleet, fleet_district):
    district = fleet_district
    login = district.stub.Login(reg.LoginRequest(district_id=district.id, kind=reg.PRINCIPAL_KIND_ADMIN,
                                                 login="center-admin", password=PASSWORD), timeout=10)
    token = bearer(login.access_token)
    with grpc.insecure_channel(fleet["notification"].grpc_target) as notification, \
            grpc.insecure_channel(fleet["ordering"].grpc_target) as ordering:
        calls = {
            "registration": lambda: district.stub.GetUnit(reg.GetUnitRequest(unit_id=district.center_id),
                                                          metadata=token, timeout=5),
            "notification": lambda: notify_grpc.NotificationServiceStub(notification).ListInbox(
                notify_pb.ListInboxRequest(), metadata=token, timeout=5),
            "ordering": lambda: order_grpc.OrderingServiceStub(ordering).GetOrderPolicy(
                order_pb.GetOrderPolicyRequest(), metadata=token, timeout=5),
        }
        for call in calls.values():
            call()
        district.stub.Logout(reg.LogoutRequest(refresh_token=login.refresh_token), timeout=5)
        started = time.monotonic()
        for name, call in calls.items():
            while True:
                try:
                    call()
                except grpc.RpcError as error:
                    assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "ended" in error.details(), name
                    break
                assert time.monotonic() - started < 10, f"{name} still accepts the ended session's token"
                time.sleep(0.2)
