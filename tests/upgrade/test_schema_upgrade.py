"""An existing deployment keeps working: a district written by the previous release's code (run
from git, on the same broker and database) is upgraded by this release at start — orders and
activities get their index entries, units and residents their keys, volunteers their search
entries — and every list shows what the old code wrote. Starting again changes nothing more."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from services.common.events import to_timestamp
from tests.support.grpc_helpers import bearer
from tests.support.registration import PASSWORD, new_national_id, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as op
from wenming.ordering.v1 import ordering_pb2_grpc
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
PREVIOUS = "5cd1e67"  # the last commit before schema_version 2 (index entries and list keys)
PORT_OFFSET = 2


def _wait(predicate, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = predicate()
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION):
                raise
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.3)


@pytest.fixture(scope="module")
def previous(tmp_path_factory) -> Path:
    """The previous release's services, from git."""
    root = tmp_path_factory.mktemp("previous-release")
    archive = subprocess.run(["git", "archive", PREVIOUS, "services"], cwd=ROOT, capture_output=True,
                             check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(root)], input=archive, check=True)
    return root


class Release:
    """The registration and ordering processes of one release on the module's databases."""

    def __init__(self, stack, prefix: str, code: Path | None):
        self.stack, self.prefix, self.code = stack, prefix, code
        self.procs = {}

    def env(self, name: str) -> dict:
        env = self.stack.service(name, port_offset=PORT_OFFSET, database_prefix=self.prefix).env
        if self.code is not None:
            env["PYTHONPATH"] = f"{self.code}:{ROOT / 'build' / 'protos' / 'python'}"
        return env

    def start(self) -> None:
        for name in ("registration", "ordering"):
            proc = self.stack.service(name, port_offset=PORT_OFFSET, database_prefix=self.prefix,
                                      log_name=f"upgrade-{name}-{'previous' if self.code else 'current'}")
            proc.env = self.env(name)
            if self.code is None:
                proc.start()
            else:  # `python -m` finds `services` in its working directory: the old tree's
                proc.log_path.parent.mkdir(parents=True, exist_ok=True)
                with open(proc.log_path, "ab") as log:
                    proc.process = subprocess.Popen([sys.executable, "-m", proc.definition.module], cwd=self.code,
                                                    env=proc.env, stdout=log, stderr=subprocess.STDOUT,
                                                    start_new_session=True)
            self.procs[name] = proc
        for proc in self.procs.values():
            proc.wait_serving(300)
        self.registration = registration_pb2_grpc.RegistrationServiceStub(
            grpc.insecure_channel(self.procs["registration"].grpc_target))
        self.ordering = ordering_pb2_grpc.OrderingServiceStub(grpc.insecure_channel(self.procs["ordering"].grpc_target))

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()


@pytest.fixture(scope="module")
def written_before(stack, previous, mongo_client):
    """A district, its people, orders in several states and an activity, all written by the old code."""
    prefix = f"{stack.db_prefix}upgrade_"
    old = Release(stack, prefix, previous)
    old.start()
    try:
        district = f"d{stack.run_id}up"
        subprocess.run([sys.executable, "-m", "services.registration.bootstrap", "--district", district,
                        "--center-name", "升级测试中心", "--admin-username", "center-admin", "--admin-password",
                        PASSWORD], cwd=previous, env=old.env("registration"), check=True, capture_output=True)
        login = old.registration.Login(reg.LoginRequest(district_id=district, kind=reg.PRINCIPAL_KIND_ADMIN,
                                                        login="center-admin", password=PASSWORD), timeout=30)
        center = bearer(login.access_token)

        def unit(parent: str, name: str, level: int) -> reg.Unit:
            return old.registration.CreateUnit(reg.CreateUnitRequest(parent_unit_id=parent, name=name, level=level),
                                               metadata=center, timeout=30).unit

        institute = unit(login.claims.unit.unit_id, "升级实践所", c.UNIT_LEVEL_INSTITUTE)
        station = unit(institute.unit_id, "升级实践站", c.UNIT_LEVEL_STATION)
        yard = unit(station.unit_id, "升级小院", c.UNIT_LEVEL_COURTYARD)
        old.registration.CreateAdminAccount(reg.CreateAdminAccountRequest(
            unit_id=yard.unit_id, username="yard-admin", password=PASSWORD, display_name="院长"),
            metadata=center, timeout=30)
        yard_admin = bearer(old.registration.Login(reg.LoginRequest(
            district_id=district, kind=reg.PRINCIPAL_KIND_ADMIN, login="yard-admin", password=PASSWORD),
            timeout=30).access_token)
        volunteer_phone = new_phone()
        volunteer = old.registration.RegisterVolunteer(reg.RegisterVolunteerRequest(
            district_id=district, name="李志愿", national_id=new_national_id(), phone=volunteer_phone,
            password=PASSWORD, political_status=reg.POLITICAL_STATUS_MASSES, skills=[c.SKILL_HAIRCUT],
            service_unit_ids=[yard.unit_id]), metadata=center, timeout=30).volunteer
        resident_phone = new_phone()
        old.registration.RegisterResident(reg.RegisterResidentRequest(
            district_id=district, courtyard_unit_id=yard.unit_id, name="王大妈", phone=resident_phone,
            password=PASSWORD), timeout=30)

        def token(kind: int, login_name: str) -> list:
            return bearer(old.registration.Login(reg.LoginRequest(district_id=district, kind=kind, login=login_name,
                                                                  password=PASSWORD), timeout=30).access_token)

        resident = token(reg.PRINCIPAL_KIND_RESIDENT, resident_phone)
        barber = token(reg.PRINCIPAL_KIND_VOLUNTEER, volunteer_phone)
        item = _wait(lambda: old.ordering.PublishMenuItem(op.PublishMenuItemRequest(
            name="助老理发", category=c.SERVICE_CATEGORY_CARE_FOR_OTHERS, handling_level=c.UNIT_LEVEL_COURTYARD,
            required_skills=[c.SKILL_HAIRCUT], expected_minutes=45), metadata=center, timeout=30).item,
            "the menu (ordering learns the center from registration's events)")
        orders = [_wait(lambda: old.ordering.PlaceOrder(op.PlaceOrderRequest(item_id=item.item_id),
                                                        metadata=resident, timeout=30).order, "the resident")
                  for _ in range(4)]
        waiting, dispatched, opened, cancelled = (o.order_id for o in orders)
        for order_id in (dispatched, opened):
            old.ordering.AcknowledgeOrder(op.AcknowledgeOrderRequest(order_id=order_id), metadata=yard_admin,
                                          timeout=30)
        _wait(lambda: old.ordering.DispatchOrder(op.DispatchOrderRequest(
            order_id=dispatched, volunteer_ids=[volunteer.volunteer_id]), metadata=yard_admin, timeout=30),
            "the volunteer in ordering's read model")
        old.ordering.OpenOrder(op.OpenOrderRequest(order_id=opened), metadata=yard_admin, timeout=30)
        old.ordering.CancelOrder(op.CancelOrderRequest(order_id=cancelled), metadata=resident, timeout=30)
        starts = dt.datetime.now(dt.UTC) + dt.timedelta(days=2)
        activity = old.ordering.PlanActivity(op.PlanActivityRequest(
            unit_id=yard.unit_id, title="小院讲堂", category=c.SERVICE_CATEGORY_LECTURE_THEORY,
            starts_at=to_timestamp(starts), ends_at=to_timestamp(starts + dt.timedelta(hours=1)), resident_capacity=20),
            metadata=yard_admin, timeout=30).activity
        old.ordering.PublishActivity(op.PublishActivityRequest(activity_id=activity.activity_id),
                                     metadata=yard_admin, timeout=30)
    finally:
        old.stop()
    assert mongo_client[f"{prefix}ordering"].order_index.estimated_document_count() == 0  # the old code had none
    return {"prefix": prefix, "center": center, "yard": yard, "station": station, "yard_admin": yard_admin,
            "resident": resident, "barber": barber, "volunteer": volunteer, "orders": orders,
            "waiting": waiting, "dispatched": dispatched, "opened": opened, "activity": activity.activity_id}


