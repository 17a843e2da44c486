"""Accounts, login and tokens.

Admins and inspectors log in with a user name, volunteers and residents with their mobile number
(found by blind index), services with their service name. A wrong login and a wrong password get
the same answer and take the same time. Failed logins are counted per account and per client
address, and too many lock that account or address out for a while (throttle.py). A password
hashed with older parameters is hashed again, as today's, when its owner logs in with it.

People get a short-lived access token and a refresh token (sessions.py); a refresh reads the
account again, so a renamed unit or name shows at once and a suspended volunteer gets nothing.
Service accounts log in again with their password instead. Changing one's password ends every
other session of the account.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from mongoengine.errors import NotUniqueError
from pymongo.errors import DuplicateKeyError

from services.common.audit import client_address
from services.common.auth import Principal, Role, TokenIssuer, TokenVerifier, require_manages, require_role
from services.common.clock import clock
from services.common.errors import (
    Aborted, AlreadyExists, FailedPrecondition, InvalidArgument, PermissionDenied, Unauthenticated,
)
from services.common.events import EventSource
from services.common.ids import new_id
from services.common.pii import PiiVault, validate_mobile
from services.common.validation import Validator
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import AdminAccount, InspectorAccount, Resident, ServiceAccount, Unit, Volunteer
from .passwords import dummy_hash, hash_password, needs_rehash, verify_password
from .sessions import MAX_TOKEN_LEN, NOT_VALID, Issued, Sessions
from .throttle import Keys, LoginThrottle
from .units import UnitDirectory, unit_ref
from .volunteers import validate_password

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
SERVICE_TOKEN_TTL = 12 * 3600
K = pb.PrincipalKind
WRONG = "wrong login or password"
SUSPENDED = "this volunteer account is suspended; contact your unit"
# the accounts a session can be refreshed for (services log in again)
PEOPLE = {K.PRINCIPAL_KIND_ADMIN: AdminAccount, K.PRINCIPAL_KIND_VOLUNTEER: Volunteer,
          K.PRINCIPAL_KIND_RESIDENT: Resident, K.PRINCIPAL_KIND_INSPECTOR: InspectorAccount}
ACCOUNTS = {**PEOPLE, K.PRINCIPAL_KIND_SERVICE: ServiceAccount}
KIND_OF_ROLE = {Role.ROLE_UNIT_ADMIN: K.PRINCIPAL_KIND_ADMIN, Role.ROLE_VOLUNTEER: K.PRINCIPAL_KIND_VOLUNTEER,
                Role.ROLE_RESIDENT: K.PRINCIPAL_KIND_RESIDENT, Role.ROLE_INSPECTOR: K.PRINCIPAL_KIND_INSPECTOR}


@dataclass(frozen=True)
class LoginCandidate:
    kind: int
    principal: Principal
    password_hash: str
    ttl: int | None = None  # None: the issuer's default
    suspended: bool = False


@dataclass(frozen=True)
class Tokens:
    access_token: str
    expires: int  # unix seconds
    principal: Principal
    refresh: Issued | None  # None for service accounts


class Accounts:
    def __init__(self, units: UnitDirectory, vault: PiiVault, events: EventSource, issuer: TokenIssuer,
                 verifier: TokenVerifier, sessions: Sessions, throttle: LoginThrottle):
        self.units = units
        self.vault = vault
        self.events = events
        self.issuer = issuer
        self.verifier = verifier
        self.sessions = sessions
        self.throttle = throttle

    # ---- login, refresh, logout ----

    def login(self, req: pb.LoginRequest) -> Tokens:
        v = Validator()
        district_id = v.ident("district_id", req.district_id)
        v.enum("kind", req.kind, pb.PrincipalKind)
        login = v.text("login", req.login, max_len=64)
        if not req.password:
            v.fail("password", "must not be empty")
        v.check()
        candidate = self._find(district_id, req.kind, login)
        # an unknown login is counted under a keyed hash of what was typed: never the number itself
        account_key = candidate.principal.subject if candidate else self.vault.blind_index(
            login.lower(), district_id=district_id, field=f"login.{req.kind}")
        keys = Keys.of(district_id, account_key, client_address())
        self.throttle.check(keys)
        # the hash is checked even when nobody matched, so both answers take the same time
        password_ok = verify_password(req.password, candidate.password_hash if candidate else dummy_hash())
        if candidate is None or not password_ok:
            self.throttle.failed(keys)
            raise Unauthenticated(WRONG)
        self.throttle.succeeded(keys)
        if needs_rehash(candidate.password_hash):
            self._store_hash(candidate.kind, candidate.principal.subject, candidate.password_hash, req.password)
        if candidate.suspended:
            raise FailedPrecondition(SUSPENDED)
        refresh = None
        if candidate.kind in PEOPLE:
            session_id, refresh = self.sessions.start(district_id, candidate.kind, candidate.principal.subject)
            candidate = replace(candidate, principal=replace(candidate.principal, session_id=session_id))
        return self._tokens(candidate, refresh)

    def refresh(self, refresh_token: str) -> Tokens:
        token = self._refresh_token(refresh_token)
        session = self.sessions.live(token)
        account = PEOPLE[session.kind].objects(id=session.subject, district_id=session.district_id).first()
        if account is None:
            raise Unauthenticated(NOT_VALID)
        candidate = self._candidate(session.kind, account)
        if candidate.suspended:
            raise FailedPrecondition(SUSPENDED)
        candidate = replace(candidate, principal=replace(candidate.principal, session_id=session.id))
        return self._tokens(candidate, self.sessions.rotate(session))

    def logout(self, refresh_token: str) -> None:
        self.sessions.end(self._refresh_token(refresh_token))

    def change_password(self, principal: Principal, req: pb.ChangePasswordRequest) -> int:
        """The caller's own password; every other session of the account ends. Wrong old
        passwords count as failed logins of the account."""
        v = Validator()
        if not req.old_password:
            v.fail("old_password", "must not be empty")
        new = validate_password(v, req.new_password, field="new_password")
        if req.old_password and new == req.old_password:
            v.fail("new_password", "must differ from the old password")
        v.check()
        kind = KIND_OF_ROLE.get(principal.role)
        if kind is None:
            raise PermissionDenied("service accounts change their password through their operators")
        account = PEOPLE[kind].objects(id=principal.subject, district_id=principal.district_id).first()
        if account is None:
            raise Unauthenticated(NOT_VALID)
        keys = Keys.of(principal.district_id, principal.subject, client_address())
        self.throttle.check(keys)
        if not verify_password(req.old_password, account.password_hash):
            self.throttle.failed(keys)
            raise InvalidArgument.field("old_password", "is not the current password")
        if not self._store_hash(kind, account.id, account.password_hash, new):
            raise Aborted("the password was changed at the same time; log in again with the new one")
        return self.sessions.end_others(principal.district_id, principal.subject, principal.session_id,
                                        "password changed")

    @staticmethod
    def _store_hash(kind: int, account_id: str, old_hash: str, password: str) -> bool:
        """Replaces the stored hash if it is still `old_hash`; False when it changed meanwhile."""
        result = ACCOUNTS[kind]._get_collection().update_one({"_id": account_id, "password_hash": old_hash},
                                                             {"$set": {"password_hash": hash_password(password)}})
        return bool(result.matched_count)

    @staticmethod
    def _refresh_token(value: str) -> str:
        v = Validator()
        token = v.text("refresh_token", value, max_len=MAX_TOKEN_LEN)
        v.check()
        return token

    def _tokens(self, candidate: LoginCandidate, refresh: Issued | None) -> Tokens:
        token, expires = self.issuer.issue(candidate.principal, ttl_seconds=candidate.ttl)
        return Tokens(token, expires, candidate.principal, refresh)

    def _find(self, district_id: str, kind: int, login: str) -> LoginCandidate | None:
        if kind in (K.PRINCIPAL_KIND_ADMIN, K.PRINCIPAL_KIND_INSPECTOR):
            account = ACCOUNTS[kind].objects(district_id=district_id, username=login.lower()).first()
        elif kind == K.PRINCIPAL_KIND_SERVICE:
            account = ServiceAccount.objects(district_id=district_id, service_name=login).first()
        else:
            try:
                phone = validate_mobile(login)
            except ValueError:
                return None
            model, field = (Volunteer, "volunteer.phone") if kind == K.PRINCIPAL_KIND_VOLUNTEER else \
                (Resident, "resident.phone")
            # every key version of the index: logins go on while a key rotation rewrites them
            indexes = self.vault.blind_indexes(phone, district_id=district_id, field=field)
            account = model.objects(district_id=district_id, phone_index__in=indexes).first()
        return None if account is None else self._candidate(kind, account)

    def _candidate(self, kind: int, account) -> LoginCandidate:
        """Who the account is now: its unit (name and path as they are today) and its name."""
        district_id = account.district_id
        if kind == K.PRINCIPAL_KIND_ADMIN:
            unit = self.units.get(district_id, account.unit_id)
            return LoginCandidate(kind, self._with_unit(account.id, district_id, Role.ROLE_UNIT_ADMIN, unit,
                                                        account.display_name), account.password_hash)
        if kind == K.PRINCIPAL_KIND_SERVICE:
            principal = Principal(subject=account.id, district_id=district_id, role=Role.ROLE_SERVICE,
                                  display_name=f"service:{account.service_name}")
            return LoginCandidate(kind, principal, account.password_hash, ttl=SERVICE_TOKEN_TTL)
        if kind == K.PRINCIPAL_KIND_INSPECTOR:
            principal = Principal(subject=account.id, district_id=district_id, role=Role.ROLE_INSPECTOR,
                                  display_name=account.display_name)
            return LoginCandidate(kind, principal, account.password_hash)
        if kind == K.PRINCIPAL_KIND_VOLUNTEER:
            unit = self.units.get(district_id, account.unit_ids[0])
            principal = self._with_unit(account.id, district_id, Role.ROLE_VOLUNTEER, unit, account.name,
                                        volunteer_number=account.volunteer_number)
            return LoginCandidate(kind, principal, account.password_hash,
                                  suspended=account.status == pb.VOLUNTEER_STATUS_SUSPENDED)
        unit = self.units.get(district_id, account.courtyard_id)
        return LoginCandidate(kind, self._with_unit(account.id, district_id, Role.ROLE_RESIDENT, unit, account.name),
                              account.password_hash)

    @staticmethod
    def _with_unit(subject: str, district_id: str, role: int, unit: Unit, name: str,
                   volunteer_number: str = "") -> Principal:
        return Principal(subject=subject, district_id=district_id, role=role, unit_id=unit.id, unit_level=unit.level,
                         unit_path=tuple(unit.path), unit_name=unit.name, display_name=name,
                         volunteer_number=volunteer_number)

    def verify(self, token: str) -> tuple[Principal, int]:
        v = Validator()
        token = v.text("access_token", token, max_len=4096)
        v.check()
        return self.verifier.verify(token)

    # ---- accounts ----

    def create_admin(self, principal: Principal | None, req: pb.CreateAdminAccountRequest, *,
                     district_id: str = "") -> tuple[AdminAccount, Unit]:
        """An admin for a unit; `principal` None only from the bootstrap command."""
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id)
        username = v.regex("username", req.username.lower(), USERNAME,
                           "must be 3 to 32 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
        password = validate_password(v, req.password)
        display_name = v.text("display_name", req.display_name, max_len=50)
        v.check()
        district_id = principal.district_id if principal else district_id
        unit = self.units.get(district_id, unit_id)
        if principal is not None:
            require_role(principal, Role.ROLE_UNIT_ADMIN)
            require_manages(principal, district_id, unit.path)
        account = AdminAccount(id=new_id("adm"), district_id=district_id, username=username,
                               display_name=display_name, unit_id=unit.id, password_hash=hash_password(password),
                               created_at=clock.now())
        event = self.events.new(events_pb2.AdminAccountCreated(account_id=account.id, username=username,
                                                               unit=unit_ref(unit)),
                                district_id=district_id, aggregate_type="admin_account", aggregate_id=account.id,
                                version=1, actor_id=principal.subject if principal else "")
        try:
            account.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists(f"user name {username!r} is taken in this district") from None
        return account, unit

    def create_inspector(self, principal: Principal, req: pb.CreateInspectorAccountRequest) -> InspectorAccount:
        v = Validator()
        username = v.regex("username", req.username.lower(), USERNAME,
                           "must be 3 to 32 of a-z, 0-9, '.', '_' or '-', starting with a letter or digit")
        password = validate_password(v, req.password)
        display_name = v.text("display_name", req.display_name, max_len=50)
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("only an admin of the district's center may create inspector accounts")
        account = InspectorAccount(id=new_id("ins"), district_id=principal.district_id, username=username,
                                   display_name=display_name, password_hash=hash_password(password),
                                   created_at=clock.now())
        try:
            account.save(force_insert=True)
        except NotUniqueError:
            raise AlreadyExists(f"inspector {username!r} already exists in this district") from None
        return account

    def create_service(self, principal: Principal, req: pb.CreateServiceAccountRequest) -> ServiceAccount:
        v = Validator()
        name = v.regex("service_name", req.service_name, USERNAME, "must be 3 to 32 of a-z, 0-9, '.', '_' or '-'")
        password = validate_password(v, req.password)
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("only an admin of the district's center may create service accounts")
        account = ServiceAccount(id=new_id("svc"), district_id=principal.district_id, service_name=name,
                                 password_hash=hash_password(password), created_at=clock.now())
        try:
            account.save(force_insert=True)
        except NotUniqueError:
            raise AlreadyExists(f"service account {name!r} already exists") from None
        return account
