"""Seeds the demo district 凉州区 through the public APIs, so the demo exercises the same code
paths (validation, events) as real use. Idempotent: a second run only prints the logins.

Registration first: 1 center, 3 institutes, 9 stations, 27 courtyards, an admin for every
unit, ~200 volunteers with valid (synthetic) ID numbers, teams at every level, residents.
Then every other running service seeds itself from infra/local/seed_<service>.py, whose
`seed(ctx: SeedContext)` gets the district built here. Service that happened in the past (hours
measured between check-in and check-out, activities held earlier this month) goes through the
real flow with ordering's clock moved back (`ctx.set_clock`, launcher.demo_clock_file), which is
reset when seeding ends.
"""

from __future__ import annotations

import importlib
import random
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import seed_households  # infra/local, beside this file
import seed_venues  # infra/local, beside this file
from launcher import DEMO_REGION  # infra/local, beside this file

from services.common.pii import id_check_char
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

DISTRICT = "liangzhou"
PASSWORD = "Wenming@2026"
CENTER_NAME = "凉州区新时代文明实践中心"
# the demo city's account district: its 文明办 logs in there and reads 凉州区 through the roll-up
CITY_DISTRICT = DEMO_REGION["region_id"]
INSTITUTES = {
    "黄羊镇": ["广场村", "上庄村", "新店村"],
    "武南镇": ["白塔村", "刘庄村", "下双村"],
    "东大街街道": ["南关社区", "东关社区", "钟楼社区"],
}
COURTYARDS = ["幸福小院", "和美小院", "同心小院"]
SURNAMES = "王李张刘陈杨赵黄周吴徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤"
GIVEN = "建国秀英桂兰志强海燕丽娟文华晓明红梅玉兰春生德明淑珍永刚金凤国庆小平玉珍宏伟建华秀兰振华美玲子涵浩然欣怡宇轩梓萱俊杰雨桐思远佳怡"
REGION = "620602"  # 甘肃省武威市凉州区
SKILLS = [s for s in c.Skill.values() if s]
POLITICAL = [reg.POLITICAL_STATUS_CPC_MEMBER] * 3 + [reg.POLITICAL_STATUS_CYL_MEMBER] * 2 + [reg.POLITICAL_STATUS_MASSES] * 5
SPECIALTY_TEAMS = [("理论宣讲队", c.SKILL_THEORY_LECTURE), ("文化文艺队", c.SKILL_CULTURE_ART),
                   ("科学普及队", c.SKILL_SCIENCE_POP), ("法律服务队", c.SKILL_LEGAL_AID),
                   ("医疗健康队", c.SKILL_MEDICAL_HEALTH), ("环境保护队", c.SKILL_ENVIRONMENT),
                   ("应急救援队", c.SKILL_EMERGENCY_RESCUE)]


def synthetic_id(rng: random.Random, serial: int) -> str:
    year = rng.randint(1955, 2004)
    first17 = f"{REGION}{year}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}{serial % 1000:03d}"
    return first17 + id_check_char(first17)


