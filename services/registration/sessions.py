"""Sessions: the refresh tokens that outlive a short access token.

A login starts a session. Its refresh token is `<session id>.<32 random bytes, url-safe>`; the
database keeps only the SHA-256 of the random part. Every refresh rotates it: the token sent is
spent (its hash moves to `spent_hashes`) and the answer carries its successor, in one write
guarded by the session's version. A spent token presented again means two parties hold the
family — the user and whoever copied a token — so the whole session ends (token theft
detection), and the successor stops working too. A token whose random part matches nothing the
session ever issued is refused without touching the session, so knowing a session id alone
cannot end someone else's session.

Two refreshes racing with the same token count as a reuse as well: clients refresh one at a
time.

Access tokens carry their session's id (`sid`). Ending a session, for whatever reason, publishes
SessionRevoked with the time the session's last access token expires; every service then refuses
those tokens too (services/common/revocations.py), within the seconds the event takes to arrive.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from services.common.clock import as_utc, clock
from services.common.errors import Unauthenticated
from services.common.events import EventSource, to_timestamp
from services.common.ids import new_id
from wenming.registration.v1 import events_pb2

from .models import Session

SECRET_BYTES = 32
KEEP_SPENT = 500  # enough for a week of refreshing every 15 minutes while the app is open
MAX_TOKEN_LEN = 200
NOT_VALID = "refresh token is not valid: log in again"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _parts(token: str) -> tuple[str, str] | None:
    session_id, dot, secret = (token or "").strip().partition(".")
    if not dot or not session_id or not secret or len(token) > MAX_TOKEN_LEN:
        return None
    return session_id, secret


@dataclass(frozen=True)
class Issued:
    token: str
    expires_at: dt.datetime


class Sessions:
    def __init__(self, ttl_seconds: int, access_ttl_seconds: int, events: EventSource):
        self.ttl = dt.timedelta(seconds=ttl_seconds)
        self.access_ttl = dt.timedelta(seconds=access_ttl_seconds)
        self.events = events

    def _new_secret(self, now: dt.datetime) -> tuple[str, str, dt.datetime]:
        secret = secrets.token_urlsafe(SECRET_BYTES)
        return secret, _hash(secret), now + self.ttl

    def start(self, district_id: str, kind: int, subject: str) -> tuple[str, Issued]:
        """A new session: its id (for the access tokens' `sid`) and its first refresh token."""
        now = clock.now()
        secret, digest, expires = self._new_secret(now)
        session = Session(id=new_id("ses"), district_id=district_id, kind=kind, subject=subject, token_hash=digest,
                          expires_at=expires, created_at=now, refreshed_at=now)
        session.save(force_insert=True)
        return session.id, Issued(f"{session.id}.{secret}", expires)

    def live(self, token: str) -> Session:
        """The session whose live refresh token this is; a spent one ends the session."""
        parts = _parts(token)
        session = Session.objects(id=parts[0]).first() if parts else None
        if session is None:
            raise Unauthenticated(NOT_VALID)
        digest = _hash(parts[1])
        if hmac.compare_digest(digest, session.token_hash):
            if session.ended:
                raise Unauthenticated("this session has ended: log in again")
            if as_utc(session.expires_at) <= clock.now():
                raise Unauthenticated("refresh token expired: log in again")
            return session
        if digest in session.spent_hashes:
            self._end(session, "a spent refresh token was presented again")
            raise Unauthenticated("this refresh token was already used, so the session has been ended for "
                                  "safety: log in again")
        raise Unauthenticated(NOT_VALID)

    def rotate(self, session: Session) -> Issued:
        """Spends the live token and issues its successor; losing the race to another refresh
        with the same token is a reuse."""
        now = clock.now()
        secret, digest, expires = self._new_secret(now)
        spent = [*session.spent_hashes, session.token_hash][-KEEP_SPENT:]
        changed = Session.objects(id=session.id, version=session.version, ended=False).update_one(
            set__token_hash=digest, set__spent_hashes=spent, set__expires_at=expires, set__refreshed_at=now,
            inc__version=1)
        if not changed:
            self._end(session, "a refresh token was used twice at once")
            raise Unauthenticated("this refresh token was already used, so the session has been ended for "
                                  "safety: log in again")
        return Issued(f"{session.id}.{secret}", expires)

    def end(self, token: str) -> None:
        """Logout: ends the session of any token it issued (live or spent); anything else is
        ignored, so the answer never tells whether a token was good."""
        parts = _parts(token)
        session = Session.objects(id=parts[0]).first() if parts else None
        if session is None:
            return
        digest = _hash(parts[1])
        if hmac.compare_digest(digest, session.token_hash) or digest in session.spent_hashes:
            self._end(session, "logged out")

    def end_others(self, district_id: str, subject: str, keep_session_id: str, reason: str) -> int:
        """Ends every live session of the account but `keep_session_id`; how many ended."""
        ended = 0
        for session in Session.objects(district_id=district_id, subject=subject, ended=False):
            if session.id != keep_session_id and self._end(session, reason):
                ended += 1
        return ended

    def _end(self, session: Session, reason: str) -> bool:
        """Ends the session (once) and announces it, so its access tokens are refused everywhere."""
        now = clock.now()
        revoked = events_pb2.SessionRevoked(session_id=session.id, subject=session.subject,
                                            tokens_expire_by=to_timestamp(now + self.access_ttl))
        event = self.events.new(revoked, district_id=session.district_id, aggregate_type="session",
                                aggregate_id=session.id, version=session.version + 1)
        return Session.change({"_id": session.id, "ended": False},
                              {"$set": {"ended": True, "ended_at": now, "end_reason": reason}}, [event]) is not None

    @staticmethod
    def purge_expired() -> int:
        """Sessions a day past their last token's expiry are gone for good (job)."""
        return Session.objects(expires_at__lt=clock.now() - dt.timedelta(days=1)).delete()
