"""Building districts through the real registration service, for any test that needs one."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
import uuid
from dataclasses import dataclass, field

import grpc

from services.common.pii import id_check_char
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

from .grpc_helpers import bearer

PASSWORD = "Test-pass-2026"
_phone_serial = itertools.count(1)
_id_serial = itertools.count(1)


def new_phone() -> str:
    return f"1{random.choice('3456789')}{random.randint(0, 9)}{next(_phone_serial) % 10**8:08d}"


def new_national_id(region: str = "110105", year: int = 1990) -> str:
    serial = next(_id_serial)
    first17 = f"{region}{year}{(serial % 12) + 1:02d}{(serial % 28) + 1:02d}{serial % 1000:03d}"
    return first17 + id_check_char(first17)


@dataclass
class Tree:
    center: reg.Unit
    institute: reg.Unit
    stations: list[reg.Unit]
    courtyards: list[reg.Unit]  # two per station, in station order
    admins: dict[str, str] = field(default_factory=dict)  # unit id -> token


class District:
    """A fresh district with its center and center admin, created by the bootstrap command."""

    def __init__(self, target: str, registration_env: dict[str, str]):
        self.id = f"d{uuid.uuid4().hex[:10]}"
        self.channel = grpc.insecure_channel(target)
        self.stub = reg_grpc.RegistrationServiceStub(self.channel)
        subprocess.run([sys.executable, "-m", "services.registration.bootstrap", "--district", self.id,
                        "--center-name", f"测试中心{self.id}", "--admin-username", "center-admin",
                        "--admin-password", PASSWORD], env=registration_env, check=True,
                       capture_output=True, timeout=60)
        self.center_admin_token = self.login(reg.PRINCIPAL_KIND_ADMIN, "center-admin")
        self.center_id = self.stub.VerifyToken(reg.VerifyTokenRequest(access_token=self.center_admin_token),
                                               timeout=5).claims.unit.unit_id

    def login(self, kind: int, login: str, password: str = PASSWORD) -> str:
        return self.stub.Login(reg.LoginRequest(district_id=self.id, kind=kind, login=login, password=password),
                               timeout=10).access_token

    def as_center(self) -> list[tuple[str, str]]:
        return bearer(self.center_admin_token)

    def unit(self, parent_id: str, name: str, level: int, token: str | None = None) -> reg.Unit:
        return self.stub.CreateUnit(reg.CreateUnitRequest(parent_unit_id=parent_id, name=name, level=level),
                                    metadata=bearer(token or self.center_admin_token), timeout=10).unit

    def admin(self, unit: reg.Unit, username: str) -> str:
        self.stub.CreateAdminAccount(reg.CreateAdminAccountRequest(unit_id=unit.unit_id, username=username,
                                                                   password=PASSWORD, display_name=f"{unit.name}管理员"),
                                     metadata=self.as_center(), timeout=10)
        return self.login(reg.PRINCIPAL_KIND_ADMIN, username)

    def small_tree(self) -> Tree:
        """center → 1 institute → 2 stations → 2 courtyards each, with an admin for every unit."""
        inst = self.unit(self.center_id, "测试实践所", c.UNIT_LEVEL_INSTITUTE)
        tree = Tree(center=self.stub.GetUnit(reg.GetUnitRequest(unit_id=self.center_id), metadata=self.as_center(),
                                             timeout=5).unit, institute=inst, stations=[], courtyards=[])
        tree.admins[self.center_id] = self.center_admin_token
        tree.admins[inst.unit_id] = self.admin(inst, "inst-admin")
        for i in range(2):
            station = self.unit(inst.unit_id, f"测试实践站{i}", c.UNIT_LEVEL_STATION)
            tree.stations.append(station)
            tree.admins[station.unit_id] = self.admin(station, f"station{i}-admin")
            for j in range(2):
                yard = self.unit(station.unit_id, f"测试小院{i}{j}", c.UNIT_LEVEL_COURTYARD)
                tree.courtyards.append(yard)
                tree.admins[yard.unit_id] = self.admin(yard, f"yard{i}{j}-admin")
        return tree

    def volunteer(self, unit_id: str, *, token: str | None = None, skills=(c.SKILL_ELDERLY_CARE,),
                  name: str = "测试志愿者", phone: str | None = None) -> reg.Volunteer:
        """An ACTIVE volunteer registered by the center admin (or `token`'s admin)."""
        request = reg.RegisterVolunteerRequest(
            district_id=self.id, name=name, national_id=new_national_id(), phone=phone or new_phone(),
            password=PASSWORD, political_status=reg.POLITICAL_STATUS_MASSES, skills=list(skills),
            service_unit_ids=[unit_id])
        return self.stub.RegisterVolunteer(request, metadata=bearer(token or self.center_admin_token),
                                           timeout=10).volunteer

    def volunteer_token(self, phone: str) -> str:
        return self.login(reg.PRINCIPAL_KIND_VOLUNTEER, phone)

    def resident(self, courtyard_id: str, phone: str | None = None, name: str = "测试居民") -> tuple[reg.Resident, str]:
        phone = phone or new_phone()
        resident = self.stub.RegisterResident(reg.RegisterResidentRequest(
            district_id=self.id, courtyard_unit_id=courtyard_id, name=name, phone=phone, password=PASSWORD),
            timeout=10).resident
        return resident, self.login(reg.PRINCIPAL_KIND_RESIDENT, phone)

    def close(self) -> None:
        self.channel.close()


class SeedLogins:
    """Stands in for infra/local/seed_demo's Seeder on a test district: its stub, and admin logins."""

    def __init__(self, district: District):
        self.district = district
        self.stub = district.stub

    def login(self, kind: int, login: str):
        reply = self.stub.Login(reg.LoginRequest(district_id=self.district.id, kind=kind, login=login,
                                                 password=PASSWORD), timeout=10)
        return bearer(reply.access_token), reply.claims


def admin_logins(tree: Tree) -> dict[str, str]:
    """unit id -> the admin user name District.small_tree gave it."""
    logins = {tree.center.unit_id: "center-admin", tree.institute.unit_id: "inst-admin"}
    for i, station in enumerate(tree.stations):
        logins[station.unit_id] = f"station{i}-admin"
        for j, yard in enumerate(tree.courtyards[2 * i:2 * i + 2]):
            logins[yard.unit_id] = f"yard{i}{j}-admin"
    return logins
