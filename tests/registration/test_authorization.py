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


def test_the_tree_is_public_in_the_district_contacts_and_members_are_not(district, setup):
    """Unit names, levels and the tree, and team names, are for everyone signed in to the district
    (a resident picks a courtyard); a head's masked phone and a team's members only for the
    admins of that subtree (docs/design.md, Who sees what)."""
    tree, _, other, _, _ = setup
    station1 = tree.stations[1]
    yard = district.stub.CreateUnit(reg.CreateUnitRequest(
        parent_unit_id=station1.unit_id, name="有负责人的小院", level=c.UNIT_LEVEL_COURTYARD, head_name="张院长",
        head_phone=new_phone()), metadata=district.as_center(), timeout=5).unit
    team = district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=tree.courtyards[2].unit_id, name="理发服务队",
                                                          leader_volunteer_id=other.volunteer_id),
                                    metadata=district.as_center(), timeout=5).team
    _, resident_token = district.resident(tree.courtyards[0].unit_id)
    outsiders = {"another station's admin": bearer(tree.admins[tree.stations[0].unit_id]),
                 "a resident": bearer(resident_token)}
    insiders = {"the station's admin": bearer(tree.admins[station1.unit_id]), "the center": district.as_center()}

    def seen(metadata):
        unit = district.stub.GetUnit(reg.GetUnitRequest(unit_id=yard.unit_id), metadata=metadata, timeout=5).unit
        subtree = district.stub.ListSubtree(reg.ListSubtreeRequest(root_unit_id=station1.unit_id),
                                            metadata=metadata, timeout=5).units
        teams = district.stub.ListTeams(reg.ListTeamsRequest(unit_id=station1.unit_id), metadata=metadata,
                                        timeout=5).teams
        one = district.stub.GetTeam(reg.GetTeamRequest(team_id=team.team_id), metadata=metadata, timeout=5).team
        assert (unit.name, unit.head.name, list(unit.path)) == (yard.name, "张院长", list(yard.path))
        assert {u.unit_id for u in subtree} == {station1.unit_id, yard.unit_id} | {
            y.unit_id for y in tree.courtyards[2:4]}
        assert [t.name for t in teams] == ["理发服务队"] and one.name == "理发服务队"
        return ({unit.head.phone_masked, *(u.head.phone_masked for u in subtree if u.unit_id == yard.unit_id)},
                [(list(t.member_volunteer_ids), t.leader_volunteer_id) for t in (*teams, one)])

    for who, metadata in outsiders.items():
        assert seen(metadata) == ({""}, [([], "")] * 2), who
    for who, metadata in insiders.items():
        phones, members = seen(metadata)
        assert len(phones) == 1 and "****" in phones.pop(), who
        assert members == [([other.volunteer_id], other.volunteer_id)] * 2, who
