"""The district's own menu taxonomy (类 and 项) over real gRPC: the national default until the
center defines its own; set with a version check (a repeat answers the same, a stale version is
refused), announced by an event; a menu item and an activity naming a district item take its
national category, an unknown item is refused; a station's admin and residents may not set it,
and another district neither sees nor uses it; an item still on the menu cannot be removed."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from services.common.events import to_timestamp
from tests.support.grpc_helpers import expect_error
from tests.support.registration import District
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2 as t

S = c.ServiceCategory

CATEGORIES = [
    t.DistrictCategory(code="theory", name="理论宣讲", national_category=S.SERVICE_CATEGORY_LECTURE_THEORY, items=[
        t.DistrictItem(code="neighbours_talk", name="身边人讲身边事",
                       mandatory=[t.MandatoryRule(level=c.UNIT_LEVEL_STATION, min_per_month=1)]),
        t.DistrictItem(code="courtyard_class", name="小院讲堂")]),
    t.DistrictCategory(code="elderly", name="助老服务", national_category=S.SERVICE_CATEGORY_CARE_FOR_OTHERS, items=[
        t.DistrictItem(code="haircut_at_home", name="上门理发")]),
]


def _taxonomy(world, token) -> t.DistrictTaxonomy:
    return world.stub.GetDistrictTaxonomy(pb.GetDistrictTaxonomyRequest(), metadata=token, timeout=10).taxonomy


def _set(world, token, categories, version) -> t.DistrictTaxonomy:
    return world.stub.SetDistrictTaxonomy(pb.SetDistrictTaxonomyRequest(
        categories=categories, expected_version=version), metadata=token, timeout=10).taxonomy


@pytest.fixture(scope="module")
def elsewhere(registration):
    district = District(registration.grpc_target, registration.env)
    yield district
    district.close()


def test_the_center_defines_its_taxonomy_and_the_menu_follows_it(own_world, ordering_events, elsewhere):
    world = own_world
    center, station = world.as_center(), world.as_admin(world.stations[0])
    _, resident = world.resident(world.courtyards[0])

    default = _taxonomy(world, resident)
    assert default.defaults and default.version == 0 and len(default.categories) == 10
    assert (default.categories[0].name, default.categories[0].national_category) == (
        "讲理论", S.SERVICE_CATEGORY_LECTURE_THEORY)

    # only the center's admins; input refused by field before anything is written
    for token in (station, resident):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            _set(world, token, CATEGORIES, 0)
    twice = [CATEGORIES[0], t.DistrictCategory(code="theory", name="另一类", national_category=S.SERVICE_CATEGORY_LECTURE_LAW)]
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="categories[1].code"):
        _set(world, center, twice, 0)
    assert _taxonomy(world, center).defaults

    made = _set(world, center, CATEGORIES, 0)
    assert (made.version, made.defaults, [cat.code for cat in made.categories]) == (1, False, ["theory", "elderly"])
    assert _set(world, center, CATEGORIES, 0) == made  # a repeat answers with what it made
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="版本"):
        _set(world, center, CATEGORIES[:1], 0)
    seen = _taxonomy(world, resident)
    assert seen.version == 1 and seen.categories[0].items[0].mandatory[0].min_per_month == 1
    announced = [(e, p) for e, p, _ in ordering_events.events(world.district.id, at_least=1, timeout=30)
                 if isinstance(p, ev.DistrictTaxonomySet)]
    assert [(e.aggregate_type, e.aggregate_id, e.aggregate_version) for e, _ in announced] == [
        ("district_taxonomy", world.district.id, 1)]
    assert announced[0][1].taxonomy.categories[1].items[0].code == "haircut_at_home"

    # a menu item of a district item takes its category's national category
    item = world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
        name="上门理发（行动不便老人）", district_item_code="haircut_at_home", handling_level=c.UNIT_LEVEL_COURTYARD,
        required_skills=[c.SKILL_HAIRCUT], expected_minutes=60), metadata=center, timeout=10).item
    assert (item.district_item_code, item.category) == ("haircut_at_home", S.SERVICE_CATEGORY_CARE_FOR_OTHERS)
    listed = world.stub.ListMenu(pb.ListMenuRequest(page=c.PageRequest(page_size=100)), metadata=resident,
                                 timeout=10).items
    assert {i.item_id: i.district_item_code for i in listed}[item.item_id] == "haircut_at_home"
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="district_item_code"):
        world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
            name="未知项目", district_item_code="no_such_item", handling_level=c.UNIT_LEVEL_COURTYARD,
            expected_minutes=60), metadata=center, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="category"):  # contradicts the item
        world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
            name="矛盾的类别", district_item_code="haircut_at_home", category=S.SERVICE_CATEGORY_LECTURE_LAW,
            handling_level=c.UNIT_LEVEL_COURTYARD, expected_minutes=60), metadata=center, timeout=10)

    # an activity carries its district item too
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=world.stations[0].unit_id, title="身边人讲身边事：好媳妇王桂兰", district_item_code="neighbours_talk",
        starts_at=to_timestamp(starts), ends_at=to_timestamp(starts + dt.timedelta(hours=1)), resident_capacity=30),
        metadata=station, timeout=10).activity
    assert (activity.district_item_code, activity.category) == ("neighbours_talk", S.SERVICE_CATEGORY_LECTURE_THEORY)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="district_item_code"):
        world.stub.PlanActivity(pb.PlanActivityRequest(
            title="未知项目", district_item_code="no_such_item", starts_at=to_timestamp(starts),
            ends_at=to_timestamp(starts + dt.timedelta(hours=1)), resident_capacity=30), metadata=station, timeout=10)

    # another district keeps its own default and cannot use this district's items
    other = elsewhere.as_center()
    assert _taxonomy(world, other).defaults
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="district_item_code"):
        world.stub.PublishMenuItem(pb.PublishMenuItemRequest(
            name="借用项目", district_item_code="haircut_at_home", handling_level=c.UNIT_LEVEL_COURTYARD,
            expected_minutes=60), metadata=other, timeout=10)

    # an item still on the menu stays in the taxonomy until its menu items are retired
    without_elderly = CATEGORIES[:1]
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="haircut_at_home"):
        _set(world, center, without_elderly, 1)
    world.stub.RetireMenuItem(pb.RetireMenuItemRequest(item_id=item.item_id, reason="并入助老理发"), metadata=center,
                              timeout=10)
    assert [cat.code for cat in _set(world, center, without_elderly, 1).categories] == ["theory"]
    # back to the national default, keeping the version count
    back = _set(world, center, [], 2)
    assert (back.defaults, back.version, len(back.categories)) == (True, 3, 10)
