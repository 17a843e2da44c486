"""Bad input is refused with the right code, the field named, and nothing written."""

from __future__ import annotations

import grpc
import pytest

from tests.support.grpc_helpers import bad_request_fields, bearer, expect_error
from tests.support.registration import PASSWORD, new_national_id, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg

COLLECTIONS = ("units", "volunteers", "teams", "residents", "admin_accounts")


def snapshot(db, district_id: str) -> dict[str, int]:
    return {name: db[name].count_documents({"district_id": district_id}) for name in COLLECTIONS}


def volunteer_request(district, unit_id: str, **changes) -> reg.RegisterVolunteerRequest:
    fields = dict(district_id=district.id, name="王建国", national_id=new_national_id(), phone=new_phone(),
                  password=PASSWORD, political_status=reg.POLITICAL_STATUS_MASSES, skills=[c.SKILL_HAIRCUT],
                  service_unit_ids=[unit_id])
    fields.update(changes)
    return reg.RegisterVolunteerRequest(**fields)


def _wrong_check_digit() -> str:
    good = new_national_id()
    return good[:17] + ("0" if good[17] != "0" else "1")


@pytest.fixture(scope="module")
def district(module_district):
    return module_district


@pytest.fixture(scope="module")
def tree(module_district):
    return module_district.small_tree()


@pytest.mark.parametrize("changes, code, field", [
    ({"national_id": "WRONG_CHECK"}, grpc.StatusCode.INVALID_ARGUMENT, "national_id"),
    ({"national_id": "11010519901301001X"}, grpc.StatusCode.INVALID_ARGUMENT, "national_id"),  # month 13
    ({"national_id": "1101051990"}, grpc.StatusCode.INVALID_ARGUMENT, "national_id"),
    ({"phone": "12345"}, grpc.StatusCode.INVALID_ARGUMENT, "phone"),
    ({"phone": "23800001111"}, grpc.StatusCode.INVALID_ARGUMENT, "phone"),
    ({"name": "   "}, grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ({"name": "张" * 51}, grpc.StatusCode.INVALID_ARGUMENT, "name"),
    ({"password": "short"}, grpc.StatusCode.INVALID_ARGUMENT, "password"),
    ({"skills": [999]}, grpc.StatusCode.INVALID_ARGUMENT, "skills[0]"),
    ({"political_status": 0}, grpc.StatusCode.INVALID_ARGUMENT, "political_status"),
    ({"service_unit_ids": []}, grpc.StatusCode.INVALID_ARGUMENT, "service_unit_ids"),
    ({"service_unit_ids": ["unit_doesnotexist"]}, grpc.StatusCode.NOT_FOUND, None),
])
def test_bad_volunteer_registration_writes_nothing(district, tree, registration_db, registration_events,
                                                   changes, code, field):
    if changes.get("national_id") == "WRONG_CHECK":
        changes = {**changes, "national_id": _wrong_check_digit()}
    before = snapshot(registration_db, district.id)
    seen_before = len(registration_events.events(district.id, timeout=1))
    with expect_error(code, field=field):
        district.stub.RegisterVolunteer(volunteer_request(district, tree.courtyards[0].unit_id, **changes),
                                        metadata=district.as_center(), timeout=10)
    assert snapshot(registration_db, district.id) == before
    assert len(registration_events.events(district.id, timeout=1, settle=1.0)) == seen_before


def test_every_bad_field_is_reported_at_once(district, tree):
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT) as caught:
        district.stub.RegisterVolunteer(volunteer_request(district, tree.courtyards[0].unit_id, name="",
                                                          phone="1", national_id="x"), timeout=10)
    assert {"name", "phone", "national_id"} <= set(bad_request_fields(caught.value))


def test_duplicate_id_number_in_a_district_is_refused(district, tree, registration_db):
    national_id = new_national_id()
    district.stub.RegisterVolunteer(volunteer_request(district, tree.courtyards[0].unit_id, national_id=national_id),
                                    timeout=10)
    before = snapshot(registration_db, district.id)
    with expect_error(grpc.StatusCode.ALREADY_EXISTS, contains="ID number"):
        district.stub.RegisterVolunteer(volunteer_request(district, tree.courtyards[1].unit_id,
                                                          national_id=national_id.lower()), timeout=10)
    assert snapshot(registration_db, district.id) == before


