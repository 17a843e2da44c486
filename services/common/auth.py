"""Tokens and principals.

Registration signs short-lived JWTs with an Ed25519 private key; every service verifies them
with the public key from its environment (JWT_PUBLIC_KEY / JWT_PUBLIC_KEY_FILE), so no call to
registration is needed per request. Authorization helpers below are the only place that says
what "inside the subtree" means: an admin manages a thing when the admin's unit id appears in
the thing's unit path (center … unit).
"""

from __future__ import annotations

import contextvars
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from collections.abc import Container, Iterable, Sequence

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from wenming.common.v1 import common_pb2

from .errors import PermissionDenied, Unauthenticated
from .ids import ulid

ISSUER = "wenming-registration"
AUDIENCE = "wenming"
ALGORITHM = "EdDSA"

Role = common_pb2.Role
UnitLevel = common_pb2.UnitLevel


@dataclass(frozen=True)
class Principal:
    """Who is calling, as the verified token says."""

    subject: str
    district_id: str
    role: int
    unit_id: str = ""
    unit_level: int = 0
    unit_path: tuple[str, ...] = ()
    unit_name: str = ""
    display_name: str = ""
    volunteer_number: str = ""
    session_id: str = ""  # the login session this token belongs to (none for service accounts)
    token: str = field(default="", repr=False, compare=False)

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ROLE_UNIT_ADMIN

    @property
    def is_center_admin(self) -> bool:
        return self.is_admin and self.unit_level == UnitLevel.UNIT_LEVEL_CENTER

    def manages(self, unit_path: Sequence[str]) -> bool:
        """True when this principal is an admin of a unit on `unit_path` (or a service)."""
        if self.role == Role.ROLE_SERVICE:
            return True
        return self.is_admin and bool(self.unit_id) and self.unit_id in unit_path


current_principal_var: contextvars.ContextVar[Principal | None] = contextvars.ContextVar(
    "current_principal", default=None
)


def current_principal() -> Principal:
    principal = current_principal_var.get()
    if principal is None:
        raise Unauthenticated("this call needs a token: send 'authorization: Bearer <token>'")
    return principal


def optional_principal() -> Principal | None:
    return current_principal_var.get()


# ---- authorization helpers ----

def require_role(principal: Principal, *roles: int) -> None:
    if principal.role not in roles:
        names = ", ".join(Role.Name(r) for r in roles)
        raise PermissionDenied(f"this call is for {names}; your token is {Role.Name(principal.role)}")


def require_district(principal: Principal, district_id: str) -> None:
    if principal.district_id != district_id:
        raise PermissionDenied("that belongs to another district")


def require_manages(principal: Principal, district_id: str, unit_path: Sequence[str], what: str = "unit") -> None:
    """The caller must be an admin of one of the units on `unit_path` (or a service) in the district."""
    require_district(principal, district_id)
    if not principal.manages(unit_path):
        raise PermissionDenied(f"that {what} is outside your unit's subtree")


def require_manages_any(principal: Principal, district_id: str, unit_paths: Iterable[Sequence[str]], what: str) -> None:
    require_district(principal, district_id)
    if not any(principal.manages(path) for path in unit_paths):
        raise PermissionDenied(f"that {what} is outside your unit's subtree")


# ---- keys and tokens ----

def generate_keypair_pem() -> tuple[str, str]:
    """A fresh Ed25519 key pair as (private PEM, public PEM), for local development and tests."""
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


class TokenVerifier:
    """Verifies tokens; remembers recent good ones, since a client sends the same token on
    every call and a signature check costs more than a typical RPC's own work."""

    def __init__(self, public_key_pem: str, leeway_seconds: int = 30, cache_size: int = 10_000,
                 revoked_sessions: Container[str] = frozenset()):
        try:
            key = serialization.load_pem_public_key(public_key_pem.encode())
        except ValueError as exc:
            raise ValueError(f"JWT_PUBLIC_KEY is not a PEM public key: {exc}") from None
        if not isinstance(key, Ed25519PublicKey):  # tokens are signed with EdDSA (ALGORITHM)
            raise ValueError("JWT_PUBLIC_KEY is not an Ed25519 key")
        self._key = key
        self._leeway = leeway_seconds
        self._cache: OrderedDict[str, tuple[Principal, int]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()
        # ended sessions (logout, password change): their tokens are refused though unexpired
        self._revoked = revoked_sessions

    def verify(self, token: str) -> tuple[Principal, int]:
        """Returns the principal and the expiry (unix seconds); raises Unauthenticated."""
        principal, expires = self._verify(token)
        if principal.session_id in self._revoked:
            raise Unauthenticated("this session has ended: log in again")
        return principal, expires

    def _verify(self, token: str) -> tuple[Principal, int]:
        with self._lock:
            hit = self._cache.get(token)
            if hit is not None:
                self._cache.move_to_end(token)
        if hit is not None:
            if hit[1] + self._leeway < time.time():
                raise Unauthenticated("token expired: log in again")
            return hit
        principal, expires = self._verify_signature(token)
        with self._lock:
            self._cache[token] = (principal, expires)
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return principal, expires

    def _verify_signature(self, token: str) -> tuple[Principal, int]:
        try:
            claims = jwt.decode(
                token, self._key, algorithms=[ALGORITHM], audience=AUDIENCE, issuer=ISSUER,
                leeway=self._leeway, options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            unit = claims.get("unit") or {}
            principal = Principal(
                subject=claims["sub"],
                district_id=claims["dst"],
                role=Role.Value(claims["role"]),
                unit_id=unit.get("id", ""),
                unit_level=UnitLevel.Value(unit["level"]) if unit.get("level") else 0,
                unit_path=tuple(unit.get("path", ())),
                unit_name=unit.get("name", ""),
                display_name=claims.get("name", ""),
                volunteer_number=claims.get("vno", ""),
                session_id=claims.get("sid", ""),
                token=token,
            )
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("token expired: log in again") from None
        except (jwt.InvalidTokenError, KeyError, ValueError, TypeError):
            raise Unauthenticated("token is not valid") from None
        return principal, int(claims["exp"])


class TokenIssuer:
    def __init__(self, private_key_pem: str, ttl_seconds: int = 3600):
        try:
            key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
        except (ValueError, TypeError) as exc:
            raise ValueError(f"JWT_PRIVATE_KEY is not a PEM private key: {exc}") from None
        if not isinstance(key, Ed25519PrivateKey):  # tokens are signed with EdDSA (ALGORITHM)
            raise ValueError("JWT_PRIVATE_KEY is not an Ed25519 key")
        self._key = key
        self.ttl_seconds = ttl_seconds

    def issue(self, principal: Principal, ttl_seconds: int | None = None, now: float | None = None) -> tuple[str, int]:
        issued = int(time.time() if now is None else now)
        expires = issued + (ttl_seconds or self.ttl_seconds)
        claims = {
            "iss": ISSUER, "aud": AUDIENCE, "sub": principal.subject, "dst": principal.district_id,
            "role": Role.Name(principal.role), "iat": issued, "exp": expires, "jti": ulid(),
        }
        if principal.unit_id:
            claims["unit"] = {
                "id": principal.unit_id, "level": UnitLevel.Name(principal.unit_level),
                "path": list(principal.unit_path), "name": principal.unit_name,
            }
        if principal.display_name:
            claims["name"] = principal.display_name
        if principal.volunteer_number:
            claims["vno"] = principal.volunteer_number
        if principal.session_id:
            claims["sid"] = principal.session_id
        return jwt.encode(claims, self._key, algorithm=ALGORITHM), expires
