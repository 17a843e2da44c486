"""Accounts, login and tokens.

Admins log in with a user name, volunteers and residents with their mobile number (found by
blind index), services with their service name. A wrong login and a wrong password get the same
answer and take the same time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mongoengine.errors import NotUniqueError
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, TokenIssuer, TokenVerifier, require_manages, require_role
from services.common.errors import AlreadyExists, FailedPrecondition, PermissionDenied, Unauthenticated
from services.common.events import EventSource, utcnow
from services.common.ids import new_id
from services.common.pii import PiiVault, validate_mobile
from services.common.validation import Validator
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import AdminAccount, Resident, ServiceAccount, Unit, Volunteer
from .passwords import DUMMY_HASH, hash_password, verify_password
from .units import UnitDirectory, unit_ref
from .volunteers import validate_password

USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,31}$")
SERVICE_TOKEN_TTL = 12 * 3600
K = pb.PrincipalKind
WRONG = "wrong login or password"


@dataclass(frozen=True)
class LoginCandidate:
    principal: Principal
    password_hash: str
    ttl: int | None = None  # None: the issuer's default
    suspended: bool = False


class Accounts:
    def __init__(self, units: UnitDirectory, vault: PiiVault, events: EventSource, issuer: TokenIssuer,
                 verifier: TokenVerifier):
        self.units = units
        self.vault = vault
        self.events = events
        self.issuer = issuer
        self.verifier = verifier

    # ---- login ----

    def login(self, req: pb.LoginRequest) -> tuple[str, int, Principal]:
        v = Validator()
        district_id = v.ident("district_id", req.district_id)
        v.enum("kind", req.kind, pb.PrincipalKind)
        login = v.text("login", req.login, max_len=64)
        if not req.password:
            v.fail("password", "must not be empty")
        v.check()
        candidate = self._find(district_id, req.kind, login)
        # the hash is checked even when nobody matched, so both answers take the same time
        password_ok = verify_password(req.password, candidate.password_hash if candidate else DUMMY_HASH)
        if candidate is None or not password_ok:
            raise Unauthenticated(WRONG)
        if candidate.suspended:
            raise FailedPrecondition("this volunteer account is suspended; contact your unit")
        token, expires = self.issuer.issue(candidate.principal, ttl_seconds=candidate.ttl)
        return token, expires, candidate.principal

    def _find(self, district_id: str, kind: int, login: str) -> LoginCandidate | None:
        if kind == K.PRINCIPAL_KIND_ADMIN:
            account = AdminAccount.objects(district_id=district_id, username=login.lower()).first()
            if account is None:
                return None
            unit = self.units.get(district_id, account.unit_id)
            return LoginCandidate(self._with_unit(account.id, district_id, Role.ROLE_UNIT_ADMIN, unit,
                                                  account.display_name), account.password_hash)
        if kind == K.PRINCIPAL_KIND_SERVICE:
            account = ServiceAccount.objects(district_id=district_id, service_name=login).first()
            if account is None:
                return None
            principal = Principal(subject=account.id, district_id=district_id, role=Role.ROLE_SERVICE,
                                  display_name=f"service:{login}")
            return LoginCandidate(principal, account.password_hash, ttl=SERVICE_TOKEN_TTL)
        try:
            phone = validate_mobile(login)
        except ValueError:
            return None
        if kind == K.PRINCIPAL_KIND_VOLUNTEER:
            index = self.vault.blind_index(phone, district_id=district_id, field="volunteer.phone")
            volunteer = Volunteer.objects(district_id=district_id, phone_index=index).first()
            if volunteer is None:
                return None
            unit = self.units.get(district_id, volunteer.unit_ids[0])
            principal = self._with_unit(volunteer.id, district_id, Role.ROLE_VOLUNTEER, unit, volunteer.name,
                                        volunteer_number=volunteer.volunteer_number)
            return LoginCandidate(principal, volunteer.password_hash,
                                  suspended=volunteer.status == pb.VOLUNTEER_STATUS_SUSPENDED)
        index = self.vault.blind_index(phone, district_id=district_id, field="resident.phone")
        resident = Resident.objects(district_id=district_id, phone_index=index).first()
        if resident is None:
            return None
        unit = self.units.get(district_id, resident.courtyard_id)
        return LoginCandidate(self._with_unit(resident.id, district_id, Role.ROLE_RESIDENT, unit, resident.name),
                              resident.password_hash)

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
                               created_at=utcnow())
        event = self.events.new(events_pb2.AdminAccountCreated(account_id=account.id, username=username,
                                                               unit=unit_ref(unit)),
                                district_id=district_id, aggregate_type="admin_account", aggregate_id=account.id,
                                version=1, actor_id=principal.subject if principal else "")
        try:
            account.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists(f"user name {username!r} is taken in this district") from None
        return account, unit

    def create_service(self, principal: Principal, req: pb.CreateServiceAccountRequest) -> ServiceAccount:
        v = Validator()
        name = v.regex("service_name", req.service_name, USERNAME, "must be 3 to 32 of a-z, 0-9, '.', '_' or '-'")
        password = validate_password(v, req.password)
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("only an admin of the district's center may create service accounts")
        account = ServiceAccount(id=new_id("svc"), district_id=principal.district_id, service_name=name,
                                 password_hash=hash_password(password), created_at=utcnow())
        try:
            account.save(force_insert=True)
        except NotUniqueError:
            raise AlreadyExists(f"service account {name!r} already exists") from None
        return account