def chinese_name(rng: random.Random) -> str:
    given = GIVEN[rng.randrange(0, len(GIVEN) // 2) * 2:][:2] if rng.random() < 0.7 else rng.choice(GIVEN)
    return rng.choice(SURNAMES) + given


@dataclass
class SeedContext:
    """What the registration seed built, for the other services' seeds."""

    targets: dict[str, str]                       # service name -> gRPC target
    center_admin: list[tuple[str, str]]           # gRPC metadata with the center admin's token
    center_id: str
    institutes: list[reg.Unit] = field(default_factory=list)
    stations: list[reg.Unit] = field(default_factory=list)
    courtyards: list[reg.Unit] = field(default_factory=list)
    volunteers: list[reg.Volunteer] = field(default_factory=list)
    volunteer_phones: dict[str, str] = field(default_factory=dict)   # volunteer id -> login phone
    residents: list[tuple[reg.Resident, str]] = field(default_factory=list)  # (resident, login phone)
    admin_logins: dict[str, str] = field(default_factory=dict)       # unit id -> admin user name
    rng: random.Random = field(default_factory=lambda: random.Random(2026))
    registration: object = None                                      # the Seeder, for logins
    set_clock: Callable[[float], None] | None = None                 # ordering's clock offset, seconds
    # verified minutes the ordering seed recorded: (volunteer id, recording unit id) -> minutes
    verified_minutes: Counter = field(default_factory=Counter)

    @property
    def demo_volunteer(self) -> reg.Volunteer:
        """The volunteer whose login the summary prints (13909310000)."""
        return self.volunteers[0]

    def login_admin(self, unit_id: str) -> list[tuple[str, str]]:
        return self.registration.login(reg.PRINCIPAL_KIND_ADMIN, self.admin_logins[unit_id])[0]

    def login_volunteer(self, volunteer_id: str) -> list[tuple[str, str]]:
        return self.registration.login(reg.PRINCIPAL_KIND_VOLUNTEER, self.volunteer_phones[volunteer_id])[0]

    def login_resident(self, phone: str) -> list[tuple[str, str]]:
        return self.registration.login(reg.PRINCIPAL_KIND_RESIDENT, phone)[0]


class Seeder:
    def __init__(self, registration_target: str):
        self.channel = grpc.insecure_channel(registration_target)
        self.stub = reg_grpc.RegistrationServiceStub(self.channel)

    def login(self, kind: int, login: str) -> tuple[list[tuple[str, str]], reg.Claims]:
        reply = self.stub.Login(reg.LoginRequest(district_id=DISTRICT, kind=kind, login=login, password=PASSWORD),
                                timeout=10)
        return [("authorization", f"Bearer {reply.access_token}")], reply.claims

    def already_seeded(self, admin) -> bool:
        center = self.stub.ListSubtree(reg.ListSubtreeRequest(), metadata=admin, timeout=10)
        return len(center.units) > 1

    def unit(self, admin, parent: str, name: str, level: int, head: str, phone: str) -> reg.Unit:
        return self.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=parent, name=name, level=level,
                                                          head_name=head, head_phone=phone),
                                    metadata=admin, timeout=10).unit

    def admin_for(self, ctx: SeedContext, unit: reg.Unit, username: str, display: str) -> None:
        self.stub.CreateAdminAccount(reg.CreateAdminAccountRequest(unit_id=unit.unit_id, username=username,
                                                                   password=PASSWORD, display_name=display),
                                     metadata=ctx.center_admin, timeout=10)
        ctx.admin_logins[unit.unit_id] = username


def bootstrap_center(registration_env: dict, district: str = DISTRICT, center_name: str = CENTER_NAME) -> None:
    subprocess.run([sys.executable, "-m", "services.registration.bootstrap", "--district", district,
                    "--center-name", center_name, "--admin-username", "center-admin",
                    "--admin-password", PASSWORD, "--admin-name", "中心管理员"],
                   env=registration_env, check=True, stdout=subprocess.DEVNULL)