def test_unit_creation_refuses_wrong_levels_and_bad_names(district, tree, registration_db):
    before = snapshot(registration_db, district.id)
    center = district.as_center()
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="level"):  # station directly under the center
        district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=district.center_id, name="越级站",
                                                       level=c.UNIT_LEVEL_STATION), metadata=center, timeout=5)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):  # nothing below a courtyard
        district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=tree.courtyards[0].unit_id, name="院中院",
                                                       level=c.UNIT_LEVEL_COURTYARD), metadata=center, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="name"):
        district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=district.center_id, name="",
                                                       level=c.UNIT_LEVEL_INSTITUTE), metadata=center, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="name"):
        district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=district.center_id, name="所" * 61,
                                                       level=c.UNIT_LEVEL_INSTITUTE), metadata=center, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="head_phone"):
        district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=district.center_id, name="新所",
                                                       level=c.UNIT_LEVEL_INSTITUTE, head_phone="555"),
                                 metadata=center, timeout=5)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id="unit_nope", name="孤儿",
                                                       level=c.UNIT_LEVEL_INSTITUTE), metadata=center, timeout=5)
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=district.center_id, name=tree.institute.name,
                                                       level=c.UNIT_LEVEL_INSTITUTE), metadata=center, timeout=5)
    assert snapshot(registration_db, district.id) == before


def test_moves_that_break_the_levels_are_refused(district, tree):
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="new_parent_unit_id"):
        district.stub.MoveUnit(reg.MoveUnitRequest(unit_id=tree.courtyards[0].unit_id,
                                                   new_parent_unit_id=tree.institute.unit_id),
                               metadata=district.as_center(), timeout=5)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        district.stub.MoveUnit(reg.MoveUnitRequest(unit_id=district.center_id,
                                                   new_parent_unit_id=tree.institute.unit_id),
                               metadata=district.as_center(), timeout=5)


def test_paging_limits_and_tokens_are_checked(district, tree):
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="page.page_size"):
        district.stub.SearchVolunteers(reg.SearchVolunteersRequest(page=c.PageRequest(page_size=101)),
                                       metadata=district.as_center(), timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="page.page_size"):
        district.stub.ListSubtree(reg.ListSubtreeRequest(page=c.PageRequest(page_size=-1)),
                                  metadata=district.as_center(), timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="page.page_token"):
        district.stub.ListTeams(reg.ListTeamsRequest(page=c.PageRequest(page_token="%%%not-a-token")),
                                metadata=district.as_center(), timeout=5)


def test_resident_must_belong_to_a_courtyard(district, tree, registration_db):
    before = snapshot(registration_db, district.id)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="courtyard_unit_id"):
        district.stub.RegisterResident(reg.RegisterResidentRequest(
            district_id=district.id, courtyard_unit_id=tree.stations[0].unit_id, name="居民", phone=new_phone(),
            password=PASSWORD), timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="update_fields[0]"):
        district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(volunteer_id="vol_x", update_fields=["national_id"]),
                                      metadata=bearer(district.center_admin_token), timeout=5)
    assert snapshot(registration_db, district.id) == before


def test_renames_and_phone_changes_that_collide_are_already_exists(district, tree, registration_db):
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        district.stub.RenameUnit(reg.RenameUnitRequest(unit_id=tree.courtyards[0].unit_id, name=tree.courtyards[1].name),
                                 metadata=district.as_center(), timeout=5)
    taken_phone = new_phone()
    district.volunteer(tree.courtyards[0].unit_id, phone=taken_phone)
    other = district.volunteer(tree.courtyards[0].unit_id)
    before = snapshot(registration_db, district.id)
    with expect_error(grpc.StatusCode.ALREADY_EXISTS, contains="mobile number"):
        district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(volunteer_id=other.volunteer_id, update_fields=["phone"],
                                                                 phone=taken_phone),
                                      metadata=district.as_center(), timeout=5)
    assert snapshot(registration_db, district.id) == before
