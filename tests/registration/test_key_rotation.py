"""Personal-data keys rotated twice on a running registration: every ciphertext records its key
version, new writes use the newest, old ones stay readable, lookups by phone find old and new
blind indexes alike while the rotation job has not run, and the job rewrites everything so the
oldest key can be dropped. Its own databases: the session's registration keeps the old keys."""

from __future__ import annotations

import base64
import datetime as dt
import os
import time
from pathlib import Path

import grpc

from services.common.pii import Keyring, PiiVault
from tests.support.grpc_helpers import expect_error
from tests.support.registration import PASSWORD, District, new_national_id, new_phone
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

COLLECTIONS = ("units", "volunteers", "residents")


def _key() -> str:
    return base64.b64encode(os.urandom(32)).decode()


def _legacy(stack, name: str) -> str:
    """The single key the local stack has used all along (PII_..._KEY_FILE): version 1."""
    return Path(stack.secrets[f"{name}_FILE"]).read_text().strip()


class Existing(District):
    """The district made before, through another registration process."""

    def __init__(self, target: str, district_id: str):  # not super().__init__: that makes a new district
        self.id = district_id
        self.channel = grpc.insecure_channel(target)
        self.stub = reg_grpc.RegistrationServiceStub(self.channel)
        self.center_admin_token = self.login(reg.PRINCIPAL_KIND_ADMIN, "center-admin")


def _everyone_logs_in(district: District, people: dict[str, tuple[str, str]]) -> None:
    for phone, (kind, _) in people.items():
        login_kind = reg.PRINCIPAL_KIND_VOLUNTEER if kind == "volunteer" else reg.PRINCIPAL_KIND_RESIDENT
        assert district.login(login_kind, phone), phone


def _duplicates_refused(district: District, people: dict[str, tuple[str, str]], courtyard_id: str) -> None:
    """A number stored under any key version is still taken."""
    for phone, (kind, number) in people.items():
        if kind == "resident":
            with expect_error(grpc.StatusCode.ALREADY_EXISTS):
                district.resident(courtyard_id, phone=phone)
        else:
            for other_phone, other_number in ((new_phone(), number), (phone, new_national_id())):
                with expect_error(grpc.StatusCode.ALREADY_EXISTS):
                    district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
                        district_id=district.id, name="重复", national_id=other_number, phone=other_phone,
                        password=PASSWORD, political_status=reg.POLITICAL_STATUS_MASSES,
                        service_unit_ids=[courtyard_id]), metadata=district.as_center(), timeout=10)
    # and staff find a resident by the whole number, whichever version its index is under
    resident_phone = next(p for p, (kind, _) in people.items() if kind == "resident")
    found = district.stub.SearchResidents(reg.SearchResidentsRequest(query=resident_phone),
                                          metadata=district.as_center(), timeout=10).residents
    assert len(found) == 1


def _start(spawn, prefix: str, keys: dict[str, str]):
    proc = spawn("registration", port_offset=1, database_prefix=prefix, log_name="registration-key-rotation",
                 extra_env={"ACCESS_TOKEN_TTL_SECONDS": "3600", **keys})
    proc.wait_serving(90)
    return proc


def _hold_the_job(db) -> None:
    """Another replica holds the rotation job's lease: this one serves with the new keys, but has
    rewritten nothing yet — the state while a rotation is under way."""
    far = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    db.job_leases.replace_one({"_id": "pii-rotation"}, {"_id": "pii-rotation", "owner": "elsewhere", "until": far},
                              upsert=True)


