"""Builds the registration domain from settings; used by the server and the bootstrap command."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.auth import TokenIssuer, TokenVerifier
from services.common.config import Env
from services.common.events import EventSource
from services.common.pii import PiiVault

from .accounts import Accounts
from .index import VolunteerScopes
from .models import ALL_MODELS, Volunteer
from .residents import ResidentBook
from .sessions import Sessions
from .teams import TeamRoster
from .units import UnitDirectory
from .volunteers import VolunteerRegistry


def extra_settings(env: Env) -> dict:
    return {
        "jwt_private_key_pem": env.str("JWT_PRIVATE_KEY"),
        # an access token is short-lived; the refresh token (sessions.py) carries the login on
        "access_token_ttl_seconds": env.int("ACCESS_TOKEN_TTL_SECONDS", 900, minimum=60),
        "refresh_token_ttl_seconds": env.int("REFRESH_TOKEN_TTL_SECONDS", 7 * 24 * 3600, minimum=300),
        "pii_encryption_key": env.key_bytes("PII_ENCRYPTION_KEY"),
        "pii_blind_index_key": env.key_bytes("PII_BLIND_INDEX_KEY"),
    }


@dataclass
class Registration:
    units: UnitDirectory
    volunteers: VolunteerRegistry
    teams: TeamRoster
    residents: ResidentBook
    accounts: Accounts


def build(settings) -> Registration:
    extra = settings.extra
    vault = PiiVault(extra["pii_encryption_key"], extra["pii_blind_index_key"])
    events = EventSource("registration")
    issuer = TokenIssuer(extra["jwt_private_key_pem"], ttl_seconds=extra["access_token_ttl_seconds"])
    scopes = VolunteerScopes(Volunteer._get_db())
    units = UnitDirectory(vault, events, scopes)
    return Registration(
        units=units,
        volunteers=VolunteerRegistry(units, vault, events, scopes),
        teams=TeamRoster(units, events),
        residents=ResidentBook(units, vault, events),
        accounts=Accounts(units, vault, events, issuer, TokenVerifier(settings.jwt_public_key_pem),
                          Sessions(extra["refresh_token_ttl_seconds"])),
    )


def ensure_indexes() -> None:
    for model in ALL_MODELS:
        model.ensure_indexes()
    VolunteerScopes(Volunteer._get_db()).ensure_indexes()
