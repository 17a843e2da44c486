"""Who may do what: unit subtrees, roles, tokens (OWASP API1: another user's token is refused)."""

from __future__ import annotations

import grpc
import jwt
import pytest

from services.common.auth import Principal, TokenIssuer, generate_keypair_pem
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg


@pytest.fixture
def setup(district):
    tree = district.small_tree()
    mine_phone, other_phone = new_phone(), new_phone()
    mine = district.volunteer(tree.courtyards[0].unit_id, phone=mine_phone)    # under station 0
    other = district.volunteer(tree.courtyards[2].unit_id, phone=other_phone)  # under station 1
    return tree, mine, other, mine_phone, other_phone


def test_station_admin_cannot_read_or_change_another_stations_volunteers(district, setup):
    tree, mine, other, _, _ = setup
    station0 = bearer(tree.admins[tree.stations[0].unit_id])
    assert district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=mine.volunteer_id),
                                      metadata=station0, timeout=5).volunteer.volunteer_id == mine.volunteer_id
    calls = [
        lambda: district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=other.volunteer_id),
                                           metadata=station0, timeout=5),
        lambda: district.stub.SuspendVolunteer(reg.SuspendVolunteerRequest(volunteer_id=other.volunteer_id,
                                                                           reason="越权"), metadata=station0, timeout=5),
        lambda: district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(volunteer_id=other.volunteer_id,
                                                                         update_fields=["skills"], skills=[1]),
                                              metadata=station0, timeout=5),
        lambda: district.stub.SearchVolunteers(reg.SearchVolunteersRequest(unit_id=tree.stations[1].unit_id),
                                               metadata=station0, timeout=5),
        lambda: district.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=tree.stations[1].unit_id, name="x",
                                                               level=c.UNIT_LEVEL_COURTYARD),
                                         metadata=station0, timeout=5),
        lambda: district.stub.CreateAdminAccount(reg.CreateAdminAccountRequest(
            unit_id=tree.stations[1].unit_id, username="sneaky", password="long-enough-1", display_name="x"),
            metadata=station0, timeout=5),
    ]
    for call in calls:
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            call()


def test_a_volunteer_sees_only_themself_and_cannot_approve(district, setup):
    tree, mine, other, mine_phone, _ = setup
    own = bearer(district.volunteer_token(mine_phone))
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=other.volunteer_id), metadata=own, timeout=5)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.ApproveVolunteer(reg.ApproveVolunteerRequest(volunteer_id=other.volunteer_id),
                                       metadata=own, timeout=5)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.SearchVolunteers(reg.SearchVolunteersRequest(), metadata=own, timeout=5)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(volunteer_id=other.volunteer_id,
                                                                 update_fields=["skills"], skills=[1]),
                                      metadata=own, timeout=5)


def test_a_resident_cannot_read_another_resident(district, setup):
    tree = setup[0]
    alice, alice_token = district.resident(tree.courtyards[0].unit_id)
    bob, _ = district.resident(tree.courtyards[0].unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.GetResident(reg.GetResidentRequest(resident_id=bob.resident_id), metadata=bearer(alice_token),
                                  timeout=5)
    # the courtyard's admin may; another station's may not
    district.stub.GetResident(reg.GetResidentRequest(resident_id=bob.resident_id),
                              metadata=bearer(tree.admins[tree.courtyards[0].unit_id]), timeout=5)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.GetResident(reg.GetResidentRequest(resident_id=alice.resident_id),
                                  metadata=bearer(tree.admins[tree.stations[1].unit_id]), timeout=5)


def test_another_districts_admin_is_refused(registration, district, setup):
    from tests.support.registration import District

    tree, mine, _, _, _ = setup
    elsewhere = District(registration.grpc_target, registration.env)
    try:
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=mine.volunteer_id),
                                       metadata=elsewhere.as_center(), timeout=5)
        with expect_error(grpc.StatusCode.NOT_FOUND):  # units of other districts are not even visible
            district.stub.GetUnit(reg.GetUnitRequest(unit_id=tree.stations[0].unit_id),
                                  metadata=elsewhere.as_center(), timeout=5)
    finally:
        elsewhere.close()


def test_no_token_is_unauthenticated(district):
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="needs a token"):
        district.stub.GetUnit(reg.GetUnitRequest(unit_id=district.center_id), timeout=5)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        district.stub.GetUnit(reg.GetUnitRequest(unit_id=district.center_id),
                              metadata=[("authorization", "Basic abc")], timeout=5)


def test_tokens_signed_with_another_key_or_tampered_are_refused(district):
    # (expiry is covered by tests/unit/test_auth.py)
    claims = district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=district.center_admin_token),
                                       timeout=5).claims
    principal = Principal(subject=claims.subject, district_id=district.id, role=c.ROLE_UNIT_ADMIN,
                          unit_id=claims.unit.unit_id, unit_level=claims.unit.level,
                          unit_path=tuple(claims.unit.path))
    forged, _ = TokenIssuer(generate_keypair_pem()[0]).issue(principal)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="not valid"):
        district.stub.GetUnit(reg.GetUnitRequest(unit_id=district.center_id), metadata=bearer(forged), timeout=5)

    header, payload, signature = district.center_admin_token.split(".")
    original = jwt.utils.base64url_decode(payload)
    body = original.replace(b'"ROLE_UNIT_ADMIN"', b'"ROLE_SERVICE"')
    assert body != original
    tampered = ".".join([header, jwt.utils.base64url_encode(body).decode(), signature])
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        district.stub.GetUnit(reg.GetUnitRequest(unit_id=district.center_id), metadata=bearer(tampered), timeout=5)

    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=forged), timeout=5)
