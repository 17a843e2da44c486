"""Personal data (PIPL, GB/T 35273): resident ID numbers and phone numbers.

- validate: GB 11643-1999 check digit, birth date, region code shape; mainland mobile numbers.
- store: AES-256-GCM with a key from the environment (never from the database); the district and
  field name are bound in as associated data, so a ciphertext copied into another document or
  district does not decrypt.
- look up: HMAC-SHA256 blind index with a second key, so "is this ID already registered?" needs
  no decryption and the database never sees the number.
- show: masked (110***********1234, 138****5678). Nothing here logs.

Keys are versioned (`Keyring`: PII_ENCRYPTION_KEYS / PII_BLIND_INDEX_KEYS = "v2:<b64>,v1:<b64>",
newest first). Every ciphertext starts with the version byte of its key: new ones use the newest,
old ones still decrypt. A blind index does not say its version, so a lookup asks for the value's
index under every version (`blind_indexes`) until the rotation job (pii_rotation.py) has rewritten
them all with the newest key; then the older blind-index key can go.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_ID_SHAPE = re.compile(r"^[1-9][0-9]{16}[0-9X]$")
_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK_CHARS = "10X98765432"
_MOBILE = re.compile(r"^1[3-9][0-9]{9}$")
_KEYRING_ENTRY = re.compile(r"^v([1-9][0-9]{0,2}):(.+)$")


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


_ADDRESS_PLACE = re.compile(r"^.{1,12}?(?:路|街|道|巷|弄|胡同|村|小区|社区|里)")


def mask_address(address: str) -> str:
    """幸福路12号3单元501 -> 幸福路****: the street, village or compound and nothing that finds the
    door; an address with none of those keeps its first third (at most four characters)."""
    address = address.strip()
    if not address:
        return ""
    place = _ADDRESS_PLACE.match(address)
    kept = place.group(0) if place and len(place.group(0)) < len(address) else address[:min(4, len(address) // 3)]
    return kept + "****"


def mask_name(name: str) -> str:
    """张三 -> 张*, 欧阳娜娜 -> 欧**娜: for lists shown to people outside the unit."""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


class Keyring:
    """Key version -> 32-byte key; the newest (highest) version is the one new data uses."""

    def __init__(self, keys: Mapping[int, bytes]):
        if not keys:
            raise ValueError("a keyring needs at least one key")
        for version, key in keys.items():
            if not 1 <= version <= 255:
                raise ValueError(f"key version v{version} must be 1..255")
            if len(key) != 32:
                raise ValueError(f"key v{version} must be 32 bytes, got {len(key)}")
        self.keys = dict(sorted(keys.items(), reverse=True))
        self.newest = next(iter(self.keys))

    @classmethod
    def parse(cls, text: str) -> Keyring:
        """"v2:<base64>,v1:<base64>" (any order; each version once)."""
        keys: dict[int, bytes] = {}
        for entry in (e.strip() for e in text.split(",") if e.strip()):
            match = _KEYRING_ENTRY.match(entry)
            if not match:
                raise ValueError("each entry must be v<version>:<base64 key>")
            version = int(match.group(1))
            if version in keys:
                raise ValueError(f"key version v{version} appears twice")
            try:
                keys[version] = base64.b64decode(match.group(2), validate=True)
            except (binascii.Error, ValueError):
                raise ValueError(f"key v{version} is not valid base64") from None
        return cls(keys)

    @property
    def label(self) -> str:
        return ",".join(f"v{v}" for v in self.keys)


class PiiVault:
    """Encrypts, decrypts and blind-indexes personal data with keys held outside the database."""

    def __init__(self, encryption_keys: Keyring | bytes, blind_index_keys: Keyring | bytes):
        """A single key (bytes) is version 1."""
        self.encryption = encryption_keys if isinstance(encryption_keys, Keyring) else Keyring({1: encryption_keys})
        self.blind = blind_index_keys if isinstance(blind_index_keys, Keyring) else Keyring({1: blind_index_keys})
        for key in self.encryption.keys.values():
            if any(hmac.compare_digest(key, other) for other in self.blind.keys.values()):
                raise ValueError("the PII encryption keys and blind-index keys must differ")
        self._aead = {version: AESGCM(key) for version, key in self.encryption.keys.items()}

    @staticmethod
    def _aad(district_id: str, field: str) -> bytes:
        return f"{district_id}|{field}".encode()

    def encrypt(self, plaintext: str, *, district_id: str, field: str) -> bytes:
        nonce = os.urandom(12)
        version = self.encryption.newest
        sealed = self._aead[version].encrypt(nonce, plaintext.encode(), self._aad(district_id, field))
        return bytes([version]) + nonce + sealed

    def decrypt(self, blob: bytes, *, district_id: str, field: str) -> str:
        aead = self._aead.get(blob[0]) if blob else None
        if aead is None:
            raise ValueError("ciphertext of a key version that is not in the keyring")
        try:
            return aead.decrypt(blob[1:13], blob[13:], self._aad(district_id, field)).decode()
        except InvalidTag:
            raise ValueError("ciphertext does not decrypt with this key and context") from None

    def is_current(self, blob: bytes) -> bool:
        """Whether `blob` is encrypted with the newest key."""
        return bool(blob) and blob[0] == self.encryption.newest

    def blind_index(self, value: str, *, district_id: str, field: str) -> str:
        """The index under the newest key: what a write stores."""
        return self._index(self.blind.newest, value, district_id, field)

    def blind_indexes(self, value: str, *, district_id: str, field: str) -> list[str]:
        """The index under every key version, newest first: what a lookup asks for."""
        return [self._index(version, value, district_id, field) for version in self.blind.keys]

    def _index(self, version: int, value: str, district_id: str, field: str) -> str:
        message = f"{district_id}|{field}|{value}".encode()
        return hmac.new(self.blind.keys[version], message, hashlib.sha256).hexdigest()
