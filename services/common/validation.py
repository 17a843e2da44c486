"""Input validation that reports every bad field at once, named by its request path.

    v = Validator()
    name = v.text("name", request.name, max_len=50)
    v.check()   # raises InvalidArgument listing all violations, before anything is written
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence

from google.protobuf import message
from google.protobuf.internal.enum_type_wrapper import EnumTypeWrapper
from google.protobuf.timestamp_pb2 import Timestamp

from .errors import InvalidArgument, excerpt
from .pii import NationalId, parse_national_id, validate_mobile

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


class Validator:
    def __init__(self) -> None:
        self.violations: list[tuple[str, str]] = []

    def fail(self, field: str, description: str) -> None:
        self.violations.append((field, description))

    def ok(self) -> bool:
        return not self.violations

    def check(self) -> None:
        if self.violations:
            raise InvalidArgument(self.violations)

    def text(self, field: str, value: str, *, max_len: int, required: bool = True, min_len: int = 1,
             multiline: bool = False) -> str:
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, "must not be empty")
            return value
        if len(value) < min_len:
            self.fail(field, f"must be at least {min_len} characters")
        if len(value) > max_len:
            self.fail(field, f"must be at most {max_len} characters (got {len(value)})")
        if _CONTROL.search(value) or (not multiline and ("\n" in value or "\r" in value)):
            self.fail(field, "contains control characters")
        return value

    def timestamp(self, field: str, request: message.Message, name: str | None = None, *,
                  required: bool = True) -> dt.datetime | None:
        """The Timestamp field `name` (default: `field`) of `request` as an aware UTC datetime;
        None when unset. Seconds or nanos out of the Timestamp range are refused, not a crash."""
        if not request.HasField(name or field):
            if required:
                self.fail(field, "must be set")
            return None
        try:
            timestamp: Timestamp = getattr(request, name or field)
            return timestamp.ToDatetime(dt.UTC)
        except (ValueError, OverflowError):
            self.fail(field, "is not a valid point in time")
            return None

    def update_fields(self, field: str, names: Sequence[str], allowed: Iterable[str]) -> list[str]:
        """A field mask: the named fields once each, at least one, every one of them `allowed`."""
        allowed = sorted(allowed)
        fields = list(dict.fromkeys(names))
        if not fields:
            self.fail(field, "must name at least one field")
        for i, name in enumerate(fields):
            if name not in allowed:
                self.fail(f"{field}[{i}]", f"unknown field {excerpt(name)}; one of {', '.join(allowed)}")
        return fields

    def ident(self, field: str, value: str, *, required: bool = True) -> str:
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, "must not be empty")
        elif not ID_PATTERN.match(value):
            self.fail(field, "is not a valid id")
        return value

    def unit_or_own(self, field: str, value: str, own_unit_id: str) -> str:
        """The unit a request names, else the caller's own (`Principal.unit_id`; a service token
        names none, and must then name one)."""
        unit_id = self.ident(field, value, required=False) or own_unit_id
        if not unit_id:
            self.fail(field, "must be set (your token names no unit)")
        return unit_id

    def ids(self, field: str, values: Sequence[str], *, min_count: int = 0, max_count: int = 100) -> list[str]:
        if len(values) < min_count:
            self.fail(field, f"needs at least {min_count} item(s)")
        if len(values) > max_count:
            self.fail(field, f"allows at most {max_count} items (got {len(values)})")
        out: list[str] = []
        for i, value in enumerate(values):
            ident = self.ident(f"{field}[{i}]", value)
            if ident in out:
                self.fail(f"{field}[{i}]", "is listed twice")
            out.append(ident)
        return out

    def enum(self, field: str, value: int, enum_type: EnumTypeWrapper, *, required: bool = True,
             allowed: Iterable[int] | None = None) -> int:
        """A proto enum value: known, non-zero when required, and in `allowed` if given."""
        names = enum_type.DESCRIPTOR.values_by_number
        if value == 0:
            if required:
                self.fail(field, "must be set")
        elif value not in names:
            self.fail(field, f"unknown value {value}")
        elif allowed is not None and value not in set(allowed):
            self.fail(field, f"{names[value].name} is not allowed here")
        return value

    def enums(self, field: str, values: Sequence[int], enum_type: EnumTypeWrapper, *,
              max_count: int = 50) -> list[int]:
        if len(values) > max_count:
            self.fail(field, f"allows at most {max_count} items (got {len(values)})")
        out: list[int] = []
        for i, value in enumerate(values):
            self.enum(f"{field}[{i}]", value, enum_type)
            if value not in out:
                out.append(value)
        return out

    def int_range(self, field: str, value: int, lo: int, hi: int) -> int:
        if not lo <= value <= hi:
            self.fail(field, f"must be between {lo} and {hi} (got {value})")
        return value

    def rating(self, rating: int, comment: str = "") -> str:
        """A rating (评价) of 1 to 5 stars and its optional comment, as every rating here takes them."""
        self.int_range("rating", rating, 1, 5)
        return self.text("comment", comment, max_len=500, required=False, multiline=True)

    def page_size(self, field: str, value: int) -> int:
        if value == 0:
            return DEFAULT_PAGE_SIZE
        if value < 0 or value > MAX_PAGE_SIZE:
            self.fail(field, f"must be between 1 and {MAX_PAGE_SIZE} (got {value})")
            return DEFAULT_PAGE_SIZE
        return value

    def regex(self, field: str, value: str, pattern: re.Pattern[str], description: str, *, required: bool = True) -> str:
        value = (value or "").strip()
        if not value:
            if required:
                self.fail(field, "must not be empty")
        elif not pattern.match(value):
            self.fail(field, description)
        return value

    def idempotency_key(self, value: str, field: str = "idempotency_key") -> str:
        """The key a retry repeats to get the first call's outcome (required)."""
        return self.regex(field, value, ID_PATTERN, "must be 1 to 64 of A-Z, a-z, 0-9, '.', '_', ':' or '-'")

    def mobile(self, field: str, value: str, *, required: bool = True) -> str:
        """A mainland mobile number, normalized; "" when absent or invalid."""
        if not (value or "").strip():
            if required:
                self.fail(field, "must not be empty")
            return ""
        try:
            return validate_mobile(value)
        except ValueError as exc:
            self.fail(field, str(exc))
            return ""

    def national_id(self, field: str, value: str) -> NationalId | None:
        """A resident ID number (GB 11643); the message never repeats the number."""
        if not (value or "").strip():
            self.fail(field, "must not be empty")
            return None
        try:
            return parse_national_id(value)
        except ValueError as exc:
            self.fail(field, str(exc))
            return None


def valid_id(field: str, value: str) -> str:
    """The one id a request names, or INVALID_ARGUMENT naming `field`."""
    v = Validator()
    ident = v.ident(field, value)
    v.check()
    return ident
