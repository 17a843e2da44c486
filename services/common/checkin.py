"""Rotating short-lived check-in codes (签到码) shown as a QR code by the organizing unit.

code = HMAC(key, purpose | subject id | window) truncated, where window = floor(time / period).
A code is accepted in its own window and the one before (so a code shown at the end of a window
still works while the volunteer scans it); anything else — older, forged, or for another
subject — is refused. The key comes from the environment (CHECKIN_CODE_KEY).

A pass (`pass_code`) is the other way round: a participant's own code for one subject, shown by
them and scanned by the organizer. It does not rotate; it is derived from the same key, so only
the service can make one, and it names one holder of one subject.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from .clock import clock

# codes people read out or type: no 0/O, 1/I/L
UNAMBIGUOUS = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
PASS_LENGTH = 8  # 31^8 ≈ 2^39.6

class CheckinCodes:
    def __init__(self, key: bytes, period_seconds: int = 60):
        if len(key) < 16:
            raise ValueError("CHECKIN_CODE_KEY must be at least 16 bytes")
        self._key = key
        self.period = period_seconds

    def _code(self, purpose: str, subject_id: str, window: int) -> str:
        digest = hmac.new(self._key, f"{purpose}|{subject_id}|{window}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest[:10]).decode().rstrip("=")

    def issue(self, purpose: str, subject_id: str) -> tuple[str, float]:
        """The current code and the unix time it stops being current."""
        window = int(clock.timestamp() // self.period)
        return self._code(purpose, subject_id, window), (window + 1) * self.period

    def verify(self, purpose: str, subject_id: str, code: str) -> bool:
        window = int(clock.timestamp() // self.period)
        candidate = (code or "").strip().upper()
        return any(hmac.compare_digest(candidate, self._code(purpose, subject_id, w)) for w in (window, window - 1))

    def pass_code(self, purpose: str, subject_id: str, holder_id: str) -> str:
        """`holder_id`'s pass for `subject_id`: PASS_LENGTH characters of UNAMBIGUOUS."""
        digest = hmac.new(self._key, f"pass|{purpose}|{subject_id}|{holder_id}".encode(), hashlib.sha256).digest()
        value = int.from_bytes(digest[:16], "big")
        chars = []
        for _ in range(PASS_LENGTH):
            value, index = divmod(value, len(UNAMBIGUOUS))
            chars.append(UNAMBIGUOUS[index])
        return "".join(chars)
