"""Logins under attack: failures counted per account and per client address in the database (so
replicas agree), a lockout that refuses even the right password and says for how long in
Chinese; passwords hashed with Argon2id, old hashes upgraded on login; ChangePassword."""

from __future__ import annotations

import base64
import hashlib
import os

import grpc
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import PASSWORD, District, new_phone
from tests.support.stack import TEST_HASH_PREFIX
from wenming.registration.v1 import registration_pb2 as reg
from wenming.registration.v1 import registration_pb2_grpc as reg_grpc

EXHAUSTED = grpc.StatusCode.RESOURCE_EXHAUSTED


def _login(stub, district_id: str, login: str, password: str = PASSWORD, *, address: str = "",
           kind: int = reg.PRINCIPAL_KIND_ADMIN) -> reg.LoginResponse:
    metadata = [("x-client-address", address)] if address else None
    return stub.Login(reg.LoginRequest(district_id=district_id, kind=kind, login=login, password=password),
                      metadata=metadata, timeout=10)


def _retry_after(error: grpc.RpcError) -> int:
    for detail in rpc_status.from_call(error).details:
        if detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
            info = error_details_pb2.RetryInfo()
            detail.Unpack(info)
            return info.retry_delay.seconds
    raise AssertionError("no RetryInfo in the status details")


def test_an_account_is_locked_after_five_failures_on_any_replica(stack, registration, spawn, district):
    tree = district.small_tree()
    second = spawn("registration", port_offset=1, log_name="registration-second-replica")
    second.wait_serving(90)
    other = District.__new__(District)  # the same district, through the second replica
    other.channel = grpc.insecure_channel(second.grpc_target)
    replicas = [district.stub, reg_grpc.RegistrationServiceStub(other.channel)]
    try:
        for attempt in range(5):  # alternating replicas: the count is in the database
            with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="wrong login or password"):
                _login(replicas[attempt % 2], district.id, "station0-admin", "wrong-password")
        for stub in replicas:
            for password in ("wrong-password", PASSWORD):  # locked: even the right one is refused
                with expect_error(EXHAUSTED, contains="尝试次数过多，请15分钟后再试") as refused:
                    _login(stub, district.id, "station0-admin", password)
                assert 840 <= _retry_after(refused.value) <= 900
        # another account is not affected, nor a login that names nobody until it fails 5 times itself
        assert _login(district.stub, district.id, "station1-admin").access_token
        for _ in range(5):
            with expect_error(grpc.StatusCode.UNAUTHENTICATED):
                _login(district.stub, district.id, "nobody-here", "wrong-password")
        with expect_error(EXHAUSTED):
            _login(district.stub, district.id, "nobody-here", "wrong-password")
        assert tree  # the tree's other admins log in as before
    finally:
        other.channel.close()


def test_a_success_clears_the_accounts_count(district):
    district.small_tree()
    for _ in range(4):
        with expect_error(grpc.StatusCode.UNAUTHENTICATED):
            _login(district.stub, district.id, "yard00-admin", "wrong-password")
    assert _login(district.stub, district.id, "yard00-admin").access_token
    for _ in range(4):  # four more: below the limit again
        with expect_error(grpc.StatusCode.UNAUTHENTICATED):
            _login(district.stub, district.id, "yard00-admin", "wrong-password")
    assert _login(district.stub, district.id, "yard00-admin").access_token


def test_an_address_is_locked_after_its_own_limit(spawn):
    proc = spawn("registration", port_offset=1, log_name="registration-address-limit",
                 extra_env={"LOGIN_MAX_FAILURES_PER_ADDRESS": "3"})
    proc.wait_serving(90)
    district = District(proc.grpc_target, proc.env)
    try:
        district.small_tree()
        # three different accounts from one address (as the gateway passes it)
        for name in ("station0-admin", "station1-admin", "yard00-admin"):
            with expect_error(grpc.StatusCode.UNAUTHENTICATED):
                _login(district.stub, district.id, name, "wrong-password", address="198.51.100.7")
        with expect_error(EXHAUSTED, contains="分钟后再试"):
            _login(district.stub, district.id, "yard01-admin", address="198.51.100.7")
        # the same account from another address: fine, its own count is 0
        assert _login(district.stub, district.id, "yard01-admin", address="198.51.100.8").access_token
    finally:
        district.close()


def _scrypt_hash(password: str, n: int = 2**14) -> str:
    """A hash as the service made them before Argon2id."""
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return f"scrypt${n}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def test_old_hashes_still_log_in_and_are_rehashed_with_todays_parameters(district, registration_db):
    tree = district.small_tree()
    phone = new_phone()
    district.resident(tree.courtyards[0].unit_id, phone=phone)
    admins = registration_db.admin_accounts
    admins.update_one({"district_id": district.id, "username": "station0-admin"},
                      {"$set": {"password_hash": _scrypt_hash(PASSWORD)}})
    # an Argon2id hash with other parameters than the service's (tests/support/stack.py)
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=2048, parallelism=1).hash(PASSWORD)
    registration_db.residents.update_one({"district_id": district.id, "courtyard_id": tree.courtyards[0].unit_id},
                                         {"$set": {"password_hash": weak}})
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):  # a wrong password changes nothing
        _login(district.stub, district.id, "station0-admin", "wrong-password")
    assert admins.find_one({"district_id": district.id, "username": "station0-admin"})["password_hash"] \
        .startswith("scrypt$")

    assert _login(district.stub, district.id, "station0-admin").access_token
    assert _login(district.stub, district.id, phone, kind=reg.PRINCIPAL_KIND_RESIDENT).access_token
    stored = admins.find_one({"district_id": district.id, "username": "station0-admin"})["password_hash"]
    assert stored.startswith(TEST_HASH_PREFIX)
    resident = registration_db.residents.find_one({"district_id": district.id,
                                                   "courtyard_id": tree.courtyards[0].unit_id})
    assert resident["password_hash"].startswith(TEST_HASH_PREFIX)
    # and the new hashes verify
    assert _login(district.stub, district.id, "station0-admin").access_token
    assert _login(district.stub, district.id, phone, kind=reg.PRINCIPAL_KIND_RESIDENT).access_token