def seed_registration(seeder: Seeder, ctx: SeedContext) -> None:
    rng, center_admin, center_id = ctx.rng, ctx.center_admin, ctx.center_id
    phone_serial = iter(range(10_000))

    def phone() -> str:
        return f"1380931{next(phone_serial):04d}"

    for i, (town, villages) in enumerate(INSTITUTES.items(), start=1):
        inst = seeder.unit(center_admin, center_id, f"{town}新时代文明实践所", c.UNIT_LEVEL_INSTITUTE,
                           chinese_name(rng), phone())
        seeder.admin_for(ctx, inst, f"inst{i}-admin", f"{town}实践所管理员")
        ctx.institutes.append(inst)
        for j, village in enumerate(villages, start=1):
            st = seeder.unit(center_admin, inst.unit_id, f"{village}新时代文明实践站", c.UNIT_LEVEL_STATION,
                             chinese_name(rng), phone())
            seeder.admin_for(ctx, st, f"st{i}{j}-admin", f"{village}实践站站长")
            ctx.stations.append(st)
            for k, yard in enumerate(COURTYARDS, start=1):
                cy = seeder.unit(center_admin, st.unit_id, f"{village}{yard}", c.UNIT_LEVEL_COURTYARD,
                                 chinese_name(rng), phone())
                seeder.admin_for(ctx, cy, f"cy{i}{j}{k}-admin", f"{village}{yard}院长")
                ctx.courtyards.append(cy)
    print(f"  units: 1 center, {len(ctx.institutes)} institutes, {len(ctx.stations)} stations, "
          f"{len(ctx.courtyards)} courtyards", flush=True)

    def register(n: int) -> reg.Volunteer:
        yard = ctx.courtyards[n % len(ctx.courtyards)]
        request = reg.RegisterVolunteerRequest(
            district_id=DISTRICT, name=chinese_name(rng), national_id=synthetic_id(rng, n), phone=f"1390931{n:04d}",
            password=PASSWORD, political_status=rng.choice(POLITICAL), skills=rng.sample(SKILLS, rng.randint(1, 3)),
            service_unit_ids=[yard.unit_id],
            availability=c.Availability(weekdays=sorted(rng.sample(range(1, 8), 3)),
                                        periods=sorted(rng.sample(range(1, 4), 2))))
        # the first 180 are registered by the center on site (ACTIVE); the rest signed up themselves (PENDING)
        metadata = center_admin if n < 180 else None
        return seeder.stub.RegisterVolunteer(request, metadata=metadata, timeout=30).volunteer

    with ThreadPoolExecutor(8) as pool:
        ctx.volunteers = list(pool.map(register, range(200)))
    ctx.volunteer_phones = {v.volunteer_id: f"1390931{n:04d}" for n, v in enumerate(ctx.volunteers)}
    active = [v for v in ctx.volunteers if v.status == reg.VOLUNTEER_STATUS_ACTIVE]
    print(f"  volunteers: {len(ctx.volunteers)} ({len(active)} active, {len(ctx.volunteers) - len(active)} "
          "pending approval)", flush=True)

    def members_of(unit: reg.Unit) -> list[reg.Volunteer]:
        return [v for v in active if any(unit.unit_id in u.path for u in v.service_units)]

    def team(unit_id: str, name: str, members: list[reg.Volunteer], specialty: int = 0) -> None:
        created = seeder.stub.CreateTeam(reg.CreateTeamRequest(unit_id=unit_id, name=name, specialty=specialty,
                                                               leader_volunteer_id=members[0].volunteer_id),
                                         metadata=center_admin, timeout=10).team
        for member in members[1:]:
            seeder.stub.AddTeamMember(reg.AddTeamMemberRequest(team_id=created.team_id,
                                                               volunteer_id=member.volunteer_id),
                                      metadata=center_admin, timeout=10)

    for name, specialty in SPECIALTY_TEAMS:
        candidates = [v for v in active if specialty in v.skills] or active
        team(center_id, f"凉州区{name}", candidates[:8], specialty)
    for unit, suffix in [(u, "志愿服务分队") for u in ctx.institutes] + [(u, "志愿服务小队") for u in ctx.stations]:
        short = unit.name.replace("新时代文明实践所", "").replace("新时代文明实践站", "")
        team(unit.unit_id, short + suffix, members_of(unit)[:6])
    print(f"  teams: {len(SPECIALTY_TEAMS) + len(ctx.institutes) + len(ctx.stations)}", flush=True)

    for n, yard in enumerate(ctx.courtyards * 2):
        phone_number = f"1370931{n:04d}"
        resident = seeder.stub.RegisterResident(reg.RegisterResidentRequest(
            district_id=DISTRICT, courtyard_unit_id=yard.unit_id, name=chinese_name(rng), phone=phone_number,
            password=PASSWORD), timeout=10).resident
        ctx.residents.append((resident, phone_number))
    print(f"  residents: {len(ctx.residents)}", flush=True)


