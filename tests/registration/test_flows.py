"""Registration end to end over real gRPC: tree, volunteers, teams, residents, tokens."""

from __future__ import annotations

import grpc

from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import PASSWORD, new_national_id, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg


def test_tree_is_built_level_by_level_and_listed_by_subtree(district):
    tree = district.small_tree()
    assert tree.institute.path == [district.center_id, tree.institute.unit_id]
    yard = tree.courtyards[3]
    assert yard.level == c.UNIT_LEVEL_COURTYARD
    assert yard.path == [district.center_id, tree.institute.unit_id, tree.stations[1].unit_id, yard.unit_id]

    whole = district.stub.ListSubtree(reg.ListSubtreeRequest(root_unit_id=district.center_id,
                                                             page=c.PageRequest(page_size=100)),
                                      metadata=district.as_center(), timeout=5)
    assert len(whole.units) == 1 + 1 + 2 + 4
    courtyards = district.stub.ListSubtree(reg.ListSubtreeRequest(root_unit_id=tree.stations[0].unit_id,
                                                                  level=c.UNIT_LEVEL_COURTYARD),
                                           metadata=district.as_center(), timeout=5)
    assert {u.unit_id for u in courtyards.units} == {u.unit_id for u in tree.courtyards[:2]}


def test_subtree_listing_pages_with_keyset_tokens(district):
    tree = district.small_tree()
    seen, token = [], ""
    while True:
        reply = district.stub.ListSubtree(reg.ListSubtreeRequest(root_unit_id=tree.institute.unit_id,
                                                                 page=c.PageRequest(page_size=2, page_token=token)),
                                          metadata=district.as_center(), timeout=5)
        seen += [u.unit_id for u in reply.units]
        token = reply.page.next_page_token
        if not token:
            break
    assert len(seen) == len(set(seen)) == 1 + 2 + 4


def test_volunteer_self_signup_is_pending_until_a_unit_admin_approves(district):
    tree = district.small_tree()
    yard = tree.courtyards[0]
    phone = new_phone()
    signup = district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
        district_id=district.id, name="李秀英", national_id=new_national_id(), phone=phone, password=PASSWORD,
        political_status=reg.POLITICAL_STATUS_CPC_MEMBER, skills=[c.SKILL_ELDERLY_CARE, c.SKILL_MEDICAL_HEALTH],
        service_unit_ids=[yard.unit_id],
        availability=c.Availability(weekdays=[c.WEEKDAY_SATURDAY], periods=[c.DAY_PERIOD_MORNING])), timeout=10)
    volunteer = signup.volunteer
    assert volunteer.status == reg.VOLUNTEER_STATUS_PENDING
    assert volunteer.volunteer_number.startswith("ZY")
    assert volunteer.gender in (reg.GENDER_MALE, reg.GENDER_FEMALE) and volunteer.birth_date.startswith("1990-")
    assert "*" in volunteer.national_id_masked and "*" in volunteer.phone_masked

    # the volunteer can log in and see themself, but cannot approve
    own = district.volunteer_token(phone)
    me = district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                    metadata=bearer(own), timeout=5).volunteer
    assert me.name == "李秀英"
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.ApproveVolunteer(reg.ApproveVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                       metadata=bearer(own), timeout=5)

    station_admin = tree.admins[tree.stations[0].unit_id]
    approved = district.stub.ApproveVolunteer(reg.ApproveVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                              metadata=bearer(station_admin), timeout=5).volunteer
    assert approved.status == reg.VOLUNTEER_STATUS_ACTIVE
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        district.stub.ApproveVolunteer(reg.ApproveVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                       metadata=bearer(station_admin), timeout=5)

    found = district.stub.SearchVolunteers(reg.SearchVolunteersRequest(
        unit_id=tree.stations[0].unit_id, skill=c.SKILL_MEDICAL_HEALTH, status=reg.VOLUNTEER_STATUS_ACTIVE),
        metadata=bearer(station_admin), timeout=5).volunteers
    assert [v.volunteer_id for v in found] == [volunteer.volunteer_id]
    elsewhere = district.stub.SearchVolunteers(reg.SearchVolunteersRequest(unit_id=tree.stations[1].unit_id),
                                               metadata=district.as_center(), timeout=5).volunteers
    assert volunteer.volunteer_id not in [v.volunteer_id for v in elsewhere]