def test_change_password_checks_the_old_one_and_the_policy_and_ends_other_sessions(district):
    tree = district.small_tree()
    here = _login(district.stub, district.id, "station0-admin")
    elsewhere = _login(district.stub, district.id, "station0-admin")
    change = district.stub.ChangePassword
    mine = bearer(here.access_token)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="old_password"):
        change(reg.ChangePasswordRequest(old_password="not-it-at-all", new_password="New-pass-2026"),
               metadata=mine, timeout=10)
    for new, field in (("short", "new_password"), (PASSWORD, "new_password")):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            change(reg.ChangePasswordRequest(old_password=PASSWORD, new_password=new), metadata=mine, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="old_password"):
        change(reg.ChangePasswordRequest(new_password="New-pass-2026"), metadata=mine, timeout=10)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        change(reg.ChangePasswordRequest(old_password=PASSWORD, new_password="New-pass-2026"), timeout=10)

    # another user's token changes that user's own password, never this one's
    other = bearer(tree.admins[tree.stations[1].unit_id])
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="old_password"):
        change(reg.ChangePasswordRequest(old_password="whatever-it-was", new_password="New-pass-2026"),
               metadata=other, timeout=10)
    # a service account has no password of its own to change here
    district.stub.CreateServiceAccount(reg.CreateServiceAccountRequest(service_name="svc-pw", password=PASSWORD),
                                       metadata=district.as_center(), timeout=5)
    service = _login(district.stub, district.id, "svc-pw", kind=reg.PRINCIPAL_KIND_SERVICE)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        change(reg.ChangePasswordRequest(old_password=PASSWORD, new_password="New-pass-2026"),
               metadata=bearer(service.access_token), timeout=10)

    answer = change(reg.ChangePasswordRequest(old_password=PASSWORD, new_password="New-pass-2026"),
                    metadata=mine, timeout=10)
    assert answer.sessions_ended == 2  # `elsewhere`, and small_tree's own login
    # the other session is over: its refresh token, and (within seconds) its access token
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="ended"):
        district.stub.RefreshToken(reg.RefreshTokenRequest(refresh_token=elsewhere.refresh_token), timeout=10)
    _refused_soon(district.stub, elsewhere.access_token, tree.stations[0].unit_id)
    # this one goes on; the old password is gone, the new one works
    assert district.stub.GetUnit(reg.GetUnitRequest(unit_id=tree.stations[0].unit_id), metadata=mine, timeout=5)
    assert district.stub.RefreshToken(reg.RefreshTokenRequest(refresh_token=here.refresh_token), timeout=10)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        _login(district.stub, district.id, "station0-admin")
    assert _login(district.stub, district.id, "station0-admin", "New-pass-2026").access_token
    # the other station admin's password is untouched
    assert _login(district.stub, district.id, "station1-admin").access_token


def test_logout_refuses_the_sessions_access_tokens_within_seconds(district):
    tree = district.small_tree()
    login = _login(district.stub, district.id, "yard10-admin")
    token, unit_id = login.access_token, tree.courtyards[2].unit_id
    assert district.stub.GetUnit(reg.GetUnitRequest(unit_id=unit_id), metadata=bearer(token), timeout=5)
    refreshed = district.stub.RefreshToken(reg.RefreshTokenRequest(refresh_token=login.refresh_token), timeout=10)
    district.stub.Logout(reg.LogoutRequest(refresh_token=refreshed.refresh_token), timeout=5)
    # every access token of the session: the first and the refreshed one
    _refused_soon(district.stub, token, unit_id)
    _refused_soon(district.stub, refreshed.access_token, unit_id)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED, contains="ended"):
        district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=token), timeout=5)
    # another session of the same admin goes on
    again = _login(district.stub, district.id, "yard10-admin")
    assert district.stub.GetUnit(reg.GetUnitRequest(unit_id=unit_id), metadata=bearer(again.access_token), timeout=5)


def _refused_soon(stub, access_token: str, unit_id: str, within: float = 10.0) -> None:
    import time

    deadline = time.monotonic() + within
    while True:
        try:
            stub.GetUnit(reg.GetUnitRequest(unit_id=unit_id), metadata=bearer(access_token), timeout=5)
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.UNAUTHENTICATED and "ended" in error.details(), error.details()
            return
        assert time.monotonic() < deadline, f"the ended session's token still works after {within:.0f} s"
        time.sleep(0.2)
