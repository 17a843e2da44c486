"""python -m infra.local.seed_scale: a district of 凉州区's size, for the benches and for sizing.

    make seed-scale                       # .data/scale, databases wmscale_*, own ports; hours
    python -m infra.local.seed_scale --fraction 0.01    # the same shape, a hundredth of it

What it holds (--fraction 1): 1 center, 20 institutes (镇/街道), 300 stations (村/社区), 1,000
courtyards (小院), an admin for each unit; 179,000 volunteers and 300,000 residents; 1,127 teams;
the center's menu; 100,000 orders placed over the last 900 days and 12,800 activities; training's
catalog with historical completions and certifications; and the points ledger that follows.

Every row enters through the owning service's own write path:
- people through registration's roll import (ImportVolunteers / ImportResidents: validated, ID
  numbers and phones encrypted and blind-indexed as registration does, one event each), a few
  self sign-ups pending approval and a few suspensions through the single-person RPCs;
- units, admins, teams, menu, training through their RPCs;
- orders and activities through ordering's RPCs, as the people concerned (tokens signed with the
  district's key, as registration signs them), with ordering's clock moved to when each step
  happened: placed, acknowledged (or left to the scheduler, which escalates it), escalated by the
  unit now and then, dispatched, put on the claim list and claimed, accepted, served on site with
  the rotating code, confirmed, rated; the scheduler closes them when their rating window ends.
  What was still under way at the end of the 900 days is under way now;
- the ledger by points' own consumers of those events, as in production.

Its own data directory and database prefix (wmscale_), never the demo district's. Resumable: the
plan is drawn from a fixed seed; each phase and the timeline's progress are recorded in
wmscale_seed, and what a killed run may have half-done is recognised (units and teams by name,
people by registration's duplicate check, orders by their resident's list, activities by their
organizer's calendar), so a rerun continues and never makes anything twice.
"""

from __future__ import annotations

import bisect
import contextlib
import datetime as dt
import heapq
import os
import random
import signal
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from pymongo import MongoClient

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).resolve().parent))

import launcher  # noqa: E402  (infra/local's own modules)
import seed_ordering  # noqa: E402
import seed_points  # noqa: E402
import seed_training  # noqa: E402
from seed_demo import GIVEN, POLITICAL, REGION, SKILLS, SPECIALTY_TEAMS, SURNAMES  # noqa: E402

from services.common.auth import Principal, TokenIssuer  # noqa: E402
from services.common.pii import id_check_char  # noqa: E402
from wenming.common.v1 import common_pb2 as c  # noqa: E402
from wenming.ordering.v1 import ordering_pb2 as op  # noqa: E402
from wenming.ordering.v1 import ordering_pb2_grpc  # noqa: E402
from wenming.points.v1 import points_pb2 as pp  # noqa: E402
from wenming.points.v1 import points_pb2_grpc  # noqa: E402
from wenming.registration.v1 import registration_pb2 as reg  # noqa: E402
from wenming.registration.v1 import registration_pb2_grpc  # noqa: E402
from wenming.training.v1 import training_pb2 as tp  # noqa: E402
from wenming.training.v1 import training_pb2_grpc  # noqa: E402

DISTRICT = "liangzhou-scale"
CENTER_NAME = "凉州区新时代文明实践中心"
PASSWORD = "Wenming@2026"
PREFIX = "wmscale_"
SERVICES = ("registration", "ordering", "points", "training")
# gRPC ports of the scale stack's services: clear of every test slot's (21050-24556) and below the
# kernel's ephemeral range; HTTP 1000 above
PORT_BASE = 28050
DAYS = 900
TOWNS = ["黄羊镇", "武南镇", "清源镇", "永昌镇", "双城镇", "丰乐镇", "高坝镇", "金羊镇", "和平镇", "羊下坝镇",
         "中坝镇", "永丰镇", "古城镇", "张义镇", "发放镇", "西营镇", "四坝镇", "洪祥镇", "东大街街道", "西大街街道"]
VILLAGE_FIRST = "新上下东西南北中前后大小王李张刘杨马赵高黄沙河红光明和平团结幸福胜利永丰金银"
VILLAGE_SECOND = "庄湾沟坝寨堡营屯滩岔梁台园庙渠桥"
COURTYARD_NAMES = ["幸福小院", "和美小院", "同心小院", "邻里小院", "温馨小院", "暖心小院", "连心小院", "睦邻小院"]
STEP = dt.timedelta(minutes=30)  # the timeline runs in steps: what falls in one is done at its start, in parallel
ACTIVITY_TOPICS = [("学习党的创新理论", c.SERVICE_CATEGORY_LECTURE_THEORY), ("惠民政策面对面", c.SERVICE_CATEGORY_LECTURE_POLICY),
                   ("防范电信诈骗", c.SERVICE_CATEGORY_LECTURE_SCIENCE), ("民法典进万家", c.SERVICE_CATEGORY_LECTURE_LAW),
                   ("健康义诊", c.SERVICE_CATEGORY_LECTURE_HEALTH), ("身边好人故事会", c.SERVICE_CATEGORY_LECTURE_ROLE_MODELS),
                   ("家乡新变化", c.SERVICE_CATEGORY_LECTURE_CHANGE), ("邻里互助", c.SERVICE_CATEGORY_CARE_FOR_OTHERS),
                   ("清洁家园", c.SERVICE_CATEGORY_CARE_FOR_NATURE), ("文艺汇演", c.SERVICE_CATEGORY_CARE_FOR_SOCIETY)]  # the timeline runs in steps: what falls in one is done at its start, in parallel


