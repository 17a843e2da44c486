"""Households (户) and 十星文明户 over real gRPC against the real broker and database: a courtyard
admin creates a household (a retry answers the first), fills it with residents (one already in
another household is refused), rates its stars (HouseholdRated through the outbox), lists its
subtree's households; a resident reads their own household only; another unit's admin, a
volunteer and a resident are refused; the district's own star list."""

from __future__ import annotations

import datetime as dt
import threading

import grpc
import pytest

from services.common.clock import CHINA
from tests.support.grpc_helpers import bearer, expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg

STARS = ["爱国守法星", "诚信友善星", "勤劳致富星", "孝老爱亲星", "移风易俗星",
         "清洁卫生星", "学习进取星", "邻里互助星", "热心公益星", "平安和谐星"]
YEAR = dt.datetime.now(CHINA).year


@pytest.fixture
def yard(district):
    """The small tree, courtyard 0's admin token, and three residents of courtyard 0 (tokens)."""
    tree = district.small_tree()
    courtyard = tree.courtyards[0]
    residents = [district.resident(courtyard.unit_id, name=name) for name in ("张大爷", "张大妈", "李四")]
    return tree, courtyard, tree.admins[courtyard.unit_id], residents


def create(district, token: str, unit_id: str, name: str = "张家", address: str = "幸福路12号3单元501",
           key: str = "hh-1") -> reg.Household:
    return district.stub.CreateHousehold(reg.CreateHouseholdRequest(unit_id=unit_id, name=name, address=address,
                                                                    idempotency_key=key),
                                         metadata=bearer(token), timeout=10).household


def add(district, token: str, household_id: str, resident_id: str) -> reg.Household:
    return district.stub.AddHouseholdMember(reg.AddHouseholdMemberRequest(household_id=household_id,
                                                                          resident_id=resident_id),
                                            metadata=bearer(token), timeout=10).household


def rate(district, token: str, household_id: str, decisions: list[reg.StarDecision], year: int = YEAR):
    return district.stub.RateHousehold(reg.RateHouseholdRequest(household_id=household_id, year=year,
                                                                decisions=decisions),
                                       metadata=bearer(token), timeout=10).household