def test_suspend_blocks_login_and_reinstate_restores_it(district):
    tree = district.small_tree()
    phone = new_phone()
    volunteer = district.volunteer(tree.courtyards[1].unit_id, phone=phone)
    admin = bearer(tree.admins[tree.courtyards[1].unit_id])
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="reason"):
        district.stub.SuspendVolunteer(reg.SuspendVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                       metadata=admin, timeout=5)
    suspended = district.stub.SuspendVolunteer(reg.SuspendVolunteerRequest(
        volunteer_id=volunteer.volunteer_id, reason="长期未参加活动"), metadata=admin, timeout=5).volunteer
    assert suspended.status == reg.VOLUNTEER_STATUS_SUSPENDED and suspended.status_reason == "长期未参加活动"
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="suspended"):
        district.volunteer_token(phone)
    district.stub.ReinstateVolunteer(reg.ReinstateVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                     metadata=admin, timeout=5)
    assert district.volunteer_token(phone)


def test_volunteer_updates_own_profile_but_not_service_units(district):
    tree = district.small_tree()
    phone = new_phone()
    volunteer = district.volunteer(tree.courtyards[0].unit_id, phone=phone)
    own = bearer(district.volunteer_token(phone))
    updated = district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(
        volunteer_id=volunteer.volunteer_id, update_fields=["skills", "availability"],
        skills=[c.SKILL_LEGAL_AID], availability=c.Availability(weekdays=[c.WEEKDAY_SUNDAY])),
        metadata=own, timeout=5).volunteer
    assert list(updated.skills) == [c.SKILL_LEGAL_AID] and list(updated.availability.weekdays) == [c.WEEKDAY_SUNDAY]
    assert updated.version == volunteer.version + 1
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(
            volunteer_id=volunteer.volunteer_id, update_fields=["service_unit_ids"],
            service_unit_ids=[tree.courtyards[3].unit_id]), metadata=own, timeout=5)
    moved = district.stub.UpdateVolunteer(reg.UpdateVolunteerRequest(
        volunteer_id=volunteer.volunteer_id, update_fields=["service_unit_ids"],
        service_unit_ids=[tree.courtyards[1].unit_id]), metadata=bearer(tree.admins[tree.stations[0].unit_id]),
        timeout=5).volunteer
    assert [u.unit_id for u in moved.service_units] == [tree.courtyards[1].unit_id]


def test_teams_follow_unit_level_and_take_members_from_the_subtree(district):
    tree = district.small_tree()
    station = tree.stations[0]
    leader_phone = new_phone()
    leader = district.volunteer(tree.courtyards[0].unit_id, phone=leader_phone)
    member = district.volunteer(tree.courtyards[1].unit_id)
    outsider = district.volunteer(tree.courtyards[2].unit_id)  # serves under the other station
    admin = bearer(tree.admins[station.unit_id])
    team = district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=station.unit_id, name="助老小队",
                                                          specialty=c.SKILL_ELDERLY_CARE,
                                                          leader_volunteer_id=leader.volunteer_id),
                                    metadata=admin, timeout=5).team
    assert team.level == reg.TEAM_LEVEL_SQUAD and list(team.member_volunteer_ids) == [leader.volunteer_id]

    # the leader manages membership of their own team
    leader_token = bearer(district.volunteer_token(leader_phone))
    team = district.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=team.team_id, volunteer_id=member.volunteer_id),
                                       metadata=leader_token, timeout=5).team
    assert member.volunteer_id in team.member_volunteer_ids
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        district.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=team.team_id, volunteer_id=member.volunteer_id),
                                    metadata=admin, timeout=5)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="does not serve"):
        district.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=team.team_id, volunteer_id=outsider.volunteer_id),
                                    metadata=admin, timeout=5)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="leader"):
        district.stub.RemoveTeamMember(reg.RemoveTeamMemberRequest(team_id=team.team_id,
                                                                   volunteer_id=leader.volunteer_id),
                                       metadata=admin, timeout=5)
    team = district.stub.RemoveTeamMember(reg.RemoveTeamMemberRequest(team_id=team.team_id,
                                                                      volunteer_id=member.volunteer_id),
                                          metadata=admin, timeout=5).team
    assert member.volunteer_id not in team.member_volunteer_ids

    # a volunteer may be in several teams; a corps at the center takes anyone in the district
    corps = district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=district.center_id, name="理论宣讲总队",
                                                           leader_volunteer_id=outsider.volunteer_id),
                                     metadata=district.as_center(), timeout=5).team
    assert corps.level == reg.TEAM_LEVEL_CORPS
    district.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=corps.team_id, volunteer_id=leader.volunteer_id),
                                metadata=district.as_center(), timeout=5)
    listed = district.stub.ListTeams(reg.ListTeamsRequest(unit_id=district.center_id),
                                     metadata=district.as_center(), timeout=5).teams
    assert {t.team_id for t in listed} == {team.team_id, corps.team_id}