def _ts(moment: dt.datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(moment.astimezone(dt.UTC))
    return stamp


# ---- who lives in the district (drawn from the fixed seed) ----

def person_name(rng: random.Random) -> str:
    """A surname by its frequency (the list runs from the commonest), a one- or two-character name."""
    surname = SURNAMES[min(len(SURNAMES) - 1, int(rng.paretovariate(1.2)) - 1 + rng.randrange(0, 3))]
    pairs = [GIVEN[i:i + 2] for i in range(0, len(GIVEN) - 1, 2)]
    return surname + (rng.choice(pairs) if rng.random() < 0.7 else rng.choice(GIVEN))


def national_id(serial: int) -> str:
    """A valid (GB 11643) synthetic ID of 凉州区, unique per serial: birth day and sequence from it."""
    born = dt.date(1950, 1, 1) + dt.timedelta(days=(serial * 7919) % 20000)
    first17 = f"{REGION}{born:%Y%m%d}{(serial // 20000) % 1000:03d}"
    return first17 + id_check_char(first17)


def phone(serial: int, prefix: str) -> str:
    """A mobile number unique per serial (a bijection of the last eight digits)."""
    return f"{prefix}{(serial * 104729) % 100_000_000:08d}"


@dataclass
class Plan:
    """The district's people, drawn once from the fixed seed: who serves and lives where."""

    fraction: float
    rng: random.Random = field(default_factory=lambda: random.Random(20260101))

    def scaled(self, n: int) -> int:
        return max(1, round(n * self.fraction))


# ---- the stack ----

class Stack:
    """The scale district's service processes, on the running Kafka and database."""

    def __init__(self, data_dir: Path):
        self.data_dir = data_dir
        self.secrets = launcher.ensure_secrets(data_dir / "secrets")
        self.clock_file = data_dir / "run" / "ordering-clock-offset"
        slot = int(os.environ.get("WENMING_SCALE_SLOT", "0"))  # make seed-scale TEST_SLOT=n
        base = PORT_BASE + 50 * slot
        self.defs = [launcher.ServiceDef(name, base + i, base + 1000 + i) for i, name in enumerate(
            ("gateway", "registration", "ordering", "points", "training", "media", "notification"))]
        self.procs: dict[str, launcher.ServiceProcess] = {}

    def env(self, name: str) -> dict:
        definition = next(d for d in self.defs if d.name == name)
        extra = {"LOG_LEVEL": "WARNING", "ACCESS_TOKEN_TTL_SECONDS": "86400"}
        if name == "ordering":
            extra["CLOCK_OFFSET_FILE"] = str(self.clock_file)
        return launcher.service_env(definition, secrets=self.secrets, database_prefix=PREFIX, extra=extra,
                                    peers=self.defs)

    def start(self, names=SERVICES) -> None:
        self.clock_file.parent.mkdir(parents=True, exist_ok=True)
        for name in names:
            definition = next(d for d in self.defs if d.name == name)
            proc = launcher.ServiceProcess(definition, self.env(name), self.data_dir / "logs" / f"scale-{name}.log")
            proc.start()
            self.procs[name] = proc
        for proc in self.procs.values():
            proc.wait_serving(900)  # a first start after an upgrade migrates the district

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.clock_file.unlink(missing_ok=True)

    def target(self, name: str) -> str:
        return self.procs[name].grpc_target

    def set_clock(self, moment: dt.datetime | None) -> None:
        """Ordering's clock shows `moment` from now on (None: the real time)."""
        offset = 0.0 if moment is None else (moment - dt.datetime.now(dt.UTC)).total_seconds()
        tmp = self.clock_file.with_suffix(".tmp")
        tmp.write_text(str(min(0.0, offset)))
        tmp.replace(self.clock_file)


# ---- progress ----

class Progress:
    """`phase: done / total, rows/s, ETA` on one line, and what is done, kept in wmscale_seed."""

    def __init__(self, db):
        self.phases = db["phases"]

    def done(self, phase: str) -> dict | None:
        doc = self.phases.find_one({"_id": phase})
        return doc if doc and doc.get("finished") else None

    def state(self, phase: str) -> dict:
        return self.phases.find_one({"_id": phase}) or {}

    def save(self, phase: str, **fields) -> None:
        self.phases.update_one({"_id": phase}, {"$set": fields}, upsert=True)

    def finish(self, phase: str, began: float, **fields) -> None:
        self.save(phase, finished=True, seconds=round(time.monotonic() - began), **fields)

    @contextlib.contextmanager
    def bar(self, phase: str, total: int, start: int = 0):
        began, shown = time.monotonic(), [0.0]
        count = [start]

        def advance(n: int = 1) -> None:
            count[0] += n
            now = time.monotonic()
            if now - shown[0] >= 1.0 or count[0] >= total:
                shown[0] = now
                rate = (count[0] - start) / max(now - began, 1e-6)
                eta = (total - count[0]) / rate if rate > 0 else 0
                print(f"\r  {phase:<12} {count[0]:>9,} / {total:,}  {rate:>8,.0f}/s  ETA {eta / 60:>6.1f} min  ",
                      end="", flush=True)

        yield advance
        print(flush=True)


STOP = threading.Event()  # set by SIGINT/SIGTERM: the current batch or step finishes, then the run ends


class Stopped(Exception):
    """The run was asked to stop; what is done is recorded, a rerun continues."""


def check_stop() -> None:
    if STOP.is_set():
        raise Stopped()


def call(method, request, metadata, timeout: float = 60.0, tolerate=()):
    """One RPC, retried while the service is busy or starting; errors with a code in `tolerate`
    come back as the exception instead of being raised."""
    for attempt in range(30):
        try:
            return method(request, metadata=metadata, timeout=timeout)
        except grpc.RpcError as error:
            if error.code() in tolerate:
                return error
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED,
                                    grpc.StatusCode.ABORTED) or attempt == 29:
                raise
            time.sleep(min(5.0, 0.2 * 2 ** min(attempt, 5)))
    raise AssertionError("unreachable")


