"""Salted, deliberately slow password hashing: Argon2id at OWASP's parameters (argon2-cffi).

Why Argon2id and not scrypt at N=2^17: OWASP lists both as equivalent, but scrypt at N=2^17, r=8
needs 128 MiB and ~0.4 s of one core per hash, so a handful of logins at once would exhaust a
512 MiB pod and the login rate of a replica would be ~2/s. Argon2id at m=19 MiB, t=2, p=1 takes
19 MiB and ~40 ms: a morning's wave of volunteers logging in fits in a replica.

Every stored hash names its scheme and parameters. Hashes made earlier (scrypt N=2^14, or Argon2
with other parameters) still verify, and `needs_rehash` tells the caller to store a new hash of
the password it has just verified (accounts.py does that on login).

PASSWORD_HASHING picks the parameters: `owasp` (the default, and the only one for people's
passwords) or `fast-for-tests`, Argon2id at 1 MiB and one pass. The test suite creates and logs in
thousands of throwaway accounts; at OWASP's cost that was two-fifths of the registration service's
CPU in the suite. A service started with it says so in a warning at start.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

log = logging.getLogger(__name__)

PROFILES = {
    # OWASP Password Storage Cheat Sheet, Argon2id: m=19456 KiB, t=2, p=1
    "owasp": PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1),
    "fast-for-tests": PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1),
}
TEST_PROFILE = "fast-for-tests"
_profile = "owasp"
_HASHER = PROFILES[_profile]
_SCRYPT_MAXMEM = 64 * 1024 * 1024  # the legacy scrypt hashes needed 16 MiB
_dummy: dict[str, str] = {}  # profile -> its dummy hash


def use_profile(name: str) -> None:
    """The parameters new hashes are made with (and old ones are checked against for a rehash)."""
    global _HASHER, _profile
    _profile, _HASHER = name, PROFILES[name]
    if name == TEST_PROFILE:
        log.warning("PASSWORD_HASHING=%s: passwords are hashed at a test suite's low cost; "
                    "never run a service for real people this way", name)


def dummy_hash() -> str:
    """Verified against when a login names nobody, so unknown and known logins take the same time
    (made with the parameters in use, once)."""
    if _profile not in _dummy:
        _dummy[_profile] = hash_password("not-a-real-password")
    return _dummy[_profile]


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(password: str, stored: str) -> bool:
    if stored.startswith("scrypt$"):
        return _verify_scrypt(password, stored)
    try:
        return _HASHER.verify(stored, password)
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True for a hash made with another scheme or other parameters than today's."""
    if not stored.startswith("$argon2id$"):
        return True
    try:
        return _HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True


def _verify_scrypt(password: str, stored: str) -> bool:
    """The scheme before Argon2id: scrypt$N$r$p$salt$digest (base64)."""
    try:
        _, n, r, p, salt, digest = stored.split("$")
        candidate = hashlib.scrypt(password.encode(), salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                                   maxmem=_SCRYPT_MAXMEM, dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(candidate, base64.b64decode(digest))

