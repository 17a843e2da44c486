"""Sessions: a short access token plus a refresh token that rotates on every use; a spent token
presented again ends the whole session (token theft), logout ends it, and a refresh reads the
account again (fresh claims, no token for a suspended volunteer)."""

from __future__ import annotations

import datetime as dt
import hashlib
import time

import grpc
import pytest

from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import PASSWORD, District, new_phone
from wenming.registration.v1 import registration_pb2 as reg

UNAUTHENTICATED = grpc.StatusCode.UNAUTHENTICATED


def _login(district, kind: int, login: str) -> reg.LoginResponse:
    return district.stub.Login(reg.LoginRequest(district_id=district.id, kind=kind, login=login, password=PASSWORD),
                               timeout=10)


def _refresh(district, token: str) -> reg.RefreshTokenResponse:
    # no access token: the refresh token is the proof
    return district.stub.RefreshToken(reg.RefreshTokenRequest(refresh_token=token), timeout=10)


def _in(stamp, seconds: float) -> bool:
    """`stamp` lies about `seconds` from now."""
    return abs(stamp.ToDatetime(dt.UTC).timestamp() - time.time() - seconds) < 60


def test_a_refresh_rotates_the_token_and_a_spent_one_ends_the_session(registration, district, registration_db):
    tree = district.small_tree()
    station = tree.stations[0]
    login = _login(district, reg.PRINCIPAL_KIND_ADMIN, "station0-admin")
    access_ttl = int(registration.env["ACCESS_TOKEN_TTL_SECONDS"])
    assert _in(login.expires_at, access_ttl) and _in(login.refresh_expires_at, 7 * 24 * 3600)
    first = login.refresh_token
    assert len(first.partition(".")[2]) >= 43  # 32 random bytes, url-safe

    # only a hash of the secret is stored
    session_id, _, secret = first.partition(".")
    stored = registration_db.sessions.find_one({"_id": session_id})
    assert stored["token_hash"] == hashlib.sha256(secret.encode()).hexdigest() and secret not in repr(stored)

    # the claims are read again: a rename shows at once
    district.stub.RenameUnit(reg.RenameUnitRequest(unit_id=station.unit_id, name="改名后的实践站"),
                             metadata=district.as_center(), timeout=10)
    second = _refresh(district, first)
    assert second.claims.unit.name == "改名后的实践站" and second.claims.subject == login.claims.subject
    assert second.refresh_token != first and _in(second.expires_at, access_ttl)
    assert district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=second.access_token),
                                     timeout=5).claims.unit.name == "改名后的实践站"
    third = _refresh(district, second.refresh_token)

    # the first token was spent: presenting it again ends the session, its successors included
    with expect_error(UNAUTHENTICATED, contains="already used"):
        _refresh(district, first)
    with expect_error(UNAUTHENTICATED, contains="ended"):
        _refresh(district, third.refresh_token)
    assert registration_db.sessions.find_one({"_id": session_id})["ended"] is True
    # another login is another session, untouched
    assert _refresh(district, _login(district, reg.PRINCIPAL_KIND_ADMIN, "station0-admin").refresh_token)


def test_a_forged_token_is_refused_without_ending_the_session(district):
    district.small_tree()
    login = _login(district, reg.PRINCIPAL_KIND_ADMIN, "yard00-admin")
    session_id = login.refresh_token.partition(".")[0]
    for forged in (f"{session_id}.{'A' * 43}", "ses_nothing.abc", "no-dot-at-all"):
        with expect_error(UNAUTHENTICATED, contains="not valid"):
            _refresh(district, forged)
    assert _refresh(district, login.refresh_token).refresh_token  # the real one still works
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="refresh_token"):
        _refresh(district, "")
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="refresh_token"):
        district.stub.Logout(reg.LogoutRequest(refresh_token="x" * 201), timeout=5)


def test_logout_ends_the_session_and_answers_ok_whatever_it_is_given(district):
    tree = district.small_tree()
    phone = new_phone()
    district.resident(tree.courtyards[1].unit_id, phone=phone)
    login = _login(district, reg.PRINCIPAL_KIND_RESIDENT, phone)
    assert login.claims.unit.unit_id == tree.courtyards[1].unit_id
    district.stub.Logout(reg.LogoutRequest(refresh_token=login.refresh_token), timeout=5)
    with expect_error(UNAUTHENTICATED, contains="ended"):
        _refresh(district, login.refresh_token)
    # again, unknown, malformed: the same empty answer
    for token in (login.refresh_token, "ses_unknown.secret", "garbage"):
        assert district.stub.Logout(reg.LogoutRequest(refresh_token=token), timeout=5) == reg.LogoutResponse()

    # logging out with a spent token of the family ends it as well
    spent = _login(district, reg.PRINCIPAL_KIND_RESIDENT, phone).refresh_token
    live = _refresh(district, spent).refresh_token
    district.stub.Logout(reg.LogoutRequest(refresh_token=spent), timeout=5)
    with expect_error(UNAUTHENTICATED):
        _refresh(district, live)


def test_a_suspended_volunteer_gets_no_new_token_until_reinstated(district):
    tree = district.small_tree()
    phone = new_phone()
    volunteer = district.volunteer(tree.courtyards[0].unit_id, phone=phone, name="王志强")
    login = _login(district, reg.PRINCIPAL_KIND_VOLUNTEER, phone)
    assert login.claims.volunteer_number == volunteer.volunteer_number
    admin = bearer(tree.admins[tree.courtyards[0].unit_id])
    district.stub.SuspendVolunteer(reg.SuspendVolunteerRequest(volunteer_id=volunteer.volunteer_id,
                                                               reason="多次爽约"), metadata=admin, timeout=5)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="suspended"):
        _refresh(district, login.refresh_token)
    district.stub.ReinstateVolunteer(reg.ReinstateVolunteerRequest(volunteer_id=volunteer.volunteer_id),
                                     metadata=admin, timeout=5)
    refreshed = _refresh(district, login.refresh_token)  # the refused attempt spent nothing
    assert refreshed.claims.display_name == "王志强"


def test_service_accounts_log_in_again_instead_of_refreshing(district):
    district.stub.CreateServiceAccount(reg.CreateServiceAccountRequest(service_name="gateway-x", password=PASSWORD),
                                       metadata=district.as_center(), timeout=5)
    login = _login(district, reg.PRINCIPAL_KIND_SERVICE, "gateway-x")
    assert login.access_token and not login.refresh_token and not login.HasField("refresh_expires_at")


@pytest.mark.slow
def test_a_refresh_token_expires_after_its_lifetime(stack, registration, spawn, tmp_path):
    offset = tmp_path / "clock-offset"
    offset.write_text("0")
    short = spawn("registration", port_offset=1, log_name="registration-short-sessions",
                  extra_env={"CLOCK_OFFSET_FILE": str(offset), "REFRESH_TOKEN_TTL_SECONDS": "300"})
    short.wait_serving(90)
    district = District(short.grpc_target, short.env)
    try:
        login = _login(district, reg.PRINCIPAL_KIND_ADMIN, "center-admin")
        assert _in(login.refresh_expires_at, 300)
        live = _refresh(district, login.refresh_token).refresh_token
        offset.write_text("301")
        with expect_error(UNAUTHENTICATED, contains="expired"):
            _refresh(district, live)
    finally:
        district.close()