def eventually(fn, timeout: float = 300.0):
    """Peers learn of units and people from events: NOT_FOUND is retried for a while."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return fn()
        except grpc.RpcError as error:
            if error.code() not in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION) or \
                    time.monotonic() > deadline:
                raise
            time.sleep(1.0)


# ---- the seeder ----

@dataclass
class Unit:
    unit_id: str
    name: str
    level: int
    path: list[str]


class Seeder:
    def __init__(self, stack: Stack, client: MongoClient, fraction: float):
        self.stack = stack
        self.fraction = fraction
        self.db = client[f"{PREFIX}seed"]
        self.progress = Progress(self.db)
        self.issuer = TokenIssuer(Path(stack.secrets["JWT_PRIVATE_KEY_FILE"]).read_text(), ttl_seconds=86400)
        self.rng = random.Random(20260101)
        self.reg = registration_pb2_grpc.RegistrationServiceStub(grpc.insecure_channel(stack.target("registration")))
        self.ordering = ordering_pb2_grpc.OrderingServiceStub(grpc.insecure_channel(
            stack.target("ordering"), options=[("grpc.max_receive_message_length", 64 << 20)]))
        self.points = points_pb2_grpc.PointsServiceStub(grpc.insecure_channel(stack.target("points")))
        self.training = training_pb2_grpc.TrainingServiceStub(grpc.insecure_channel(stack.target("training")))
        self.units: dict[str, Unit] = {}
        self._tokens: dict[str, list] = {}
        self._lock = threading.Lock()

    def scaled(self, n: int) -> int:
        return max(1, round(n * self.fraction))

    # ---- tokens: as registration signs them ----

    def token(self, subject: str, role: int, unit: Unit, name: str = "", number: str = "") -> list:
        with self._lock:
            cached = self._tokens.get(subject)
        if cached is None:
            token, _ = self.issuer.issue(Principal(
                subject=subject, district_id=DISTRICT, role=role, unit_id=unit.unit_id, unit_level=unit.level,
                unit_path=tuple(unit.path), unit_name=unit.name, display_name=name, volunteer_number=number))
            cached = [("authorization", f"Bearer {token}")]
            with self._lock:
                self._tokens[subject] = cached
        return cached

    def admin(self, unit_id: str) -> list:
        unit = self.units[unit_id]
        return self.token(f"adm_scale_{unit_id}", c.ROLE_UNIT_ADMIN, unit, f"{unit.name}管理员")

    # ---- 1: the unit tree and its admins ----

    def tree(self) -> None:
        began = time.monotonic()
        launcher_env = self.stack.procs["registration"].env
        import subprocess

        subprocess.run([sys.executable, "-m", "services.registration.bootstrap", "--district", DISTRICT,
                        "--center-name", CENTER_NAME, "--admin-username", "center-admin", "--admin-password",
                        PASSWORD, "--admin-name", "中心管理员"], env=launcher_env, check=True, stdout=subprocess.DEVNULL)
        login = self.reg.Login(reg.LoginRequest(district_id=DISTRICT, kind=reg.PRINCIPAL_KIND_ADMIN,
                                                login="center-admin", password=PASSWORD), timeout=30)
        center = Unit(login.claims.unit.unit_id, login.claims.unit.name, c.UNIT_LEVEL_CENTER,
                      list(login.claims.unit.path))
        self.units[center.unit_id] = center
        center_admin = [("authorization", f"Bearer {login.access_token}")]
        rng = random.Random(1)
        towns = TOWNS[:max(1, round(20 * min(1.0, self.fraction * 20)))] if self.fraction < 0.05 else TOWNS
        plan: list[tuple[str, str, int, str]] = []  # (parent name path, name, level, key)
        stations_total, yards_total = self.scaled(300), self.scaled(1000)
        for t, town in enumerate(towns):
            suffix = "新时代文明实践所"
            plan.append(("", f"{town}{suffix}", c.UNIT_LEVEL_INSTITUTE, f"i{t}"))
            n_stations = stations_total // len(towns) + (t < stations_total % len(towns))
            villages = set()
            while len(villages) < n_stations:
                village = rng.choice(VILLAGE_FIRST) + rng.choice(VILLAGE_FIRST + VILLAGE_SECOND) + \
                    ("社区" if town.endswith("街道") else "村")
                villages.add(village)
            for s, village in enumerate(sorted(villages)):
                plan.append((f"i{t}", f"{village}新时代文明实践站", c.UNIT_LEVEL_STATION, f"i{t}s{s}"))
        stations = [p for p in plan if p[2] == c.UNIT_LEVEL_STATION]
        for y in range(yards_total):
            station = stations[y % len(stations)]
            village = station[1].removesuffix("新时代文明实践站")
            plan.append((station[3], f"{village}{COURTYARD_NAMES[y // len(stations) % len(COURTYARD_NAMES)]}",
                         c.UNIT_LEVEL_COURTYARD, f"{station[3]}y{y // len(stations)}"))
        by_key = {"": center}
        known: dict[tuple[str, str], reg.Unit] = {}
        with self.progress.bar("units", len(plan) + 1) as advance:
            advance()
            for parent_key, name, level, key in plan:
                check_stop()
                parent = by_key[parent_key]
                if (parent.unit_id, "") not in known:  # the parent's children as they are (a rerun)
                    known[(parent.unit_id, "")] = None
                    token = ""
                    while True:
                        page = call(self.reg.ListSubtree, reg.ListSubtreeRequest(
                            root_unit_id=parent.unit_id, level=level, page=c.PageRequest(page_size=100,
                                                                                         page_token=token)),
                            center_admin)
                        for u in page.units:
                            known[(u.parent_unit_id, u.name)] = u
                        token = page.page.next_page_token
                        if not token:
                            break
                unit = known.get((parent.unit_id, name)) or call(self.reg.CreateUnit, reg.CreateUnitRequest(
                    parent_unit_id=parent.unit_id, name=name, level=level, head_name=person_name(rng),
                    head_phone=phone(len(by_key), "135")), center_admin).unit
                by_key[key] = self.units[unit.unit_id] = Unit(unit.unit_id, unit.name, unit.level, list(unit.path))
                advance()
        self.center = center
        self.center_admin = center_admin
        if not self.progress.done("admins"):
            with self.progress.bar("admins", len(self.units) - 1) as advance, ThreadPoolExecutor(4) as pool:
                def create(unit: Unit) -> None:
                    call(self.reg.CreateAdminAccount, reg.CreateAdminAccountRequest(
                        unit_id=unit.unit_id, username=f"a{unit.unit_id[-10:].lower()}", password=PASSWORD,
                        display_name=f"{unit.name}管理员"), center_admin, tolerate=(grpc.StatusCode.ALREADY_EXISTS,))
                    advance()
                list(pool.map(create, [u for u in self.units.values() if u.unit_id != center.unit_id]))
            self.progress.finish("admins", began)
        self.progress.finish("units", began, units=len(self.units))

    # ---- 2: people, through registration's roll import ----

    def _weights(self, units: list[Unit], rng: random.Random) -> list[float]:
        """How many people each unit has, relative to the others: villages differ in size."""
        return [rng.lognormvariate(0, 0.45) for _ in units]

    def volunteers(self) -> None:
        began = time.monotonic()
        rng = random.Random(2)
        total = self.scaled(179_000)
        levels = defaultdict(list)
        for unit in self.units.values():
            levels[unit.level].append(unit)
        yards = sorted(levels[c.UNIT_LEVEL_COURTYARD], key=lambda u: u.unit_id)
        yard_weights = list(_cumulative(self._weights(yards, rng)))
        higher = sorted(levels[c.UNIT_LEVEL_STATION] + levels[c.UNIT_LEVEL_INSTITUTE], key=lambda u: u.unit_id)
        rows: list[tuple[int, reg.VolunteerImportRow]] = []
        for n in range(total):
            roll = rng.random()
            first = self.center if roll < 0.005 else rng.choice(higher) if roll < 0.10 else \
                yards[bisect.bisect(yard_weights, rng.random() * yard_weights[-1])]
            units = [first.unit_id]
            if first.level == c.UNIT_LEVEL_COURTYARD and rng.random() < 0.05:
                units.append(first.path[-2])  # also serving at its station
            rows.append((n, reg.VolunteerImportRow(
                name=person_name(rng), national_id=national_id(n), phone=phone(n, "139"),
                political_status=rng.choice(POLITICAL), skills=rng.sample(SKILLS, rng.choice((1, 1, 2, 2, 3))),
                service_unit_ids=units, availability=c.Availability(
                    weekdays=sorted(rng.sample(range(1, 8), rng.randint(2, 5))),
                    periods=sorted(rng.sample(range(1, 4), rng.randint(1, 2)))))))
        self._import("volunteers", rows, lambda batch: call(self.reg.ImportVolunteers, reg.ImportVolunteersRequest(
            rows=[r for _, r in batch]), self.center_admin, timeout=300), lambda n, row, result: {
                "_id": result.id, "n": n, "kind": "volunteer", "number": result.volunteer_number,
                "units": list(row.service_unit_ids), "skills": list(row.skills), "status": reg.VOLUNTEER_STATUS_ACTIVE})
        # a few signed up themselves and wait for approval; a few were suspended
        pending = self.scaled(600)
        with self.progress.bar("sign-ups", pending) as advance:
            for n in range(total, total + pending):
                yard = yards[n % len(yards)]
                call(self.reg.RegisterVolunteer, reg.RegisterVolunteerRequest(
                    district_id=DISTRICT, name=person_name(rng), national_id=national_id(n), phone=phone(n, "139"),
                    password=PASSWORD, political_status=reg.POLITICAL_STATUS_MASSES, skills=[rng.choice(SKILLS)],
                    service_unit_ids=[yard.unit_id]), None, tolerate=(grpc.StatusCode.ALREADY_EXISTS,))
                advance()
        suspended = [d["_id"] for d in self.db.people.find({"kind": "volunteer"}, {"_id": 1}).sort("n", 1)
                     .limit(self.scaled(400) * 7) if d["_id"]][::7]
        for vid in suspended:
            call(self.reg.SuspendVolunteer, reg.SuspendVolunteerRequest(volunteer_id=vid, reason="长期未参加志愿服务"),
                 self.center_admin, tolerate=(grpc.StatusCode.FAILED_PRECONDITION,))
        self.db.people.update_many({"_id": {"$in": suspended}}, {"$set": {"status": reg.VOLUNTEER_STATUS_SUSPENDED}})
        self.progress.finish("volunteers", began, volunteers=total + pending, suspended=len(suspended))

    def residents(self) -> None:
        began = time.monotonic()
        rng = random.Random(3)
        yards = sorted((u for u in self.units.values() if u.level == c.UNIT_LEVEL_COURTYARD), key=lambda u: u.unit_id)
        weights = list(_cumulative(self._weights(yards, rng)))
        rows = [(n, reg.ResidentImportRow(name=person_name(rng), phone=phone(n, "150"), courtyard_unit_id=yards[
            bisect.bisect(weights, rng.random() * weights[-1])].unit_id)) for n in range(self.scaled(300_000))]
        self._import("residents", rows, lambda batch: call(self.reg.ImportResidents, reg.ImportResidentsRequest(
            rows=[r for _, r in batch]), self.center_admin, timeout=300), lambda n, row, result: {
                "_id": result.id, "n": n, "kind": "resident", "yard": row.courtyard_unit_id, "name": row.name})
        self.progress.finish("residents", began, residents=len(rows))

    def _import(self, phase: str, rows: list, send: Callable, record: Callable, batch_size: int = 500) -> None:
        """Sends the rows in batches, after the last batch a previous run finished; people a
        previous run registered come back as already registered and are not made twice."""
        start = self.progress.state(phase).get("batches", 0)
        batches = [rows[at:at + batch_size] for at in range(0, len(rows), batch_size)]
        with self.progress.bar(phase, len(rows), start * batch_size) as advance:
            for number in range(start, len(batches)):
                check_stop()
                batch = batches[number]
                reply = send(batch)
                people = [record(n, row, result) for (n, row), result in zip(batch, reply.rows, strict=True)
                          if result.id]
                if people:
                    self.db.people.insert_many(people, ordered=False)
                self.progress.save(phase, batches=number + 1)
                advance(len(batch))

    # ---- 3: teams ----

    def teams(self) -> None:
        began = time.monotonic()
        rng = random.Random(4)
        serving = defaultdict(list)  # unit -> active volunteers serving in its subtree (a sample)
        for person in self.db.people.find({"kind": "volunteer", "status": reg.VOLUNTEER_STATUS_ACTIVE},
                                          {"units": 1, "skills": 1}):
            for unit_id in person["units"]:
                for ancestor in self.units[unit_id].path:
                    if len(serving[ancestor]) < 400:
                        serving[ancestor].append(person)
        plan: list[tuple[Unit, str, int]] = [(self.center, f"凉州区{name}", skill) for name, skill in SPECIALTY_TEAMS]
        institutes = [u for u in self.units.values() if u.level == c.UNIT_LEVEL_INSTITUTE]
        stations = [u for u in self.units.values() if u.level == c.UNIT_LEVEL_STATION]
        kinds = ["志愿服务分队", "理论宣讲分队", "文艺志愿分队", "助老志愿分队", "环保志愿分队", "法律服务分队"]
        for unit in institutes:
            short = unit.name.removesuffix("新时代文明实践所")
            plan += [(unit, short + kind, 0) for kind in kinds]
        squads = ["志愿服务小队", "巾帼志愿小队", "党员志愿小队", "青年志愿小队"]
        remaining = max(0, self.scaled(1127) - len(plan))
        for i in range(remaining):
            unit = stations[i % len(stations)]
            plan.append((unit, unit.name.removesuffix("新时代文明实践站") + squads[i // len(stations) % len(squads)], 0))
        with self.progress.bar("teams", len(plan)) as advance:
            existing: dict[str, dict[str, reg.Team]] = {}
            for unit, name, skill in plan:
                check_stop()
                if unit.unit_id not in existing:
                    existing[unit.unit_id] = {t.name: t for t in _all_pages(lambda token, u=unit: call(
                        self.reg.ListTeams, reg.ListTeamsRequest(unit_id=u.unit_id, page=c.PageRequest(
                            page_size=100, page_token=token)), self.center_admin), "teams")
                        if t.unit.unit_id == unit.unit_id}
                pool = [p for p in serving[unit.unit_id] if not skill or skill in p["skills"]] or serving[unit.unit_id]
                members = rng.sample(pool, min(len(pool), rng.randint(5, 12)))
                if not members:
                    advance()
                    continue
                team = existing[unit.unit_id].get(name) or call(self.reg.CreateTeam, reg.CreateTeamRequest(
                    unit_id=unit.unit_id, name=name, specialty=skill, leader_volunteer_id=members[0]["_id"]),
                    self.center_admin).team
                for member in members[1:]:
                    if member["_id"] not in team.member_volunteer_ids:
                        call(self.reg.AddTeamMember, reg.AddTeamMemberRequest(team_id=team.team_id,
                                                                              volunteer_id=member["_id"]),
                             self.center_admin, tolerate=(grpc.StatusCode.ALREADY_EXISTS,))
                self.db.teams.update_one({"_id": team.team_id}, {"$set": {
                    "unit": unit.unit_id, "members": [m["_id"] for m in members]}}, upsert=True)
                advance()
        self.progress.finish("teams", began, teams=len(plan))

    # ---- 4: menu, point rules, training ----

    def catalog(self) -> None:
        began = time.monotonic()
        menu = {i.name: i for i in _all_pages(lambda token: call(self.ordering.ListMenu, op.ListMenuRequest(
            page=c.PageRequest(page_size=100, page_token=token)), self.center_admin), "items")}
        for name, description, category, level, skills, certs, minutes, rule in seed_ordering.MENU:
            if name not in menu:
                request = op.PublishMenuItemRequest(
                    name=name, description=description, category=category, handling_level=level,
                    required_skills=skills, required_certifications=certs, expected_minutes=minutes, points_rule=rule)
                eventually(lambda r=request: call(self.ordering.PublishMenuItem, r, self.center_admin))
        rules = call(self.points.GetPointRules, pp.GetPointRulesRequest(), self.center_admin).rules
        if rules.version == 0:
            call(self.points.SetPointRules, pp.SetPointRulesRequest(rules=seed_points._rules(), expected_version=0),
                 self.center_admin)
        courses = {co.content.title: co for co in _all_pages(lambda token: call(
            self.training.ListCourses, tp.ListCoursesRequest(page=c.PageRequest(page_size=100, page_token=token)),
            self.center_admin), "courses")}
        for content in seed_training.CATALOG:
            if content.title not in courses:
                courses[content.title] = eventually(lambda co=content: call(
                    self.training.CreateCourse, tp.CreateCourseRequest(content=co), self.center_admin)).course
        # 台账补录: the district's training before the platform, certifications included
        rng = random.Random(5)
        active = [p for p in self.db.people.find({"kind": "volunteer", "status": reg.VOLUNTEER_STATUS_ACTIVE},
                                                 {"skills": 1}).sort("n", 1)]
        completions = [(p["_id"], "志愿服务通识") for p in active[::9]]
        completions += [(p["_id"], "应急救护") for p in active if c.SKILL_EMERGENCY_RESCUE in p["skills"]][::2]
        completions += [(p["_id"], "法律服务基础") for p in active if c.SKILL_LEGAL_AID in p["skills"]][::2]
        start = self.progress.state("training").get("completions", 0)
        with self.progress.bar("training", len(completions), start) as advance:
            for n in range(start, len(completions)):
                check_stop()
                volunteer_id, title = completions[n]
                eventually(lambda v=volunteer_id, t=title: call(
                    self.training.RecordHistoricalCompletion, tp.RecordHistoricalCompletionRequest(
                        volunteer_id=v, course_id=courses[t].course_id,
                        completed_on=(dt.date.today() - dt.timedelta(days=rng.randint(120, 1500))).isoformat(),
                        reason="线下集中培训台账补录"), self.center_admin, tolerate=(grpc.StatusCode.ALREADY_EXISTS,)))
                if n % 100 == 0:
                    self.progress.save("training", completions=n)
                advance()
        self.menu = {i.name: i for i in _all_pages(lambda token: call(self.ordering.ListMenu, op.ListMenuRequest(
            page=c.PageRequest(page_size=100, page_token=token)), self.center_admin), "items")}
        self.progress.finish("catalog", began, courses=len(courses), completions=len(completions))

    # ---- 5: 900 days of orders and activities, on ordering's clock ----

    def people(self) -> None:
        """The volunteers, residents and teams the timeline acts with (as imported)."""
        self.volunteer_docs = [p for p in self.db.people.find({"kind": "volunteer"}).sort("n", 1)]
        self.under: dict[str, list[dict]] = defaultdict(list)  # unit -> active volunteers of its subtree
        for person in self.volunteer_docs:
            if person.get("status") == reg.VOLUNTEER_STATUS_ACTIVE:
                for ancestor in {a for unit_id in person["units"] for a in self.units[unit_id].path}:
                    self.under[ancestor].append(person)
        self.residents_of: dict[str, list[dict]] = defaultdict(list)  # courtyard -> residents
        for person in self.db.people.find({"kind": "resident"}, {"yard": 1, "n": 1}).sort("n", 1):
            self.residents_of[person["yard"]].append(person)
        self.teams_at: dict[str, list[dict]] = defaultdict(list)
        for team in self.db.teams.find().sort("_id", 1):
            self.teams_at[team["unit"]].append(team)

    def resident_token(self, resident: dict) -> list:
        return self.token(resident["_id"], c.ROLE_RESIDENT, self.units[resident["yard"]])

    def volunteer_token(self, volunteer: dict) -> list:
        return self.token(volunteer["_id"], c.ROLE_VOLUNTEER, self.units[volunteer["units"][0]],
                          number=volunteer.get("number", ""))

    def timeline(self) -> None:
        began = time.monotonic()
        state = self.progress.state("timeline")
        origin = state.get("origin") or dt.datetime.now(dt.UTC).replace(microsecond=0)
        if "origin" not in state:
            self.progress.save("timeline", origin=origin)
        origin = origin.replace(tzinfo=dt.UTC) if origin.tzinfo is None else origin
        done_until = state.get("done_until")
        done_until = done_until.replace(tzinfo=dt.UTC) if done_until is not None and done_until.tzinfo is None \
            else done_until
        self.ids: dict[str, str] = {d["_id"]: d["id"] for d in self.db.entities.find()}
        stories = self._stories(origin)
        heap: list = []
        skipped = 0
        for seq, (key, story) in enumerate(stories):
            for at, act in story:
                if done_until is None or at >= done_until:
                    heapq.heappush(heap, (at, seq, key, act, story))
                    break
                skipped += 1
        total = len(stories) * 9  # about as many steps as a story has; the bar's ETA is a guide
        end = min(origin, dt.datetime.now(dt.UTC))
        outcomes: dict[str, int] = defaultdict(int)
        with self.progress.bar("timeline", total, skipped) as advance, ThreadPoolExecutor(16) as pool:
            while heap and heap[0][0] < end:
                check_stop()
                step = heap[0][0] - (heap[0][0] - dt.datetime(2000, 1, 1, tzinfo=dt.UTC)) % STEP
                due: dict[str, list] = defaultdict(list)
                while heap and heap[0][0] < step + STEP:
                    at, seq, key, act, story = heapq.heappop(heap)
                    due[key].append((seq, act, story))
                self.stack.set_clock(step)
                self._new_ids: dict[str, str] = {}
                for key, results in zip(due, pool.map(self._play, due.values()), strict=True):
                    for (seq, story), outcome in results:
                        outcomes[outcome] += 1
                        if outcome == "derailed":
                            continue
                        # a story's next step waits for the next tick at least
                        nxt = next(story, None)
                        if nxt is not None:
                            heapq.heappush(heap, (max(nxt[0], step + STEP), seq, key, nxt[1], story))
                if self._new_ids:
                    self.db.entities.insert_many([{"_id": k, "id": v} for k, v in self._new_ids.items()],
                                                 ordered=False)
                self.progress.save("timeline", done_until=step + STEP, outcomes=dict(outcomes))
                advance(sum(len(v) for v in due.values()))
        self.stack.set_clock(None)
        self.progress.finish("timeline", began, outcomes=dict(outcomes))

    def _play(self, acts: list) -> list:
        """An entity's actions of one step, in order; what became of each."""
        done = []
        for seq, act, story in acts:
            try:
                outcome = "done" if act() else "derailed"
            except grpc.RpcError as error:
                outcome = "derailed"
                self.db.errors.insert_one({"code": error.code().name, "details": (error.details() or "")[:300],
                                           "at": dt.datetime.now(dt.UTC)})
            done.append(((seq, story), outcome))
            if outcome == "derailed":
                break
        return done

    # ---- the stories: what happens to each order and activity, drawn from the fixed seed ----

    def _stories(self, origin: dt.datetime) -> list[tuple[str, Iterator]]:
        rng = random.Random(6)
        start = origin - dt.timedelta(days=DAYS)
        yards = sorted(self.residents_of)
        weights = list(_cumulative([len(self.residents_of[y]) for y in yards]))
        items = [i for i in self.menu.values() if not i.required_certifications]
        stories = []
        for n, placed in enumerate(_moments(rng, start, origin, self.scaled(100_000))):
            yard = yards[bisect.bisect(weights, rng.random() * weights[-1])]
            resident = rng.choice(self.residents_of[yard])
            item = rng.choices(items, weights=[3 if i.handling_level == c.UNIT_LEVEL_COURTYARD else 1 for i in items])[0]
            stories.append((f"o{n}", self._order_story(f"o{n}", random.Random(rng.random()), placed, resident, item)))
        units = sorted(self.units.values(), key=lambda u: u.unit_id)
        organizers = rng.choices(units, k=self.scaled(12_800), weights=[
            {c.UNIT_LEVEL_COURTYARD: 7, c.UNIT_LEVEL_STATION: 6, c.UNIT_LEVEL_INSTITUTE: 40,
             c.UNIT_LEVEL_CENTER: 2000}[u.level] / 1000 for u in units])
        for n, (starts, unit) in enumerate(zip(_moments(rng, start + dt.timedelta(days=7), origin + dt.timedelta(
                days=30), len(organizers)), organizers, strict=True)):
            stories.append((f"a{n}", self._activity_story(f"a{n}", random.Random(rng.random()), starts, unit)))
        return stories

    def _order_story(self, key: str, rng: random.Random, placed: dt.datetime, resident: dict, item) -> Iterator:
        """An order from placement to its end (or to where it stands today)."""
        minutes = lambda lo, hi: dt.timedelta(minutes=rng.randint(lo, hi))  # noqa: E731
        yard = self.units[resident["yard"]]
        holder = self.units[yard.path[item.handling_level - c.UNIT_LEVEL_CENTER]]
        t = placed
        yield t, lambda: self.place(key, resident, item, placed)
        fate = rng.random()
        if fate < 0.03:
            t += minutes(5, 90)
            yield t, lambda: self.order_call(key, "CancelOrder", op.CancelOrderRequest(reason="已自行解决"),
                                             self.resident_token(resident))
            return
        if fate < 0.045 and holder.level == c.UNIT_LEVEL_COURTYARD:
            holder = self.units[holder.path[-2]]  # left unacknowledged: the scheduler hands it to the station
            t += dt.timedelta(hours=2, minutes=rng.randint(30, 90))
        else:
            t += minutes(5, 100)
        yield t, lambda h=holder: self.order_call(key, "AcknowledgeOrder", op.AcknowledgeOrderRequest(),
                                                  self.admin(h.unit_id), retry_denied=True)
        if holder.level == c.UNIT_LEVEL_CENTER and rng.random() < 0.1:
            t += minutes(30, 600)
            yield t, lambda: self.order_call(key, "RejectOrder", op.RejectOrderRequest(reason="不属于志愿服务范围"),
                                             self.admin(holder.unit_id))
            return
        if holder.level != c.UNIT_LEVEL_CENTER and rng.random() < 0.05:
            t += minutes(20, 240)
            yield t, lambda h=holder: self.order_call(key, "EscalateOrder", op.EscalateOrderRequest(
                reason="本级无合适志愿者，报上级协调"), self.admin(h.unit_id))
            holder = self.units[holder.path[-2]]
            t += minutes(10, 200)
            yield t, lambda h=holder: self.order_call(key, "AcknowledgeOrder", op.AcknowledgeOrderRequest(),
                                                      self.admin(h.unit_id))
        qualified = [v for v in self.under[holder.unit_id] if set(item.required_skills) <= set(v["skills"])]
        if not qualified:
            return  # nobody to send: it waits, acknowledged, as some do
        t += minutes(10, 300)
        mode = rng.random()
        admin = self.admin(holder.unit_id)
        if mode < 0.10:
            volunteers = [rng.choice(qualified)]
            yield t, lambda: self.order_call(key, "OpenOrder", op.OpenOrderRequest(), admin)
            t += minutes(10, 600)
            yield t, lambda: self.order_call(key, "ClaimOrder", op.ClaimOrderRequest(),
                                             self.volunteer_token(volunteers[0]))
        else:
            volunteers = rng.sample(qualified, min(len(qualified), 1 if mode < 0.85 else 2))
            if mode > 0.97 and len(qualified) > len(volunteers):  # the first one gives it back
                first = rng.choice([v for v in qualified if v not in volunteers])
                yield t, lambda: self.order_call(key, "DispatchOrder", op.DispatchOrderRequest(
                    volunteer_ids=[first["_id"]]), admin)
                t += minutes(10, 240)
                yield t, lambda: self.order_call(key, "DeclineOrder", op.DeclineOrderRequest(reason="临时有事"),
                                                 self.volunteer_token(first))
                t += minutes(10, 120)
            yield t, lambda: self.order_call(key, "DispatchOrder", op.DispatchOrderRequest(
                volunteer_ids=[v["_id"] for v in volunteers]), admin)
            for volunteer in volunteers:
                t += minutes(5, 180)
                yield t, lambda v=volunteer: self.order_call(key, "AcceptOrder", op.AcceptOrderRequest(),
                                                             self.volunteer_token(v))
        t += dt.timedelta(hours=rng.randint(2, 60))
        for volunteer in volunteers:
            yield t, lambda v=volunteer: self.on_site(key, admin, v, "CheckInOrder")
        t += dt.timedelta(minutes=max(20, int(rng.gauss(item.expected_minutes, item.expected_minutes / 4))))
        yield t, lambda: self.on_site(key, admin, volunteers[0], "CheckOutOrder")
        t += minutes(30, 1440)
        yield t, lambda: self.order_call(key, "ConfirmOrderHours", op.ConfirmOrderHoursRequest(), admin)
        if rng.random() < 0.75:
            t += minutes(60, 4320)
            rating = rng.choices((5, 4, 3, 2), weights=(70, 22, 6, 2))[0]
            yield t, lambda: self.order_call(key, "RateOrder", op.RateOrderRequest(
                rating=rating, comment=rng.choice(("服务很周到", "志愿者很耐心", "非常满意，谢谢", "准时上门", ""))),
                self.resident_token(resident))
            if rng.random() < 0.4:
                t += minutes(60, 2880)
                yield t, lambda: self.order_call(key, "CloseOrder", op.CloseOrderRequest(), admin)
        # the rest closes itself when its rating window ends (the scheduler)

    def _activity_story(self, key: str, rng: random.Random, starts: dt.datetime, unit: Unit) -> Iterator:
        admin = self.admin(unit.unit_id)
        level = {c.UNIT_LEVEL_COURTYARD: "小院讲堂", c.UNIT_LEVEL_STATION: "实践站活动日",
                 c.UNIT_LEVEL_INSTITUTE: "实践所主题活动", c.UNIT_LEVEL_CENTER: "全区志愿服务集中行动"}[unit.level]
        topic, category = rng.choice(ACTIVITY_TOPICS)
        ends = starts + dt.timedelta(minutes=rng.choice((60, 90, 120, 180)))
        yards = [y for y in self.residents_of if unit.unit_id in self.units[y].path]
        volunteers = rng.sample(self.under[unit.unit_id], min(len(self.under[unit.unit_id]), rng.randint(2, 6)))
        residents = [rng.choice(self.residents_of[rng.choice(yards)]) for _ in range(rng.randint(3, 15))] if yards \
            else []
        request = op.PlanActivityRequest(
            unit_id=unit.unit_id, title=f"{level}：{topic}"[:60], category=category, location=f"{unit.name}活动室",
            description=f"{unit.name}组织开展{topic}，欢迎群众参加。", starts_at=_ts(starts), ends_at=_ts(ends),
            volunteer_capacity=10, resident_capacity=60)
        yield starts - dt.timedelta(days=7), lambda: self.plan_activity(key, admin, request)
        yield starts - dt.timedelta(days=6), lambda: self.activity_call(key, "PublishActivity",
                                                                        op.PublishActivityRequest(), admin)
        for volunteer in volunteers:
            yield starts - dt.timedelta(hours=rng.randint(2, 120)), lambda v=volunteer: self.activity_call(
                key, "SignUpActivity", op.SignUpActivityRequest(), self.volunteer_token(v), tolerate_done=True)
        # a step runs at its start, up to a step before the moment: check-in opens 30 minutes before
        # the start, completion needs the end passed
        yield starts + dt.timedelta(minutes=5), lambda: all(self.activity_check_in(key, admin, v) for v in volunteers)
        yield starts + dt.timedelta(minutes=10), lambda: all(self.activity_call(
            key, "RecordActivityAttendance", op.RecordActivityAttendanceRequest(resident_id=r["_id"]), admin,
            tolerate_done=True) for r in {r["_id"]: r for r in residents}.values())
        yield ends + STEP + dt.timedelta(minutes=10), lambda: self.activity_call(key, "CompleteActivity",
                                                                          op.CompleteActivityRequest(), admin)
        for resident in list({r["_id"]: r for r in residents}.values())[:rng.randint(0, 4)]:
            yield ends + dt.timedelta(hours=rng.randint(1, 48)), lambda r=resident: self.activity_call(
                key, "RateActivity", op.RateActivityRequest(rating=rng.choice((5, 5, 4)), comment="内容很实用"),
                self.resident_token(r), tolerate_done=True)

    # ---- the calls ----

    def place(self, key: str, resident: dict, item, placed: dt.datetime) -> bool:
        token = self.resident_token(resident)
        if key not in self.ids:  # a killed run may have placed it: find it in the resident's orders
            for order in call(self.ordering.ListMyOrders, op.ListMyOrdersRequest(page=c.PageRequest(page_size=100)),
                              token).orders:
                at = order.placed_at.ToDatetime(dt.UTC)
                if order.item_id == item.item_id and abs((at - placed).total_seconds()) < STEP.total_seconds() * 2:
                    self._adopt(key, order.order_id)
                    return True
            order = eventually(lambda: call(self.ordering.PlaceOrder, op.PlaceOrderRequest(
                item_id=item.item_id, note=seed_ordering.NOTES.get(item.name, "")), token), timeout=120).order
            self._adopt(key, order.order_id)
        return True

    def _adopt(self, key: str, entity_id: str) -> None:
        with self._lock:
            self.ids[key] = entity_id
            self._new_ids[key] = entity_id

    def order_call(self, key: str, method: str, request, metadata: list, retry_denied: bool = False) -> bool:
        """A move of the order; one a killed run already made comes back refused and counts as done."""
        if key not in self.ids:
            return False
        request.order_id = self.ids[key]
        reply = call(getattr(self.ordering, method), request, metadata, tolerate=(
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED))
        if not isinstance(reply, grpc.RpcError):
            return True
        if reply.code() == grpc.StatusCode.PERMISSION_DENIED and retry_denied:
            # the scheduler has not handed it up yet: the unit above acknowledges once it has
            return self._retry(method, request, metadata)
        return self._refused(method, reply, done=reply.code() == grpc.StatusCode.FAILED_PRECONDITION
                             and "already" in (reply.details() or ""))

    def _refused(self, method: str, error: grpc.RpcError, done: bool) -> bool:
        """A refusal that means the step was made before (a rerun) counts as done; any other
        ends the story here, noted in wmscale_seed.errors."""
        if not done:
            self.db.errors.insert_one({"method": method, "code": error.code().name,
                                       "details": (error.details() or "")[:300], "at": dt.datetime.now(dt.UTC)})
        return done

    def _retry(self, method: str, request, metadata: list, attempts: int = 30) -> bool:
        for _ in range(attempts):
            reply = call(getattr(self.ordering, method), request, metadata, tolerate=(
                grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED))
            if not isinstance(reply, grpc.RpcError):
                return True
            time.sleep(1.0)
        return False

    def on_site(self, key: str, admin: list, volunteer: dict, method: str) -> bool:
        if key not in self.ids:
            return False
        order_id = self.ids[key]
        code = call(self.ordering.IssueOrderCheckinCode, op.IssueOrderCheckinCodeRequest(order_id=order_id),
                    admin).checkin.code
        request = op.CheckInOrderRequest(order_id=order_id, code=code) if method == "CheckInOrder" else \
            op.CheckOutOrderRequest(order_id=order_id, code=code, report="已按约定完成服务，群众满意")
        reply = call(getattr(self.ordering, method), request, self.volunteer_token(volunteer),
                     tolerate=(grpc.StatusCode.FAILED_PRECONDITION,))
        return not isinstance(reply, grpc.RpcError) or self._refused(method, reply, "already" in (reply.details() or ""))

    def plan_activity(self, key: str, admin: list, request) -> bool:
        if key not in self.ids:  # a killed run may have planned it: find it on the organizer's calendar
            starts = request.starts_at.ToDatetime(dt.UTC)
            for activity in call(self.ordering.ListActivities, op.ListActivitiesRequest(
                    unit_id=request.unit_id, subtree=True, starts_from=_ts(starts - dt.timedelta(minutes=1)),
                    starts_before=_ts(starts + dt.timedelta(minutes=1)), page=c.PageRequest(page_size=100)),
                    admin).activities:
                if activity.title == request.title and activity.unit.unit_id == request.unit_id:
                    self._adopt(key, activity.activity_id)
                    return True
            self._adopt(key, eventually(lambda: call(self.ordering.PlanActivity, request, admin),
                                        timeout=120).activity.activity_id)
        return True

    def activity_call(self, key: str, method: str, request, metadata: list, tolerate_done: bool = False) -> bool:
        if key not in self.ids:
            return False
        request.activity_id = self.ids[key]
        reply = call(getattr(self.ordering, method), request, metadata, tolerate=(
            grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.PERMISSION_DENIED))
        if not isinstance(reply, grpc.RpcError):
            return True
        return self._refused(method, reply, tolerate_done or "already" in (reply.details() or ""))

    def activity_check_in(self, key: str, admin: list, volunteer: dict) -> bool:
        if key not in self.ids:
            return False
        code = call(self.ordering.IssueActivityCheckinCode, op.IssueActivityCheckinCodeRequest(
            activity_id=self.ids[key]), admin, tolerate=(grpc.StatusCode.FAILED_PRECONDITION,))
        if isinstance(code, grpc.RpcError):
            return False
        return self.activity_call(key, "CheckInActivity", op.CheckInActivityRequest(code=code.checkin.code),
                                  self.volunteer_token(volunteer), tolerate_done=True)


