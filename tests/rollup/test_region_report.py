"""The roll-up of districts (docs/rollup.md) over the real stack: two district releases on one
broker — each with its own KAFKA_PREFIX and databases, its own registration, ordering and points —
get volunteers, a team and served, rated orders through their own APIs; a city's roll-up reading
both releases' events then reports each district exactly as that district's own GetMonthlyReport
reports its center, and a total that is their sum. Then who is refused: the districts' own
admins, another region's 文明办, a volunteer, a caller without a token, bad fields."""

from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from services.common.auth import TokenIssuer
from services.common.clock import CHINA
from tests.ordering.support import Clock, Ordering, World
from tests.points.support import points_stub
from tests.support.grpc_helpers import expect_error
from tests.support.registration import PASSWORD, District
from tests.support.stack import CATCH_UP_SECONDS, KAFKA_PREFIX
from tests.support.waiting import wait_until
from wenming.ordering.v1 import ordering_pb2 as ord_pb
from wenming.points.v1 import points_pb2 as points_pb
from wenming.points.v1 import points_pb2_grpc
from wenming.registration.v1 import registration_pb2 as reg
from wenming.rollup.v1 import rollup_pb2 as pb
from wenming.rollup.v1 import rollup_pb2_grpc
from wenming.common.v1 import common_pb2 as c

# the second district's release: its own topics, consumer groups and databases on the same servers
SECOND_PREFIX = f"{KAFKA_PREFIX}second."
ROUTE = "/api/v1/rollup/GetRegionReport"
COUNTS = [f.name for f in points_pb.MonthlyFigures.DESCRIPTOR.fields if f.name != "satisfaction_centi"]


@dataclass
class Release:
    """One district's release: its world (district, units, menu), points and ordering's clock."""

    world: World
    points: points_pb2_grpc.PointsServiceStub
    clock: Clock
    prefix: str


def this_month() -> str:
    return dt.datetime.now(CHINA).strftime("%Y-%m")


def _release(stack, mongo_client, resources: ExitStack, *, registration, prefix: str, db_prefix: str,
             port_offset: int) -> Release:
    env = {"KAFKA_PREFIX": prefix}
    clock = Clock(stack.data_dir / f"rollup-clock-{port_offset}-{stack.run_id}")
    resources.callback(clock.path.unlink, missing_ok=True)
    ordering = resources.enter_context(stack.running(
        "ordering", port_offset=port_offset, database_prefix=db_prefix, log_name=f"ordering-rollup-{port_offset}",
        extra_env={**env, "CLOCK_OFFSET_FILE": str(clock.path)}))
    points = resources.enter_context(stack.running(
        "points", port_offset=port_offset, database_prefix=db_prefix, log_name=f"points-rollup-{port_offset}",
        extra_env=env))
    district = District(registration.grpc_target, registration.env)
    resources.callback(district.close)
    client = Ordering(ordering.grpc_target, mongo_client[f"{db_prefix}ordering"])
    resources.callback(client.close)
    world = World(district, client, TokenIssuer(Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text()))
    return Release(world, points_stub(points.grpc_target), clock, prefix)


def _serve_and_rate(release: Release, yard, volunteer, rating: int) -> None:
    """A resident of `yard` orders; `volunteer` serves, the hours are confirmed, the resident rates."""
    world = release.world
    resident_id, resident = world.resident(yard)
    world.wait_resident_known(resident_id)
    try:
        served = world.served_order(resident, volunteer, release.clock)
    finally:
        release.clock.set(0)
    world.stub.ConfirmOrderHours(ord_pb.ConfirmOrderHoursRequest(order_id=served.order_id),
                                 metadata=world.holder(served), timeout=10)
    world.stub.RateOrder(ord_pb.RateOrderRequest(order_id=served.order_id, rating=rating, comment="不错"),
                         metadata=resident, timeout=10)