def test_resident_registers_at_a_courtyard_and_logs_in(district):
    tree = district.small_tree()
    resident, token = district.resident(tree.courtyards[2].unit_id, name="张大爷")
    assert resident.courtyard.unit_id == tree.courtyards[2].unit_id and resident.phone_masked.count("*") == 4
    claims = district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=token), timeout=5).claims
    assert claims.role == c.ROLE_RESIDENT and claims.unit.unit_id == tree.courtyards[2].unit_id
    got = district.stub.GetResident(reg.GetResidentRequest(resident_id=resident.resident_id),
                                    metadata=bearer(token), timeout=5).resident
    assert got.name == "张大爷"


def test_login_issues_a_token_that_authorizes_calls(district):
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="wrong login or password"):
        district.login(reg.PRINCIPAL_KIND_ADMIN, "center-admin", password="not-the-password")
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="wrong login or password"):
        district.login(reg.PRINCIPAL_KIND_ADMIN, "nobody-here")
    reply = district.stub.Login(reg.LoginRequest(district_id=district.id, kind=reg.PRINCIPAL_KIND_ADMIN,
                                                 login="center-admin", password=PASSWORD), timeout=10)
    assert reply.claims.role == c.ROLE_UNIT_ADMIN and reply.claims.unit.level == c.UNIT_LEVEL_CENTER
    assert reply.expires_at.seconds > 0
    unit = district.stub.GetUnit(reg.GetUnitRequest(unit_id=district.center_id),
                                 metadata=bearer(reply.access_token), timeout=5).unit
    assert unit.level == c.UNIT_LEVEL_CENTER


def test_rename_and_move_keep_paths_consistent(district):
    tree = district.small_tree()
    renamed = district.stub.RenameUnit(reg.RenameUnitRequest(unit_id=tree.courtyards[0].unit_id, name="新名字小院"),
                                       metadata=district.as_center(), timeout=5).unit
    assert renamed.name == "新名字小院" and renamed.version == 2
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="version"):
        district.stub.RenameUnit(reg.RenameUnitRequest(unit_id=tree.courtyards[0].unit_id, name="又一个名字",
                                                       expected_version=1), metadata=district.as_center(), timeout=5)

    inst2 = district.unit(district.center_id, "第二实践所", c.UNIT_LEVEL_INSTITUTE)
    moved = district.stub.MoveUnit(reg.MoveUnitRequest(unit_id=tree.stations[1].unit_id,
                                                       new_parent_unit_id=inst2.unit_id),
                                   metadata=district.as_center(), timeout=5).unit
    assert moved.path == [district.center_id, inst2.unit_id, tree.stations[1].unit_id]
    yard = district.stub.GetUnit(reg.GetUnitRequest(unit_id=tree.courtyards[3].unit_id),
                                 metadata=district.as_center(), timeout=5).unit
    assert yard.path == [district.center_id, inst2.unit_id, tree.stations[1].unit_id, tree.courtyards[3].unit_id]
    # the old institute's admin no longer manages the moved station's courtyards
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.RenameUnit(reg.RenameUnitRequest(unit_id=tree.courtyards[3].unit_id, name="越权改名"),
                                 metadata=bearer(tree.admins[tree.institute.unit_id]), timeout=5)



def test_unit_stats_count_the_subtree_for_its_admins(district):
    tree = district.small_tree()
    district.volunteer(tree.courtyards[0].unit_id)
    district.volunteer(tree.courtyards[2].unit_id)
    district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
        district_id=district.id, name="待审", national_id=new_national_id(), phone=new_phone(), password=PASSWORD,
        political_status=reg.POLITICAL_STATUS_MASSES, service_unit_ids=[tree.courtyards[1].unit_id]), timeout=10)
    district.resident(tree.courtyards[0].unit_id)
    whole = district.stub.GetUnitStats(reg.GetUnitStatsRequest(), metadata=district.as_center(), timeout=5)
    assert (whole.institutes, whole.stations, whole.courtyards) == (1, 2, 4)
    assert (whole.volunteers_active, whole.volunteers_pending, whole.residents) == (2, 1, 1)
    station = district.stub.GetUnitStats(reg.GetUnitStatsRequest(unit_id=tree.stations[0].unit_id),
                                         metadata=bearer(tree.admins[tree.stations[0].unit_id]), timeout=5)
    assert (station.courtyards, station.volunteers_active, station.volunteers_pending) == (2, 1, 1)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.GetUnitStats(reg.GetUnitStatsRequest(unit_id=tree.stations[1].unit_id),
                                   metadata=bearer(tree.admins[tree.stations[0].unit_id]), timeout=5)