def _cumulative(values: list[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def _moments(rng: random.Random, start: dt.datetime, end: dt.datetime, count: int) -> list[dt.datetime]:
    """`count` moments in [start, end), sorted: busier in recent months, by day between 08:00 and
    20:00 China time, on whole minutes."""
    days = (end - start).days
    found = []
    for _ in range(count):
        day = int(days * rng.random() ** 0.8)
        found.append(start.replace(hour=0, minute=0, second=0) + dt.timedelta(days=day, hours=rng.randint(0, 11),
                                                                            minutes=rng.randint(0, 59)))
    return sorted(m for m in found if m < end)


def _all_pages(fetch: Callable[[str], object], field_name: str) -> list:
    found, token = [], ""
    while True:
        page = fetch(token)
        found += list(getattr(page, field_name))
        token = page.page.next_page_token
        if not token:
            return found


PHASES = ("volunteers", "residents", "teams")


def ledger(seeder: Seeder, client: MongoClient, settle_seconds: float = 60.0) -> dict:
    """Waits for points' consumers to take in what the timeline published (the ledger stops
    growing), measuring the rate they wrote it at."""
    entries = client[f"{PREFIX}points"]["ledger_entries"]
    began, last, last_change = time.monotonic(), entries.estimated_document_count(), time.monotonic()
    first = last
    while time.monotonic() - last_change < settle_seconds:
        check_stop()
        time.sleep(10)
        count = entries.estimated_document_count()
        print(f"\r  ledger       {count:>9,} entries  {(count - first) / (time.monotonic() - began):>8,.0f}/s   ",
              end="", flush=True)
        if count != last:
            last, last_change = count, time.monotonic()
    print(flush=True)
    return {"ledger_entries": last, "written_while_waiting": last - first,
            "seconds_waited": round(time.monotonic() - began)}


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fraction", type=float, default=1.0,
                        help="the district at this fraction of its size (0.01: a hundredth), for a quick look")
    parser.add_argument("--data-dir", default=os.environ.get("WENMING_DATA", str(ROOT / ".data" / "scale")))
    args = parser.parse_args(argv)
    uri = os.environ.get("MONGODB_URI")
    if not uri or not os.environ.get("KAFKA_BOOTSTRAP_SERVERS"):
        print("MONGODB_URI and KAFKA_BOOTSTRAP_SERVERS must be set: run it through `make seed-scale`", file=sys.stderr)
        return 2
    client = MongoClient(uri)
    plan = client[f"{PREFIX}seed"]["phases"].find_one({"_id": "plan"})
    if plan and plan["fraction"] != args.fraction:
        print(f"{args.data_dir} holds a district seeded at --fraction {plan['fraction']}; use that, or remove the "
              "directory to start over", file=sys.stderr)
        return 2
    if plan and plan.get("finished"):
        print(f"the scale district is complete ({args.data_dir}, databases {PREFIX}*): {plan.get('summary')}")
        return 0
    client[f"{PREFIX}seed"]["phases"].update_one({"_id": "plan"}, {"$set": {"fraction": args.fraction}}, upsert=True)
    began = time.monotonic()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: (STOP.set(), print("\n  stopping after the current batch or step…",
                                                            flush=True)))
    stack = Stack(Path(args.data_dir))
    print(f"seeding district {DISTRICT} at {args.fraction:g} of 凉州区's size into {args.data_dir} "
          f"(databases {PREFIX}*)…", flush=True)
    stack.start()
    try:
        seeder = Seeder(stack, client, args.fraction)
        seeder.tree()
        for phase in PHASES:
            if not seeder.progress.done(phase):
                getattr(seeder, phase)()
        seeder.catalog()
        seeder.people()
        if not seeder.progress.done("timeline"):
            seeder.timeline()
        measured = ledger(seeder, client)
        summary = {name: client[f"{PREFIX}{db}"][coll].estimated_document_count() for name, (db, coll) in {
            "units": ("registration", "units"), "volunteers": ("registration", "volunteers"),
            "residents": ("registration", "residents"), "teams": ("registration", "teams"),
            "orders": ("ordering", "orders"), "activities": ("ordering", "activities"),
            "ledger_entries": ("points", "ledger_entries"), "certifications": ("training", "certifications"),
        }.items()}
        summary["seconds_this_run"] = round(time.monotonic() - began)
        summary.update(measured)
        client[f"{PREFIX}seed"]["phases"].update_one({"_id": "plan"}, {"$set": {"finished": True,
                                                                                 "summary": summary}})
        print(f"done: {summary}", flush=True)
    except Stopped:
        print("  stopped; run it again to continue where it stopped", flush=True)
        return 1
    finally:
        stack.set_clock(None)
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
