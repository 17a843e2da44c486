"""Rotating short-lived check-in codes (签到码) shown as a QR code by the organizing unit.

code = HMAC(key, purpose | subject id | window) truncated, where window = floor(time / period).
A code is accepted in its own window and the one before (so a code shown at the end of a window
still works while the volunteer scans it); anything else — older, forged, or for another
subject — is refused. The key comes from the environment (CHECKIN_CODE_KEY).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from .clock import clock


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