def test_a_courtyard_keeps_its_households_and_rates_a_ten_star_household(district, registration_events, yard):
    tree, courtyard, token, residents = yard
    (grandpa, grandpa_token), (grandma, _), (neighbour, neighbour_token) = residents
    zhang = create(district, token, courtyard.unit_id)
    assert (zhang.name, zhang.address_masked, zhang.unit.unit_id) == ("张家", "幸福路****", courtyard.unit_id)
    assert zhang.rating.stars_total == 10 and zhang.rating.stars_awarded == 0 and zhang.rating.year == YEAR
    # a retry with the same key answers the first household; the same key for another is refused
    assert create(district, token, courtyard.unit_id).household_id == zhang.household_id
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
        create(district, token, courtyard.unit_id, name="王家")

    add(district, token, zhang.household_id, grandpa.resident_id)
    zhang = add(district, token, zhang.household_id, grandma.resident_id)
    assert [(m.name, m.phone_masked[3:7]) for m in zhang.members] == [("张大爷", "****"), ("张大妈", "****")]
    assert add(district, token, zhang.household_id, grandma.resident_id).members == zhang.members  # a repeat

    # a resident belongs to at most one household
    li = create(district, token, courtyard.unit_id, name="李家", address="", key="hh-2")
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="已是另一户的成员"):
        add(district, token, li.household_id, grandma.resident_id)
    li = add(district, token, li.household_id, neighbour.resident_id)
    assert [m.resident_id for m in li.members] == [neighbour.resident_id] and li.address_masked == ""

    rated = rate(district, token, zhang.household_id,
                 [reg.StarDecision(star=star, awarded=True) for star in STARS[:9]] +
                 [reg.StarDecision(star=STARS[9], awarded=False, note="年内有邻里纠纷")])
    assert (rated.rating.stars_awarded, rated.rating.all_stars) == (9, False)
    last = rated.rating.stars[9]
    assert (last.star, last.awarded, last.note, last.decided_by_name) == (STARS[9], False, "年内有邻里纠纷",
                                                                          f"{courtyard.name}管理员")
    assert last.decided_at.seconds > 0
    # the same decisions again change nothing (no second event); then the tenth star
    assert rate(district, token, zhang.household_id, [reg.StarDecision(star=STARS[0], awarded=True)]).version \
        == rated.version
    station_token = tree.admins[tree.stations[0].unit_id]  # the station above rates too
    rated = rate(district, station_token, zhang.household_id, [reg.StarDecision(star=STARS[9], awarded=True)])
    assert (rated.rating.stars_awarded, rated.rating.all_stars) == (10, True)

    # the subtree's list, with the year's rating; another year is its own
    listed = district.stub.ListHouseholds(reg.ListHouseholdsRequest(unit_id=tree.stations[0].unit_id),
                                          metadata=bearer(station_token), timeout=10).households
    assert [(h.name, h.rating.stars_awarded, len(h.members)) for h in listed] == [("张家", 10, 2), ("李家", 0, 1)]
    first = district.stub.ListHouseholds(reg.ListHouseholdsRequest(page=c.PageRequest(page_size=1)),
                                         metadata=bearer(token), timeout=10)
    second = district.stub.ListHouseholds(reg.ListHouseholdsRequest(page=c.PageRequest(
        page_size=1, page_token=first.page.next_page_token)), metadata=bearer(token), timeout=10)
    assert [h.name for h in [*first.households, *second.households]] == ["张家", "李家"]
    assert not second.page.next_page_token
    last_year = district.stub.ListHouseholds(reg.ListHouseholdsRequest(year=YEAR - 1), metadata=bearer(token),
                                             timeout=10).households
    assert [h.rating.stars_awarded for h in last_year] == [0, 0]

    # a resident sees their own household's stars, nobody else's
    own = district.stub.GetHousehold(reg.GetHouseholdRequest(), metadata=bearer(grandpa_token), timeout=10).household
    assert own.household_id == zhang.household_id and own.rating.all_stars
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.GetHousehold(reg.GetHouseholdRequest(household_id=zhang.household_id),
                                   metadata=bearer(neighbour_token), timeout=10)
    _, stranger_token = district.resident(courtyard.unit_id, name="王五")
    assert not district.stub.GetHousehold(reg.GetHouseholdRequest(), metadata=bearer(stranger_token),
                                          timeout=10).HasField("household")

    # removing a member frees them for another household
    district.stub.RemoveHouseholdMember(reg.RemoveHouseholdMemberRequest(household_id=zhang.household_id,
                                                                         resident_id=grandma.resident_id),
                                        metadata=bearer(token), timeout=10)
    assert len(add(district, token, li.household_id, grandma.resident_id).members) == 2

    rated_events = [(envelope, payload) for envelope, payload, _ in
                    registration_events.events(district.id, at_least=1, timeout=20, settle=2.0)
                    if envelope.event_type.endswith(".HouseholdRated")]
    assert [(p.household_id, p.stars_awarded, p.all_stars, len(p.changed)) for _, p in rated_events] == [
        (zhang.household_id, 9, False, 10), (zhang.household_id, 10, True, 1)]
    assert rated_events[1][0].aggregate_version == rated.version
    assert rated_events[0][1].changed[9].note == "" and rated_events[0][1].changed[9].decided_by_name == ""


def test_households_adding_the_same_resident_at_once_leave_them_in_exactly_one(district, yard):
    _, courtyard, token, residents = yard
    resident = residents[0][0]
    households = [create(district, token, courtyard.unit_id, name=f"第{i}户", address="", key=f"hh-race-{i}")
                  for i in range(6)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(households))

    def attempt(household_id: str) -> None:
        barrier.wait()
        try:
            add(district, token, household_id, resident.resident_id)
            outcomes.append("added")
        except grpc.RpcError as error:
            outcomes.append(error.code().name)

    threads = [threading.Thread(target=attempt, args=(h.household_id,)) for h in households]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(outcomes) == ["FAILED_PRECONDITION"] * 5 + ["added"], outcomes
    listed = district.stub.ListHouseholds(reg.ListHouseholdsRequest(), metadata=bearer(token), timeout=10).households
    assert sum(len(h.members) for h in listed) == 1