@pytest.fixture(scope="module")
def districts(stack, registration, mongo_client):
    """The first district in the suite's own release (its registration), the second in a release
    of its own; each with a month of activity: the first two volunteers, a team, an order served
    and rated 5 and one only placed, the second one volunteer and an order served and rated 3."""
    with ExitStack() as resources:
        second_registration = resources.enter_context(stack.running(
            "registration", port_offset=4, database_prefix=f"{stack.db_prefix}second_",
            log_name="registration-rollup-second", extra_env={"KAFKA_PREFIX": SECOND_PREFIX}))
        first = _release(stack, mongo_client, resources, registration=registration, prefix=KAFKA_PREFIX,
                         db_prefix=stack.db_prefix, port_offset=3)
        second = _release(stack, mongo_client, resources, registration=second_registration, prefix=SECOND_PREFIX,
                          db_prefix=f"{stack.db_prefix}second_", port_offset=4)

        world = first.world
        yard0, yard1 = world.courtyards[:2]
        server, _ = world.volunteers(yard0, 2, name="汇总")
        leader = world.volunteer(yard1, name="汇总队长")
        world.district.stub.CreateTeam(reg.CreateTeamRequest(unit_id=yard1.unit_id, name="汇总服务队",
                                                             specialty=c.SKILL_HAIRCUT, leader_volunteer_id=leader.id),
                                       metadata=world.as_admin(yard1), timeout=10)
        _serve_and_rate(first, yard0, server, 5)
        resident_id, resident = world.resident(yard1)
        world.wait_resident_known(resident_id)
        world.place(resident)
        _serve_and_rate(second, second.world.courtyards[0], second.world.volunteer(second.world.courtyards[0]), 3)
        yield first, second


@pytest.fixture(scope="module")
def cities(registration):
    """Two 文明办 account districts in the suite's registration (a city's own release in production)."""
    city, other = District(registration.grpc_target, registration.env), District(registration.grpc_target,
                                                                                  registration.env)
    yield city, other
    city.close()
    other.close()


@pytest.fixture(scope="module")
def rollup_proc(stack, districts, cities):
    """The city's roll-up of both districts; the other city's region holds the second one only."""
    first, second = districts
    city, other = cities
    listed = [{"district_id": first.world.district.id, "name": "甲区", "kafka_prefix": first.prefix},
              {"district_id": second.world.district.id, "name": "乙县", "kafka_prefix": second.prefix}]
    regions = {"regions": [{"region_id": city.id, "name": "测试市", "districts": listed},
                           {"region_id": other.id, "name": "另一市", "districts": listed[1:]}]}
    with stack.running("rollup", extra_env={"ROLLUP_REGIONS": json.dumps(regions)}) as proc:
        yield proc


@pytest.fixture(scope="module")
def rollup(rollup_proc):
    with grpc.insecure_channel(rollup_proc.grpc_target) as channel:
        yield rollup_pb2_grpc.RollupServiceStub(channel)


def _own_report(release: Release) -> points_pb.MonthlyFigures:
    world = release.world
    return release.points.GetMonthlyReport(points_pb.GetMonthlyReportRequest(unit_id=world.center.unit_id,
                                                                             month=this_month()),
                                           metadata=world.as_center(), timeout=10).report.total


def _region(rollup, who: District | list[tuple[str, str]], region_id: str = "") -> pb.RegionReport:
    """The region's month as `who` (a district's center admin, or a token's metadata) asks for it."""
    metadata = who.as_center() if isinstance(who, District) else who
    return rollup.GetRegionReport(pb.GetRegionReportRequest(region_id=region_id, month=this_month()),
                                  metadata=metadata, timeout=10).report


def test_each_district_is_its_own_report_and_the_region_their_sum(rollup, districts, cities):
    first, second = districts
    city, other = cities
    # each district's points has counted its month: the served orders' hours and ratings, the team
    own = [wait_until(lambda r=r, teams=teams: (f := _own_report(r)).ratings == 1 and f.service_minutes
                      and f.teams == teams and f, CATCH_UP_SECONDS, what="each district's own month")
           for r, teams in ((first, 1), (second, 0))]
    assert own[0].orders_placed == 2 and own[0].volunteers_new == 3 and own[0].satisfied_ratings == 1, own[0]
    assert own[1].orders_placed == 1 and own[1].volunteers_new == 1 and own[1].satisfied_ratings == 0, own[1]

    report = wait_until(lambda: (r := _region(rollup, city))
                        and [row.figures for row in r.districts] == own and r, CATCH_UP_SECONDS,
                        what="the region's rows to equal the districts' own reports")
    assert (report.region_id, report.name, report.month) == (city.id, "测试市", this_month())
    assert [(row.district_id, row.name) for row in report.districts] == [
        (first.world.district.id, "甲区"), (second.world.district.id, "乙县")]
    assert all(getattr(report.total, name) == getattr(own[0], name) + getattr(own[1], name) for name in COUNTS)
    assert report.total.satisfaction_centi == 400  # (5 + 3) stars over 2 ratings

    # the other city's 文明办 sees its one district, the same figures
    theirs = _region(rollup, other, other.id)
    assert [row.figures for row in theirs.districts] == [own[1]] and theirs.total == own[1]


