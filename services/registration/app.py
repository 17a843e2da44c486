"""Builds the registration domain from settings; used by the server and the bootstrap command."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.auth import TokenIssuer, TokenVerifier
from services.common.config import Env, pii_vault
from services.common.events import EventSource
from services.common.exports import ExportJobs
from services.common.revocations import LOOKBACK_SECONDS

from . import passwords
from .accounts import Accounts
from .exports import START_ROSTER_EXPORT, RosterSource
from .audit import AuditLog
from .bookings import RoomBookings
from .households import HouseholdBook
from .import_jobs import ImportJobs
from .index import VolunteerScopes
from .models import ALL_MODELS, Volunteer
from .onboarding import Onboarding
from .residents import ResidentBook
from .sessions import Sessions
from .teams import TeamRoster
from .throttle import Limits, LoginThrottle
from .units import UnitDirectory
from .venues import VenueRegistry
from .volunteers import VolunteerRegistry


def extra_settings(env: Env) -> dict:
    # an access token is short-lived; the refresh token (sessions.py) carries the login on. The
    # services remember ended sessions for LOOKBACK_SECONDS, so no token may outlive that.
    access_ttl = env.int("ACCESS_TOKEN_TTL_SECONDS", 900, minimum=60)
    if access_ttl > LOOKBACK_SECONDS:
        env.problems.append(f"ACCESS_TOKEN_TTL_SECONDS={access_ttl} must be at most {LOOKBACK_SECONDS}")
    defaults = Limits()
    hashing = env.str("PASSWORD_HASHING", "owasp")
    if hashing not in passwords.PROFILES:
        env.problems.append(f"PASSWORD_HASHING={hashing[:40]!r} must be one of {', '.join(passwords.PROFILES)}")
    return {
        "password_hashing": hashing,
        "jwt_private_key_pem": env.str("JWT_PRIVATE_KEY"),
        "access_token_ttl_seconds": access_ttl,
        "refresh_token_ttl_seconds": env.int("REFRESH_TOKEN_TTL_SECONDS", 7 * 24 * 3600, minimum=300),
        "pii_vault": pii_vault(env),
        "login_limits": Limits(
            per_account=env.int("LOGIN_MAX_FAILURES_PER_ACCOUNT", defaults.per_account, minimum=1),
            per_address=env.int("LOGIN_MAX_FAILURES_PER_ADDRESS", defaults.per_address, minimum=1),
            window_seconds=env.int("LOGIN_FAILURE_WINDOW_SECONDS", defaults.window_seconds, minimum=1),
            lockout_seconds=env.int("LOGIN_LOCKOUT_SECONDS", defaults.lockout_seconds, minimum=1)),
    }


@dataclass
class Registration:
    units: UnitDirectory
    volunteers: VolunteerRegistry
    teams: TeamRoster
    residents: ResidentBook
    accounts: Accounts
    audit: AuditLog
    imports: ImportJobs
    venues: VenueRegistry
    bookings: RoomBookings
    exports: ExportJobs
    households: HouseholdBook


def build(settings, verifier: TokenVerifier | None = None) -> Registration:
    """`verifier`: the server's own (it knows the ended sessions); a fresh one otherwise."""
    extra = settings.extra
    passwords.use_profile(extra["password_hashing"])
    vault = extra["pii_vault"]
    events = EventSource("registration")
    issuer = TokenIssuer(extra["jwt_private_key_pem"], ttl_seconds=extra["access_token_ttl_seconds"])
    scopes = VolunteerScopes(Volunteer._get_db())
    units = UnitDirectory(vault, events, scopes)
    volunteers = VolunteerRegistry(units, vault, events, scopes)
    residents = ResidentBook(units, vault, events)
    teams = TeamRoster(units, events)
    venues = VenueRegistry(units, events)
    return Registration(
        units=units,
        volunteers=volunteers,
        teams=teams,
        residents=residents,
        accounts=Accounts(units, vault, events, issuer, verifier or TokenVerifier(settings.jwt_public_key_pem),
                          Sessions(extra["refresh_token_ttl_seconds"], extra["access_token_ttl_seconds"], events),
                          LoginThrottle(extra["login_limits"])),
        audit=AuditLog(),
        imports=ImportJobs(Volunteer._get_db(), vault, Onboarding(vault), units, volunteers, residents,
                           teams),
        venues=venues,
        bookings=RoomBookings(venues, events),
        exports=ExportJobs(Volunteer._get_db(), "registration", [RosterSource(units, volunteers)],
                           {RosterSource.kind: START_ROSTER_EXPORT}),
        households=HouseholdBook(units, vault, events),
    )


def ensure_indexes() -> None:
    for model in ALL_MODELS:
        model.ensure_indexes()
    VolunteerScopes(Volunteer._get_db()).ensure_indexes()
    ImportJobs.ensure_indexes(Volunteer._get_db())
    ExportJobs.ensure_indexes(Volunteer._get_db())