def clock_control(path: Path) -> Callable[[float], None]:
    """Sets the offset a service's clock reads from its CLOCK_OFFSET_FILE (written atomically)."""
    def set_offset(seconds: float) -> None:
        tmp = path.with_suffix(".tmp")
        tmp.write_text(str(seconds))
        tmp.replace(path)

    return set_offset


def seed_other_services(ctx: SeedContext, running: list[str]) -> None:
    for name in running:
        try:
            module = importlib.import_module(f"seed_{name}")
        except ModuleNotFoundError:
            continue
        module.seed(ctx)


def seed(procs) -> None:
    by_name = {p.definition.name: p for p in procs}
    registration = by_name["registration"]
    print(f"seeding demo district {DISTRICT} ({CENTER_NAME})…", flush=True)
    bootstrap_center(registration.env)
    # the 文明办 of the demo city, reading 凉州区 through the roll-up (launcher.DEMO_REGION)
    bootstrap_center(registration.env, CITY_DISTRICT, "武威市文明办")
    seeder = Seeder(registration.grpc_target)
    center_admin, claims = seeder.login(reg.PRINCIPAL_KIND_ADMIN, "center-admin")
    if seeder.already_seeded(center_admin):
        print("  already seeded; keeping the existing data", flush=True)
    else:
        clock_file = by_name["ordering"].env.get("CLOCK_OFFSET_FILE") if "ordering" in by_name else None
        ctx = SeedContext(targets={n: p.grpc_target for n, p in by_name.items()}, center_admin=center_admin,
                          center_id=claims.unit.unit_id, registration=seeder,
                          set_clock=clock_control(Path(clock_file)) if clock_file else None)
        seed_registration(seeder, ctx)
        seed_venues.seed(ctx)  # registration's too
        seed_households.seed(ctx)
        try:
            seed_other_services(ctx, [n for n in by_name if n != "registration"])
        finally:
            if clock_file:
                Path(clock_file).unlink(missing_ok=True)  # ordering is back on the system clock
    print_summary(procs)


def print_summary(procs) -> None:
    print("\nWenming Cloud is up.")
    for proc in procs:
        print(f"  {proc.definition.name:<13} gRPC {proc.grpc_target}   {proc.http_base}/metrics")
    gateway = next((p for p in procs if p.definition.http_only), None)
    if gateway:
        print(f"\nThe app (phone or desk):     {gateway.http_base}/app/")
        print(f"指挥调度中心 (admins):        {gateway.http_base}/app/admin/center   大屏: ?screen=1")
        print(f"REST API (OpenAPI, Swagger): {gateway.http_base}/app/api-docs/")
    print(f"\nDemo district '{DISTRICT}', every password is {PASSWORD}")
    for who, kind, login in [("中心管理员", "admin", "center-admin"), ("黄羊镇实践所管理员", "admin", "inst1-admin"),
                             ("广场村实践站站长", "admin", "st11-admin"), ("广场村幸福小院院长", "admin", "cy111-admin"),
                             ("志愿者", "volunteer", "13909310000"), ("群众(居民)", "resident", "13709310000")]:
        print(f"  {who:<12} kind={kind:<10} login={login}")
    print("  every unit has an admin: inst<i>-admin, st<i><j>-admin, cy<i><j><k>-admin")
    print(f"  武威市文明办 (roll-up, district '{CITY_DISTRICT}') kind=admin      login=center-admin")
    print("\nTry:  grpcurl -plaintext -d '{\"district_id\":\"liangzhou\",\"kind\":\"PRINCIPAL_KIND_ADMIN\","
          "\"login\":\"center-admin\",\"password\":\"" + PASSWORD + "\"}' 127.0.0.1:50051 "
          "wenming.registration.v1.RegistrationService/Login", flush=True)