@pytest.mark.slow
def test_this_release_upgrades_what_the_previous_one_wrote(stack, written_before, mongo_client):
    w = written_before
    new = Release(stack, w["prefix"], None)
    new.start()
    try:
        ordering, registration = new.ordering, new.registration
        queue = ordering.ListUnitQueue(op.ListUnitQueueRequest(), metadata=w["yard_admin"], timeout=30).orders
        assert [o.order_id for o in queue] == [w["waiting"], w["dispatched"], w["opened"]]  # waiting first
        mine = ordering.ListMyOrders(op.ListMyOrdersRequest(), metadata=w["resident"], timeout=30).orders
        assert len(mine) == 4
        tasks = ordering.ListMyTasks(op.ListMyTasksRequest(), metadata=w["barber"], timeout=30).orders
        assert [o.order_id for o in tasks] == [w["dispatched"]]
        claimable = ordering.ListClaimableOrders(op.ListClaimableOrdersRequest(), metadata=w["barber"],
                                                 timeout=30).orders
        assert [o.order_id for o in claimable] == [w["opened"]]
        stats = ordering.GetOrderStats(op.GetOrderStatsRequest(), metadata=w["center"], timeout=30)
        assert sum(n.count for n in stats.in_progress) == 3
        trends = ordering.GetOrderTrends(op.GetOrderTrendsRequest(), metadata=w["center"], timeout=30)
        assert sum(b.placed for b in trends.buckets) == 4 and sum(b.cancelled for b in trends.buckets) == 1
        calendar = ordering.ListActivities(op.ListActivitiesRequest(), metadata=w["resident"], timeout=30).activities
        assert [a.activity_id for a in calendar] == [w["activity"]]
        found = registration.SearchVolunteers(reg.SearchVolunteersRequest(unit_id=w["station"].unit_id),
                                              metadata=w["center"], timeout=30).volunteers
        assert [v.volunteer_id for v in found] == [w["volunteer"].volunteer_id]
        residents = registration.SearchResidents(reg.SearchResidentsRequest(query="王大"), metadata=w["yard_admin"],
                                                 timeout=30).residents
        assert [r.name for r in residents] == ["王大妈"]
        subtree = registration.ListSubtree(reg.ListSubtreeRequest(), metadata=w["center"], timeout=30).units
        assert len(subtree) == 4

        db = mongo_client[f"{w['prefix']}ordering"]
        assert db.orders.count_documents({"schema_version": 2}) == 4
        indexed = {tuple(k for k, _ in info["key"]) for info in db.orders.index_information().values()}
        assert ("district_id", "current.unit_id", "queue_key") not in indexed  # the old shapes' indexes are gone
        migrated = {name: mongo_client[f"{w['prefix']}{name}"].migrations.find_one({"_id": name})
                    for name in ("ordering", "registration")}
        assert migrated["ordering"]["entries_written"] == 5 and migrated["registration"]["units_upgraded"] == 4
    finally:
        new.stop()
    # a second start finds nothing to do
    again = Release(stack, w["prefix"], None)
    again.start()
    again.stop()
    assert {name: mongo_client[f"{w['prefix']}{name}"].migrations.find_one({"_id": name})["at"]
            for name in ("ordering", "registration")} == {name: m["at"] for name, m in migrated.items()}
