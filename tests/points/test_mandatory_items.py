"""必办项目 over the real stack: the center marks 身边人讲身边事 mandatory for stations (once a month)
in ordering's taxonomy; one station completes an activity carrying the item, its sibling completes
one without it — the taxonomy and the activities reach points as events, and the scorecard's
必办项目 line is met by the first and missed by the second, explained item by item; the institute,
with no mandatory item of its level, has no such line; the sibling's admin may not read the first
station's grade."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from services.common.clock import CHINA
from tests.points.support import ordering_world, own_clock, ts
from tests.support.grpc_helpers import expect_error
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as ord_pb
from wenming.ordering.v1 import types_pb2 as ord_types
from wenming.points.v1 import points_pb2 as pb

C = pb.GradingCriterion


@pytest.fixture(scope="module")
def clock(stack):
    with own_clock(stack, "mandatory") as clock:
        yield clock


@pytest.fixture(scope="module")
def world(stack, registration, points, clock, mongo_client):
    with ordering_world(stack, registration, clock, mongo_client, "mandatory") as world:
        yield world


def _this_month() -> pb.Period:
    now = dt.datetime.now(CHINA)
    return pb.Period(year=now.year, month=now.month)


def _completed_activity(world, clock, station, title: str, item_code: str = "") -> str:
    starts = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=5)
    admin = world.as_admin(station)
    activity = world.stub.PlanActivity(ord_pb.PlanActivityRequest(
        unit_id=station.unit_id, title=title, category=c.SERVICE_CATEGORY_LECTURE_ROLE_MODELS,
        district_item_code=item_code, starts_at=ts(starts), ends_at=ts(starts + dt.timedelta(minutes=30)),
        resident_capacity=20), metadata=admin, timeout=10).activity
    world.stub.PublishActivity(ord_pb.PublishActivityRequest(activity_id=activity.activity_id), metadata=admin,
                               timeout=10)
    clock.set(3600)
    try:
        world.stub.CompleteActivity(ord_pb.CompleteActivityRequest(activity_id=activity.activity_id),
                                    metadata=admin, timeout=10)
    finally:
        clock.set(0)
    return activity.activity_id


def test_the_mandatory_item_line_is_met_by_one_station_and_missed_by_its_sibling(world, stub, clock):
    good, bare = world.stations
    institute = world.as_admin(world.institute)
    world.stub.SetDistrictTaxonomy(ord_pb.SetDistrictTaxonomyRequest(categories=[ord_types.DistrictCategory(
        code="role_models", name="讲典型", national_category=c.SERVICE_CATEGORY_LECTURE_ROLE_MODELS, items=[
            ord_types.DistrictItem(code="neighbours_talk", name="身边人讲身边事", mandatory=[
                ord_types.MandatoryRule(level=c.UNIT_LEVEL_STATION, min_per_month=1)])])]),
        metadata=world.as_center(), timeout=10)
    _completed_activity(world, clock, good, "身边人讲身边事：好媳妇王桂兰", "neighbours_talk")
    _completed_activity(world, clock, bare, "广场舞展演")  # an activity, but not the mandatory item

    def line(unit, token=institute) -> pb.GradeLine | None:
        grade = stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=unit.unit_id, period=_this_month()),
                                  metadata=token, timeout=5).grade
        return {g.criterion: g for g in grade.lines}.get(C.GRADING_CRITERION_MANDATORY_ITEMS)

    met = wait_until(lambda: (found := line(good)) is not None and found.met and found, 60)
    assert met, line(good)
    assert (met.label, met.value, met.threshold, met.points, met.max_points, met.explanation) == (
        "必办项目：按月完成", 1, 1, 10, 10, "1项 ≥ 1项，得10分（满分10分）")
    assert [(r.record_id, r.label) for r in met.records] == [
        ("neighbours_talk", "身边人讲身边事：1场 ≥ 1场（每月1场×1个月）")]

    # the sibling's activity has reached points (its 有活动 line counts it) and still misses the item
    assert wait_until(lambda: {g.criterion: g.value for g in stub.GetUnitGrade(pb.GetUnitGradeRequest(
        unit_id=bare.unit_id, period=_this_month()), metadata=institute, timeout=5).grade.lines}[
        C.GRADING_CRITERION_ACTIVITIES] == 1, 60)
    missed = line(bare)
    assert (missed.met, missed.value, missed.threshold, missed.points, missed.explanation) == (
        False, 0, 1, 0, "0项 ＜ 1项，得0分（满分10分）")
    assert [r.label for r in missed.records] == ["身边人讲身边事：0场 ＜ 1场（每月1场×1个月）"]

    # no mandatory item for institutes: no such line there
    assert line(world.institute, world.as_center()) is None
    # the sibling's admin does not read the first station's grade
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        line(good, world.as_admin(bare))
