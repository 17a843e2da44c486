"""名册导入: a unit admin registers a roll of volunteers or residents in one call. Each row is
validated and authorized on its own and reported; the valid ones are registered as the admin's
own registration would register them — personal data encrypted, one event each, found by the
searches — and nobody imported can log in without a password."""

from __future__ import annotations

import grpc
import pytest

from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import new_national_id, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import events_pb2 as ev
from wenming.registration.v1 import registration_pb2 as reg


@pytest.fixture(scope="module")
def tree(module_district):
    return module_district.small_tree()


def _row(unit_id: str, name: str = "导入志愿者", **fields) -> reg.VolunteerImportRow:
    values = {"name": name, "national_id": new_national_id(), "phone": new_phone(),
              "political_status": reg.POLITICAL_STATUS_MASSES, "skills": [c.SKILL_HAIRCUT],
              "service_unit_ids": [unit_id], **fields}
    return reg.VolunteerImportRow(**values)


def test_a_station_imports_its_volunteers_row_by_row(module_district, tree, registration_events, registration_db):
    district = module_district
    station = bearer(tree.admins[tree.stations[0].unit_id])
    yard, other_yard = tree.courtyards[0], tree.courtyards[2]  # courtyard 2 is under station 1
    taken = _row(yard.unit_id, name="已登记")
    district.stub.ImportVolunteers(reg.ImportVolunteersRequest(rows=[taken]), metadata=station, timeout=10)
    twin = new_national_id()
    rows = [_row(yard.unit_id, name="王秀英"), _row(yard.unit_id, national_id="110105199001011234"),
            _row(other_yard.unit_id), _row(yard.unit_id, national_id=taken.national_id),
            _row(tree.courtyards[1].unit_id, name="李建国", national_id=twin),
            _row(yard.unit_id, national_id=twin)]
    reply = district.stub.ImportVolunteers(reg.ImportVolunteersRequest(rows=rows), metadata=station, timeout=30)

    assert reply.registered == 2 and [r.row for r in reply.rows] == list(range(6))
    done = [r for r in reply.rows if r.id]
    assert [r.row for r in done] == [0, 4] and all(r.volunteer_number.startswith("ZY") for r in done)
    assert (reply.rows[1].field, reply.rows[1].id) == ("rows[1].national_id", "")
    assert reply.rows[2].field == "rows[2].service_unit_ids" and "subtree" in reply.rows[2].error
    for refused in (reply.rows[3], reply.rows[5]):  # registered before, and twice in one roll
        assert refused.already_registered and "ID number" in refused.error and not refused.id
    assert "110105199001011234" not in reply.rows[1].error

    # registered as an admin registers: ACTIVE, found by the searches, one event each without PII
    found = district.stub.SearchVolunteers(reg.SearchVolunteersRequest(unit_id=yard.unit_id, skill=c.SKILL_HAIRCUT),
                                           metadata=station, timeout=10).volunteers
    assert {v.volunteer_id for v in found} >= {done[0].id}
    imported = district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=done[0].id), metadata=station,
                                          timeout=10).volunteer
    assert imported.status == reg.VOLUNTEER_STATUS_ACTIVE and imported.name == "王秀英"
    events = {e.aggregate_id: (p, record.value)
              for e, p, record in registration_events.events(district.id, at_least=3)}
    payload, raw = events[done[0].id]
    assert isinstance(payload, ev.VolunteerRegistered) and not payload.self_registered
    assert rows[0].national_id.encode() not in raw and rows[0].phone.encode() not in raw
    stored = registration_db.volunteers.find_one({"_id": done[0].id})
    assert rows[0].national_id not in str(stored) and rows[0].phone not in str(stored)

    # nobody imported has a password: the phone is no login
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        district.stub.Login(reg.LoginRequest(district_id=district.id, kind=reg.PRINCIPAL_KIND_VOLUNTEER,
                                             login=rows[0].phone, password="anything-at-all"), timeout=10)


def test_a_courtyard_imports_its_residents(module_district, tree, registration_events):
    district = module_district
    yard = tree.courtyards[1]
    admin = bearer(tree.admins[yard.unit_id])
    phone = new_phone()
    rows = [reg.ResidentImportRow(name="赵桂兰", phone=phone, courtyard_unit_id=yard.unit_id),
            reg.ResidentImportRow(name="钱", phone=phone, courtyard_unit_id=yard.unit_id),
            reg.ResidentImportRow(name="孙", phone=new_phone(), courtyard_unit_id=tree.courtyards[0].unit_id),
            reg.ResidentImportRow(name="", phone=new_phone(), courtyard_unit_id=yard.unit_id),
            reg.ResidentImportRow(name="李", phone=new_phone(), courtyard_unit_id=tree.stations[0].unit_id)]
    reply = district.stub.ImportResidents(reg.ImportResidentsRequest(rows=rows), metadata=admin, timeout=30)
    assert reply.registered == 1 and reply.rows[0].id
    assert reply.rows[1].already_registered and reply.rows[1].field == "rows[1].phone"
    assert [r.field for r in reply.rows[2:]] == ["rows[2].courtyard_unit_id", "rows[3].name",
                                                 "rows[4].courtyard_unit_id"]
    found = district.stub.SearchResidents(reg.SearchResidentsRequest(query="赵桂"), metadata=admin,
                                          timeout=10).residents
    assert [r.resident_id for r in found] == [reply.rows[0].id]
    assert any(e.aggregate_id == reply.rows[0].id and isinstance(p, ev.ResidentRegistered) and not p.self_registered
               for e, p, _ in registration_events.events(district.id, at_least=1))


def test_only_admins_import_and_a_roll_has_a_size(module_district, tree):
    district = module_district
    yard = tree.courtyards[0]
    _, resident = district.resident(yard.unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.ImportVolunteers(reg.ImportVolunteersRequest(rows=[_row(yard.unit_id)]),
                                       metadata=bearer(resident), timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="rows"):
        district.stub.ImportResidents(reg.ImportResidentsRequest(), metadata=district.as_center(), timeout=10)
    too_many = [reg.ResidentImportRow(name="甲", phone=new_phone(), courtyard_unit_id=yard.unit_id)] * 501
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="rows"):
        district.stub.ImportResidents(reg.ImportResidentsRequest(rows=too_many), metadata=district.as_center(),
                                      timeout=10)
