"""The subtree, the volunteer search and the resident search read through indexes: the queries
the domain really sends (in-process, on the test database) are explained by the server, and none
may read a whole collection (tests/support/plans.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from services.common.auth import TokenVerifier
from services.common.config import load_settings
from services.registration.app import build, extra_settings
from tests.support.plans import captured_finds, connect_monitored, full_scans, plan
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg


@pytest.fixture(scope="module")
def town(module_district):
    tree = module_district.small_tree()
    for i, yard in enumerate(tree.courtyards):
        module_district.volunteer(yard.unit_id, skills=[c.SKILL_HAIRCUT])
        module_district.resident(yard.unit_id, name=f"张{i}", phone=f"1391234{i:04d}")
    return module_district, tree


@pytest.fixture(scope="module")
def domain(registration):
    settings = load_settings("registration", environ=registration.env, extra=extra_settings)
    db = connect_monitored(settings.mongodb_uri, settings.mongodb_database)
    return build(settings), db


@pytest.fixture(scope="module")
def principal(stack):
    verifier = TokenVerifier(Path(stack.secrets["JWT_PUBLIC_KEY_FILE"]).read_text())
    return lambda token: verifier.verify(token)[0]


def _check(db, finds, collection: str, field: str) -> None:
    assert finds and not full_scans(db, finds), full_scans(db, finds)
    used = [index for f in finds if f.collection == collection for index in plan(db, f)[0]]
    assert used and any(field in index for index in used), used


@pytest.mark.parametrize("who,depth", [("center", 0), ("station", 2), ("courtyard", 3)])
def test_subtree_volunteers_and_residents_read_their_keys(town, domain, principal, who, depth):
    district, tree = town
    (registration, db) = domain
    unit = {"center": tree.center, "station": tree.stations[0], "courtyard": tree.courtyards[0]}[who]
    admin = principal(tree.admins[unit.unit_id])
    with captured_finds() as finds:
        units, _ = registration.units.list_subtree(admin, "", 0, 2, "")
    assert units
    _check(db, finds, "units", f"sub{depth}")
    with captured_finds() as finds:
        views, _ = registration.volunteers.search(admin, reg.SearchVolunteersRequest(skill=c.SKILL_HAIRCUT))
    assert views
    _check(db, finds, "volunteer_scopes", "k")
    for query, field in (("张", f"n1_{depth}"), ("张0", f"n2_{depth}"), ("13912340000", "ph"), ("0000", "pm")):
        with captured_finds() as finds:
            found, _ = registration.residents.search(admin, reg.SearchResidentsRequest(query=query))
        assert found, query
        _check(db, finds, "residents", field)


@pytest.mark.parametrize("who,depth", [("center", 0), ("station", 2), ("courtyard", 3)])
def test_a_subtrees_households_and_their_members_read_their_keys(town, domain, principal, who, depth):
    district, tree = town
    (registration, db) = domain
    yard = tree.courtyards[0]
    yard_admin = principal(tree.admins[yard.unit_id])
    if not registration.households.list(yard_admin, reg.ListHouseholdsRequest())[0]:
        made = registration.households.create(yard_admin, reg.CreateHouseholdRequest(
            unit_id=yard.unit_id, name="张家", idempotency_key="plans-1"))
        resident = registration.residents.search(yard_admin, reg.SearchResidentsRequest(query="张0"))[0][0][0]
        registration.households.add_member(yard_admin, reg.AddHouseholdMemberRequest(
            household_id=made.household.id, resident_id=resident.id))
    unit = {"center": tree.center, "station": tree.stations[0], "courtyard": yard}[who]
    admin = principal(tree.admins[unit.unit_id])
    with captured_finds() as finds:
        views, _ = registration.households.list(admin, reg.ListHouseholdsRequest())
    assert views and views[0].members
    _check(db, finds, "households", f"sub{depth}")
    _check(db, finds, "residents", "hh")