def test_another_unit_a_volunteer_and_a_resident_are_refused(district, yard):
    tree, courtyard, token, residents = yard
    zhang = create(district, token, courtyard.unit_id)
    other_yard = tree.admins[tree.courtyards[2].unit_id]      # under station 1
    other_station = tree.admins[tree.stations[1].unit_id]
    (resident, resident_token) = residents[0]
    volunteer = district.volunteer(courtyard.unit_id, phone="13912345670")
    volunteer_token = district.volunteer_token("13912345670")
    for refused in (other_yard, other_station, volunteer_token, resident_token):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            add(district, refused, zhang.household_id, resident.resident_id)
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            rate(district, refused, zhang.household_id, [reg.StarDecision(star=STARS[0], awarded=True)])
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            district.stub.GetHousehold(reg.GetHouseholdRequest(household_id=zhang.household_id),
                                       metadata=bearer(refused), timeout=10)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        create(district, other_yard, courtyard.unit_id, key="hh-x")
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.ListHouseholds(reg.ListHouseholdsRequest(unit_id=courtyard.unit_id), metadata=bearer(other_station),
                                     timeout=10)
    assert volunteer.volunteer_id  # the volunteer's token was a real one
    # a resident of another station's courtyard cannot join this courtyard's household
    outsider, _ = district.resident(tree.courtyards[2].unit_id, name="赵六")
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="不住在"):
        add(district, token, zhang.household_id, outsider.resident_id)
    # nothing was written by the refusals
    got = district.stub.GetHousehold(reg.GetHouseholdRequest(household_id=zhang.household_id), metadata=bearer(token),
                                     timeout=10).household
    assert (list(got.members), got.rating.stars_awarded, got.version) == ([], 0, 1)


def test_bad_input_names_the_field(district, yard):
    tree, courtyard, token, residents = yard
    zhang = create(district, token, courtyard.unit_id)
    cases = [
        (lambda: create(district, tree.admins[tree.institute.unit_id], tree.institute.unit_id, key="hh-i"),
         "unit_id"),
        (lambda: create(district, token, courtyard.unit_id, name="", key="hh-e"), "name"),
        (lambda: create(district, token, courtyard.unit_id, key=""), "idempotency_key"),
        (lambda: rate(district, token, zhang.household_id, [reg.StarDecision(star="发财星", awarded=True)]),
         "decisions[0].star"),
        (lambda: rate(district, token, zhang.household_id, [reg.StarDecision(star=STARS[0])], year=YEAR + 1), "year"),
        (lambda: rate(district, token, zhang.household_id, []), "decisions"),
        (lambda: add(district, token, "", residents[0][0].resident_id), "household_id"),
    ]
    for call, field in cases:
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            call()
    with expect_error(grpc.StatusCode.NOT_FOUND):
        add(district, token, zhang.household_id, "res_01JD3Q8Y6P4M2T5R7W9X0Z1B3C")


def test_a_district_sets_its_own_stars(district, yard):
    tree, courtyard, token, _ = yard
    stars = district.stub.GetHouseholdStars(reg.GetHouseholdStarsRequest(), metadata=bearer(token), timeout=10).stars
    assert list(stars.stars) == STARS and stars.built_in
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.SetHouseholdStars(reg.SetHouseholdStarsRequest(stars=["爱国守法星"]), metadata=bearer(token),
                                        timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="stars[1]"):
        district.stub.SetHouseholdStars(reg.SetHouseholdStarsRequest(stars=["爱国守法星", "爱国守法星"]),
                                        metadata=district.as_center(), timeout=10)
    own = district.stub.SetHouseholdStars(reg.SetHouseholdStarsRequest(stars=["爱国守法星", "绿色环保星"]),
                                          metadata=district.as_center(), timeout=10).stars
    assert (list(own.stars), own.built_in, own.version) == (["爱国守法星", "绿色环保星"], False, 1)
    zhang = create(district, token, courtyard.unit_id)
    rated = rate(district, token, zhang.household_id, [reg.StarDecision(star="绿色环保星", awarded=True),
                                                       reg.StarDecision(star="爱国守法星", awarded=True)])
    assert (rated.rating.stars_awarded, rated.rating.stars_total, rated.rating.all_stars) == (2, 2, True)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        district.stub.SetHouseholdStars(reg.SetHouseholdStarsRequest(stars=STARS, expected_version=7),
                                        metadata=district.as_center(), timeout=10)


def test_a_courtyard_that_moves_takes_its_households_along(district, yard):
    tree, courtyard, token, residents = yard
    zhang = create(district, token, courtyard.unit_id)
    add(district, token, zhang.household_id, residents[0][0].resident_id)
    district.stub.MoveUnit(reg.MoveUnitRequest(unit_id=courtyard.unit_id, new_parent_unit_id=tree.stations[1].unit_id),
                           metadata=bearer(tree.admins[tree.institute.unit_id]), timeout=10)

    def names(unit) -> list[str]:
        return [h.name for h in district.stub.ListHouseholds(reg.ListHouseholdsRequest(),
                                                             metadata=bearer(tree.admins[unit.unit_id]),
                                                             timeout=10).households]

    assert names(tree.stations[1]) == ["张家"] and names(tree.stations[0]) == []
    assert names(tree.institute) == ["张家"] and names(courtyard) == ["张家"]