def test_only_the_regions_文明办_reads_it(rollup, districts, cities):
    first, second = districts
    city, other = cities
    volunteer = first.world.volunteer(first.world.courtyards[0], name="汇总旁观")
    for who, region_id in ((first.world.district, ""),                         # a district's own center admin
                           (first.world.district, city.id),                    # … naming the city
                           (second.world.district, city.id),
                           (other, city.id),                                   # another city's 文明办
                           (first.world.as_admin(first.world.institute), city.id),
                           (volunteer.token, city.id)):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="市、省文明办"):
            _region(rollup, who, region_id)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        rollup.GetRegionReport(pb.GetRegionReportRequest(month=this_month()), timeout=10)


@pytest.mark.parametrize("request_fields, field", [({"month": "2026/11"}, "month"), ({"month": "2999-01"}, "month"),
                                                   ({"month": "", "region_id": "不是 id"}, "region_id")])
def test_bad_fields_are_named(rollup, cities, request_fields, field):
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
        rollup.GetRegionReport(pb.GetRegionReportRequest(**request_fields), metadata=cities[0].as_center(), timeout=10)


def test_the_citys_gateway_serves_it_as_rest(stack, registration, rollup_proc, rollup, districts, cities):
    """The city's gateway, in front of the registration its 文明办 logs in to, routes the roll-up
    (and describes it in its OpenAPI document)."""
    from openapi_spec_validator import validate

    city = cities[0]
    off = {f"{name.upper()}_GRPC_TARGET": "" for name in ("ordering", "points", "training", "media", "notification")}
    with stack.running("gateway", log_name="gateway-rollup", extra_env={
            "REGISTRATION_GRPC_TARGET": registration.grpc_target, "ROLLUP_GRPC_TARGET": rollup_proc.grpc_target,
            **off}) as gateway:
        def post(token: str) -> tuple[int, dict]:
            request = urllib.request.Request(f"{gateway.http_base}{ROUTE}",
                                             data=json.dumps({"month": this_month()}).encode(), method="POST",
                                             headers={"Content-Type": "application/json",
                                                      "Authorization": f"Bearer {token}"})
            try:
                with urllib.request.urlopen(request, timeout=10) as reply:
                    return reply.status, json.loads(reply.read())
            except urllib.error.HTTPError as err:
                return err.code, json.loads(err.read())

        status, body = post(city.center_admin_token)
        assert status == 200, body
        expected = _region(rollup, city)
        assert [row["districtId"] for row in body["report"]["districts"]] == [r.district_id for r in expected.districts]
        assert int(body["report"]["total"]["serviceMinutes"]) == expected.total.service_minutes > 0
        status, body = post(districts[0].world.district.center_admin_token)
        assert status == 403, body
        with urllib.request.urlopen(f"{gateway.http_base}/api/v1/openapi.json", timeout=10) as reply:
            document = json.loads(reply.read())
        validate(document)
        assert "post" in document["paths"][ROUTE]


def test_the_citys_文明办_reads_its_region_on_a_phone(stack, registration, rollup_proc, rollup, districts, cities,
                                                   browser):
    """区域汇总 in the app of the city's release: 我的 offers it to the 文明办 (the gateway routes a
    roll-up), the page shows each district's month as the roll-up answers it and the total; axe-core
    finds nothing serious, and the page raises no errors."""
    from playwright.sync_api import expect

    from tests.app.browser import ROOT, new_device

    city = cities[0]
    expected = _region(rollup, city)
    off = {f"{name.upper()}_GRPC_TARGET": "" for name in ("ordering", "points", "training", "media", "notification")}
    with stack.running("gateway", log_name="gateway-rollup-app", extra_env={
            "REGISTRATION_GRPC_TARGET": registration.grpc_target, "ROLLUP_GRPC_TARGET": rollup_proc.grpc_target,
            "WEB_ROOT": str(ROOT / "build" / "web"), "APP_DISTRICT_ID": city.id, "APP_DISTRICT_NAME": "测试市",
            **off}) as gateway:
        phone = new_device(browser, gateway.http_base, "region")
        try:
            phone.login("管理员", "center-admin", PASSWORD)
            page = phone.open("/admin/me")
            page.get_by_text("区域汇总（各区县月度志愿服务情况）").click()
            for row in expected.districts:
                card = page.locator(f'[data-district-id="{row.district_id}"]')
                expect(card).to_contain_text(row.name)
                expect(card).to_contain_text(f"注册志愿者 {row.figures.volunteers_registered} 人")
            expect(page.get_by_test_id("region-total")).to_contain_text(
                f"点单 {expected.total.orders_placed}、完成 {expected.total.orders_completed}")
            phone.settle()
            assert not phone.accessibility_violations()
            assert not phone.unexpected_faults()
        finally:
            phone.context.close()
