"""Identifiers and page tokens.

Ids are ULIDs (48-bit millisecond time + 80 random bits, Crockford base32) with a short type
prefix, so they sort by creation time and keyset paging by `_id` returns oldest first.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time

from .errors import InvalidArgument

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def ulid(now_ms: int | None = None) -> str:
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    value = (ms << 80) | int.from_bytes(os.urandom(10), "big")
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return "".join(reversed(chars))


def ulid_millis(value: str) -> int | None:
    """The millisecond time a ULID was made for (its first 10 characters), None if it is not one."""
    if len(value) != 26 or any(c not in _CROCKFORD for c in value):
        return None
    ms = 0
    for c in value[:10]:
        ms = ms * 32 + _CROCKFORD.index(c)
    return ms


def new_id(prefix: str) -> str:
    """e.g. new_id("vol") -> "vol_01JD3Q8Y6P4M2T5R7W9X0Z1B3C"."""
    return f"{prefix}_{ulid()}"


def keyed_id(prefix: str, request_key: str) -> str:
    """The id of what a keyed request creates: the same key always gives the same id, so the
    `_id` index every collection has finds a retry (and refuses a concurrent duplicate). For
    collections whose older documents carry no key field: a unique index on such a field would
    collide on their missing values (FerretDB v1 has no partial or sparse indexes)."""
    return f"{prefix}_k{hashlib.sha256(request_key.encode()).hexdigest()[:32]}"


def encode_page_token(last_key: str) -> str:
    return base64.urlsafe_b64encode(last_key.encode()).decode().rstrip("=")


def decode_page_token(token: str, field: str = "page.page_token") -> str | None:
    """The last key of the previous page, or None for the first page."""
    if not token:
        return None
    try:
        padded = token + "=" * (-len(token) % 4)
        key = base64.urlsafe_b64decode(padded.encode()).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidArgument.field(field, "is not a token returned by this API") from None
    if not key or len(key) > 200:
        raise InvalidArgument.field(field, "is not a token returned by this API")
    return key
