"""Everyone counts: staff register a resident who has no mobile phone (问需台). The record has no
phone and no login, a retry with the same key finds it instead of making a second person, staff
find it by name, and self sign-up still needs a phone."""

from __future__ import annotations

import grpc

from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import PASSWORD, new_phone
from wenming.registration.v1 import registration_pb2 as reg


def _register(district, token: str, courtyard_id: str, name: str, key: str = "", phone: str = "",
              password: str = "") -> reg.Resident:
    return district.stub.RegisterResident(reg.RegisterResidentRequest(
        district_id=district.id, courtyard_unit_id=courtyard_id, name=name, phone=phone, password=password,
        idempotency_key=key), metadata=bearer(token), timeout=10).resident


def _found(district, token: str, query: str) -> list[reg.Resident]:
    return list(district.stub.SearchResidents(reg.SearchResidentsRequest(query=query), metadata=bearer(token),
                                              timeout=10).residents)


def test_staff_register_a_resident_without_a_phone_once_per_key(district):
    tree = district.small_tree()
    yard = tree.courtyards[0]
    station_admin = tree.admins[tree.stations[0].unit_id]

    first = _register(district, station_admin, yard.unit_id, "王奶奶", key="wendesk-1")
    assert first.phone_masked == "" and first.courtyard.unit_id == yard.unit_id
    # the retry of a lost answer finds the same record; the same key for someone else is refused
    assert _register(district, station_admin, yard.unit_id, "王奶奶", key="wendesk-1").resident_id == first.resident_id
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, contains="idempotency_key"):
        _register(district, station_admin, yard.unit_id, "李爷爷", key="wendesk-1")
    # a second person of the same name is a second record (their own key)
    second = _register(district, station_admin, yard.unit_id, "王奶奶", key="wendesk-2")
    assert second.resident_id != first.resident_id
    assert {r.resident_id for r in _found(district, station_admin, "王奶")} == {first.resident_id, second.resident_id}
    got = district.stub.GetResident(reg.GetResidentRequest(resident_id=first.resident_id),
                                    metadata=bearer(station_admin), timeout=5).resident
    assert got.name == "王奶奶" and got.phone_masked == ""

    # the refusals, each naming its field, and nothing written by them
    before = len(_found(district, station_admin, "赵"))
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, contains="idempotency_key"):
        _register(district, station_admin, yard.unit_id, "赵大娘")  # no phone and no key
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, contains="password"):
        _register(district, station_admin, yard.unit_id, "赵大娘", key="wendesk-3", password=PASSWORD)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, contains="phone"):  # self sign-up needs a phone
        district.stub.RegisterResident(reg.RegisterResidentRequest(
            district_id=district.id, courtyard_unit_id=yard.unit_id, name="赵大娘", password=PASSWORD), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, contains="idempotency_key"):  # keys are staff's
        district.stub.RegisterResident(reg.RegisterResidentRequest(
            district_id=district.id, courtyard_unit_id=yard.unit_id, name="赵大娘", phone=new_phone(),
            password=PASSWORD, idempotency_key="self-1"), timeout=10)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):  # another station's admin
        _register(district, tree.admins[tree.stations[1].unit_id], yard.unit_id, "赵大娘", key="wendesk-4")
    assert len(_found(district, station_admin, "赵")) == before == 0

    # staff with a phone number and a key: a retry finds the record, the phone stays unique
    phone = new_phone()
    with_phone = _register(district, station_admin, yard.unit_id, "钱阿姨", key="wendesk-5", phone=phone,
                           password=PASSWORD)
    assert _register(district, station_admin, yard.unit_id, "钱阿姨", key="wendesk-5", phone=phone,
                     password=PASSWORD).resident_id == with_phone.resident_id
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        _register(district, station_admin, yard.unit_id, "钱阿姨", key="wendesk-6", phone=phone, password=PASSWORD)
    assert [r.resident_id for r in _found(district, station_admin, phone[-4:])] == [with_phone.resident_id]
