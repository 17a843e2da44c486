"""Personal data (PIPL, GB/T 35273): resident ID numbers and phone numbers.

- validate: GB 11643-1999 check digit, birth date, region code shape; mainland mobile numbers.
- store: AES-256-GCM with a key from the environment (never from the database); the district and
  field name are bound in as associated data, so a ciphertext copied into another document or
  district does not decrypt.
- look up: HMAC-SHA256 blind index with a second key, so "is this ID already registered?" needs
  no decryption and the database never sees the number.
- show: masked (110***********1234, 138****5678). Nothing here logs.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import re
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_ID_SHAPE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_KEY_VERSION = b"\x01"  # prefix of every ciphertext, so keys can be rotated later


def id_check_char(first17: str) -> str:
    """The GB 11643 check character for the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK_CHARS[total % 11]


@dataclass(frozen=True)
class NationalId:
    number: str
    birth_date: dt.date
    male: bool
    region_code: str


def parse_national_id(raw: str, today: dt.date | None = None) -> NationalId:
    """Validates an 18-character resident ID number; raises ValueError saying what is wrong
    (the message never repeats the number)."""
    number = (raw or "").strip().upper()
    if not _ID_SHAPE.match(number):
        raise ValueError("must be 18 characters: 17 digits and a digit or X")
    try:
        birth = dt.date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise ValueError("contains an impossible birth date") from None
    today = today or dt.date.today()
    if birth > today or birth.year < 1900:
        raise ValueError("contains an impossible birth date")
    if id_check_char(number[:17]) != number[17]:
        raise ValueError("check digit does not match (GB 11643)")
    return NationalId(number=number, birth_date=birth, male=int(number[16]) % 2 == 1, region_code=number[:6])


def validate_mobile(raw: str) -> str:
    number = re.sub(r"[\s-]", "", raw or "")
    if number.startswith("+86"):
        number = number[3:]
    if not _MOBILE.match(number):
        raise ValueError("must be an 11-digit mainland mobile number starting with 13-19")
    return number


def mask_national_id(number: str) -> str:
    return number[:3] + "*" * (len(number) - 7) + number[-4:] if len(number) >= 8 else "*" * len(number)


def mask_phone(number: str) -> str:
    return number[:3] + "****" + number[-4:] if len(number) == 11 else "*" * len(number)


def phone_masks_ending(last_four: str) -> list[str]:
    """Every masked mobile number (mask_phone) that ends with `last_four`: looking these up finds
    people by the last digits of their phone without decrypting anyone's number."""
    return [f"1{second}{third}****{last_four}" for second in "3456789" for third in "0123456789"]


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧**娜: for lists shown to people outside the unit."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


class PiiVault:
    """Encrypts, decrypts and blind-indexes personal data with keys held outside the database."""

    def __init__(self, encryption_key: bytes, blind_index_key: bytes):
        if len(encryption_key) != 32 or len(blind_index_key) != 32:
            raise ValueError("PII keys must be 32 bytes each")
        if hmac.compare_digest(encryption_key, blind_index_key):
            raise ValueError("the PII encryption key and blind-index key must differ")
        self._aead = AESGCM(encryption_key)
        self._index_key = blind_index_key

    @staticmethod
    def _aad(district_id: str, field: str) -> bytes:
        return f"{district_id}|{field}".encode()

    def encrypt(self, plaintext: str, *, district_id: str, field: str) -> bytes:
        nonce = os.urandom(12)
        return _KEY_VERSION + nonce + self._aead.encrypt(nonce, plaintext.encode(), self._aad(district_id, field))

    def decrypt(self, blob: bytes, *, district_id: str, field: str) -> str:
        if not blob or blob[:1] != _KEY_VERSION:
            raise ValueError("unknown ciphertext version")
        try:
            return self._aead.decrypt(blob[1:13], blob[13:], self._aad(district_id, field)).decode()
        except InvalidTag:
            raise ValueError("ciphertext does not decrypt with this key and context") from None

    def blind_index(self, value: str, *, district_id: str, field: str) -> str:
        message = f"{district_id}|{field}|{value}".encode()
        return hmac.new(self._index_key, message, hashlib.sha256).hexdigest()