def _rotated(db, keys: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = {s["_id"]: s for s in db.pii_rotation.find()}
        if all(states.get(name, {}).get("keys") == keys and states[name]["done"] for name in COLLECTIONS):
            return
        time.sleep(0.5)
    raise AssertionError(f"the rotation to {keys} did not finish: {list(db.pii_rotation.find())}")


def _versions(db, district_id: str) -> set[int]:
    """The key versions of every ciphertext of the district."""
    found = set()
    for name, fields in (("units", ["head_phone_cipher"]), ("volunteers", ["id_cipher", "phone_cipher"]),
                         ("residents", ["phone_cipher"])):
        for doc in db[name].find({"district_id": district_id}):
            found |= {bytes(doc[f])[0] for f in fields if doc.get(f)}
    return found


def test_keys_rotate_twice_while_logins_by_phone_go_on(stack, spawn, mongo_client):
    prefix = f"{stack.db_prefix}rot_"
    db = mongo_client[f"{prefix}registration"]
    enc1, idx1 = _legacy(stack, "PII_ENCRYPTION_KEY"), _legacy(stack, "PII_BLIND_INDEX_KEY")
    enc2, idx2, enc3, idx3 = _key(), _key(), _key(), _key()

    # before: the single keys of earlier releases, version 1
    first = _start(spawn, prefix, {})
    district = District(first.grpc_target, first.env)
    people: dict[str, tuple[str, str]] = {}  # phone -> (kind, id number or "")
    try:
        institute = district.unit(district.center_id, "轮换实践所", c.UNIT_LEVEL_INSTITUTE)
        head_phone = new_phone()
        station = district.stub.CreateUnit(reg.CreateUnitRequest(
            parent_unit_id=institute.unit_id, name="轮换实践站", level=c.UNIT_LEVEL_STATION, head_name="王站长",
            head_phone=head_phone), metadata=district.as_center(), timeout=10).unit
        yard = district.unit(station.unit_id, "轮换小院", c.UNIT_LEVEL_COURTYARD)
        for _ in range(3):
            phone, number = new_phone(), new_national_id()
            district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
                district_id=district.id, name="轮换志愿者", national_id=number, phone=phone, password=PASSWORD,
                political_status=reg.POLITICAL_STATUS_MASSES, skills=[c.SKILL_ELDERLY_CARE],
                service_unit_ids=[yard.unit_id]), metadata=district.as_center(), timeout=10)
            people[phone] = ("volunteer", number)
            resident_phone = new_phone()
            district.resident(yard.unit_id, phone=resident_phone)
            people[resident_phone] = ("resident", "")
    finally:
        district.close()
    first.stop()
    assert _versions(db, district.id) == {1}

    # the first rotation: v2 first, v1 still there; the job held back, then let go
    _hold_the_job(db)
    keys = {"PII_ENCRYPTION_KEYS": f"v2:{enc2},v1:{enc1}", "PII_BLIND_INDEX_KEYS": f"v2:{idx2},v1:{idx1}"}
    second = _start(spawn, prefix, keys)
    district = Existing(second.grpc_target, district.id)
    try:
        new_resident = new_phone()
        district.resident(yard.unit_id, phone=new_resident)  # written with v2, beside v1 data
        people[new_resident] = ("resident", "")
        assert _versions(db, district.id) == {1, 2}
        _everyone_logs_in(district, people)
        _duplicates_refused(district, people, yard.unit_id)
        db.job_leases.delete_one({"_id": "pii-rotation", "owner": "elsewhere"})
        _rotated(db, "encryption v2, blind index v2")
        assert _versions(db, district.id) == {2}
        _everyone_logs_in(district, people)
    finally:
        district.close()
    second.stop()

    # the second rotation: v3, and v1 dropped — nothing needs it any more
    keys = {"PII_ENCRYPTION_KEYS": f"v3:{enc3},v2:{enc2}", "PII_BLIND_INDEX_KEYS": f"v3:{idx3},v2:{idx2}"}
    third = _start(spawn, prefix, keys)
    district = Existing(third.grpc_target, district.id)
    try:
        _everyone_logs_in(district, people)  # during: the job may or may not have run yet
        _rotated(db, "encryption v3, blind index v3")
        assert _versions(db, district.id) == {3}
        _everyone_logs_in(district, people)
        _duplicates_refused(district, people, yard.unit_id)
    finally:
        district.close()

    # everything reads back with the last keyring: every ciphertext, every blind index
    vault = PiiVault(Keyring.parse(f"v3:{enc3}"), Keyring.parse(f"v3:{idx3}"))
    unit = db.units.find_one({"_id": station.unit_id})
    assert vault.decrypt(bytes(unit["head_phone_cipher"]), district_id=district.id, field="unit.head_phone") == head_phone
    for phone, (kind, number) in people.items():
        field = f"{kind}.phone"
        doc = db[f"{kind}s"].find_one({"district_id": district.id, "phone_index": vault.blind_index(
            phone, district_id=district.id, field=field)})
        assert doc is not None and vault.decrypt(bytes(doc["phone_cipher"]), district_id=district.id,
                                                 field=field) == phone
        if number:
            assert doc["id_index"] == vault.blind_index(number, district_id=district.id, field="national_id")
            assert vault.decrypt(bytes(doc["id_cipher"]), district_id=district.id,
                                 field="volunteer.national_id") == number
