"""Lists that read about one page, not the whole district, on any MongoDB-protocol server.

The embedded FerretDB (README, "FerretDB: three patches") hands SQLite nothing but top-level
equality and `$in` on scalars, and SQLite then uses an index only through its FIRST field (the
array clause of the pushdown keeps it from using a second one): `{district_id, status}` with an
index on both reads every document of the district. Ranges, sorts and nested fields are done by
FerretDB after decoding every document selected so far (~0.04 ms for a small entry, ~0.5 ms for
an order with its trail). So a list that must stay fast is shaped like this:

- one top-level string KEY per query shape, `<district>|<scope>|…|<bucket>` (`key()`), with an
  index of its own, so an equality or `$in` on it selects exactly the entries wanted (the
  district comes first in the value: every key, like every index here, leads with it);
- a BUCKET as the key's last part that grows with the list's sort order (a China day, a
  sequence number divided by a width), so the entries after a cursor lie in the cursor's bucket
  and those after it: `scan()` reads them a window of buckets at a time (an `$in` of their keys)
  and stops as soon as the page is certain;
- small entries: where the aggregate is big (orders carry their trail), a compact index entry
  per aggregate in a collection of its own, kept by `put_if_newer` after each write and
  repaired from the service's own events (`IndexFollower`) should a process die in between.

On MongoDB the same queries are plain index lookups. Tests check the plan with `explain`.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from .consumer import ConsumedEvent, EventConsumer, Outcome
from .mongo import RawDoc

SEPARATOR = "|"
MAX_WINDOW = 1024  # buckets in one query: keeps the `$in` list (and SQLite's lookups) bounded
GROWTH = 4


def key(*parts: object) -> str:
    """`district|scope|…|bucket`; a part's own `|` (free text such as a name prefix) is escaped
    so that different parts never make the same key."""
    return SEPARATOR.join(str(p).replace("%", "%25").replace(SEPARATOR, "%7C") for p in parts)


@dataclass(frozen=True)
class Page:
    entries: list[RawDoc]
    more: bool  # another page follows the last entry


def scan(fetch: Callable[[list[int]], Iterable[RawDoc]], buckets: Sequence[int], *, sort_key: Callable[[RawDoc], Any],
         size: int, after: Any = None, bucket_of: Callable[[Any], int] | None = None,
         accept: Callable[[RawDoc], bool] = lambda _: True, window: int = 1, descending: bool = False) -> Page:
    """The first `size` accepted entries after the cursor `after`, in `sort_key` order.

    `buckets` lists every bucket the list may hold, in the list's order (ascending integers, or
    descending ones for a `descending` list); an entry in a later bucket always sorts after an
    entry in an earlier one. `fetch(window)` returns the entries of
    those buckets (one query: an `$in` of their keys). Reading starts at the cursor's bucket
    (`bucket_of(after)`), `window` buckets at first, four times as many each time a window leaves
    the page short, and stops once a whole window left more than a page: every bucket after it
    sorts later. Entries of a bucket beside the window are ignored, so a fetch may return them.
    """
    start = 0
    if after is not None and bucket_of is not None:
        # the first bucket that is not wholly before the cursor's
        cursor = bucket_of(after)
        start = bisect.bisect_left([-b for b in buckets], -cursor) if descending else bisect.bisect_left(buckets, cursor)
    found: list[RawDoc] = []
    width = max(1, window)
    while start < len(buckets):
        chunk = list(buckets[start:start + width])
        wanted = set(chunk)
        for entry in fetch(chunk):
            value = sort_key(entry)
            if bucket_of is not None and bucket_of(value) not in wanted:
                continue
            if after is not None and (value <= after if not descending else value >= after):
                continue
            if accept(entry):
                found.append(entry)
        start += len(chunk)
        if len(found) > size:
            break
        width = min(MAX_WINDOW, width * GROWTH)
    found.sort(key=sort_key, reverse=descending)
    return Page(found[:size], len(found) > size)


def put_if_newer(collection: Collection[RawDoc], _id: str, version: int, entry: RawDoc) -> bool:
    """Stores (replaces) the index entry of an aggregate at its `version`, unless a newer one is
    there already: two writers of one aggregate may finish in either order. True if stored."""
    try:
        collection.replace_one({"_id": _id, "v": {"$lt": version}}, {**entry, "v": version}, upsert=True)
        return True
    except DuplicateKeyError:  # there, at this version or a later one
        return False


def stale_ids(collection: Collection[RawDoc], versions: dict[str, int]) -> list[str]:
    """The aggregates (id -> version) whose index entry is missing or older."""
    if not versions:
        return []
    indexed = {doc["_id"]: doc.get("v", 0) for doc in collection.find({"_id": {"$in": sorted(versions)}}, {"v": 1})}
    return [i for i, v in versions.items() if indexed.get(i, 0) < v]


class IndexFollower(EventConsumer):
    """Repairs index entries from the service's own events: a process that died between an
    aggregate's write and its index entry's leaves the entry behind; the event that write
    queued says so. `repair(aggregate_type, {id: version})` brings the stale ones up to date
    (cheap when nothing is stale: one `$in` read of the entries per batch)."""

    def __init__(self, *, repair: Callable[[str, dict[str, int]], object], aggregate_types: Iterable[str],
                 **options: Any):
        super().__init__(**options)
        self._repair = repair
        self._types = set(aggregate_types)

    def apply_batch(self, events: list[ConsumedEvent]) -> list[Outcome | Exception]:
        latest: dict[str, dict[str, int]] = {}
        for event in events:
            envelope = event.envelope
            if envelope.aggregate_type in self._types:
                seen = latest.setdefault(envelope.aggregate_type, {})
                seen[envelope.aggregate_id] = max(seen.get(envelope.aggregate_id, 0), envelope.aggregate_version)
        for aggregate_type, versions in latest.items():
            self._repair(aggregate_type, versions)
        return [Outcome.APPLIED if e.envelope.aggregate_type in self._types else Outcome.SKIPPED for e in events]
