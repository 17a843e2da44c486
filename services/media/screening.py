"""Sensitive-word screening (敏感词过滤) of articles on submit.

Each district may set its own list and mode (block: the submit is refused; flag: it goes to
review with the words flagged); until it does, the built-in list blocks. The matcher and the
built-in list are the kit's (services/common/sensitive_words.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_role
from services.common.cache import ReadCache
from services.common.clock import clock
from services.common.errors import FailedPrecondition, PermissionDenied
from services.common.events import EventSource
from services.common.sensitive_words import DEFAULT_WORDS, find, normalize
from services.common.validation import Validator
from wenming.media.v1 import events_pb2, media_pb2 as pb

from .models import ScreeningPolicy

M = pb.ScreeningMode
MAX_WORDS = 2000
MAX_WORD_LEN = 30
DEFAULT_MODE = M.SCREENING_MODE_BLOCK


@dataclass(frozen=True)
class PolicyView:
    district_id: str
    mode: int
    words: tuple[str, ...]
    is_default: bool
    version: int = 0
    updated_at: dt.datetime | None = None
    updated_by: str = ""

    def find(self, text: str) -> list[str]:
        """The configured words that occur in `text`, in list order."""
        return find(self.words, text)


class Screening:
    def __init__(self, events: EventSource):
        self.events = events
        # the list as last read, until its event (ScreeningPolicyChanged) says otherwise
        self.cache = ReadCache("screening-policies", self._load, max_age_seconds=60.0,
                               aggregate_type="screening_policy")

    def policy(self, district_id: str) -> PolicyView:
        return self.cache.get(district_id)

    @staticmethod
    def _load(district_id: str) -> PolicyView:
        stored = ScreeningPolicy.objects(id=district_id).exclude("outbox").first()
        if stored is None:
            return PolicyView(district_id, DEFAULT_MODE, DEFAULT_WORDS, is_default=True)
        return PolicyView(district_id, stored.mode, tuple(stored.words), False, stored.version, stored.updated_at,
                          stored.updated_by)

    def read(self, principal: Principal) -> PolicyView:
        """Admins only: a list known to every author would be a list of what to misspell."""
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        return self.policy(principal.district_id)

    def set(self, principal: Principal, req: pb.SetScreeningPolicyRequest) -> PolicyView:
        v = Validator()
        v.enum("mode", req.mode, pb.ScreeningMode)
        if not 1 <= len(req.words) <= MAX_WORDS:
            v.fail("words", f"needs 1 to {MAX_WORDS} words (got {len(req.words)})")
        words: list[str] = []
        seen: set[str] = set()
        for i, raw in enumerate(req.words[:MAX_WORDS]):
            word = v.text(f"words[{i}]", raw, max_len=MAX_WORD_LEN)
            if word and not normalize(word):
                v.fail(f"words[{i}]", "has no letters or digits")
            elif word and normalize(word) not in seen:
                seen.add(normalize(word))
                words.append(word)
        if req.expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("only an admin of the district's center sets the sensitive-word list")
        district = principal.district_id
        now = clock.now()
        event = self.events.new(events_pb2.ScreeningPolicyChanged(mode=req.mode, word_count=len(words)),
                                district_id=district, aggregate_type="screening_policy", aggregate_id=district,
                                version=req.expected_version + 1, actor_id=principal.subject)
        if req.expected_version == 0:
            policy = ScreeningPolicy(id=district, district_id=district, mode=req.mode, words=words,
                                     updated_by=principal.subject, updated_at=now)
            try:
                policy.insert([event])
            except DuplicateKeyError:
                raise FailedPrecondition("the list was set meanwhile; reload it and send its version") from None
            self.cache.forget(district)
            return self.policy(district)
        changed = ScreeningPolicy.change(
            {"_id": district, "version": req.expected_version},
            {"$set": {"mode": req.mode, "words": words, "updated_by": principal.subject, "updated_at": now}},
            [event])
        if changed is None:
            raise FailedPrecondition("the list changed since you read it (version mismatch); reload and retry")
        self.cache.forget(district)
        return self.policy(district)
