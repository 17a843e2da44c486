"""Registration's list keys (services/common/listing.py explains the shape): units, residents and
volunteers are found through top-level keys that lead with the district, never through the
`path` or `unit_ids` arrays, which the embedded database cannot look up.

Each list is ordered by a district sequence — units and residents by the order they were
registered in (`seq`), volunteers by their number (志愿者编号) — and the key's last part is that
number's bucket, wide enough that a bucket holds a page or so of the unit's own people: a
district's whole roll spreads over many buckets, a courtyard's fits in one.

units     sub<i> = district|unit at depth i of the unit's path|bucket     ListSubtree
households sub<i> = district|unit at depth i of the household's unit path|bucket ListHouseholds
          (a household's unit never moves it elsewhere in the list: it keeps its creation number)
residents n1_<i>, n2_<i> = district|unit at depth i of the courtyard's path|the name's first 1
          or 2 characters|bucket                                            SearchResidents by name
          pm = district|masked phone, ph = district|phone blind index      … by phone
          cy = district|courtyard                                           a moved courtyard's people
          hh = district|household                                           a household's members
volunteer_scopes  one entry per (volunteer, unit on the path of a unit it serves):
          k = district|unit|status|bucket, u = district|unit               SearchVolunteers
Keys on units and residents are written with the document itself; a volunteer's entries right
after its write (a volunteer serves up to five units, and an array is no key), repaired from
registration's own events should the process die in between.
"""

from __future__ import annotations

import logging

from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

from services.common.listing import key, put_if_newer

from .models import Counter, Unit, Volunteer

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # units and residents with their list keys (migrations.py)
DEPTHS = range(4)  # center, institute, station, courtyard
# sequence numbers per bucket, by the depth of the unit a list is under: the higher the unit,
# the denser its share of the district's numbers
WIDTH = (256, 1024, 4096, 1 << 40)
UNITS, RESIDENTS, VOLUNTEERS, HOUSEHOLDS = "unit_seq", "resident_seq", "volunteer_number", "household_seq"


def bucket(seq: int, depth: int) -> int:
    return seq // WIDTH[depth]


def reserve(district_id: str, sequence: str, count: int = 1) -> int:
    """The first of `count` consecutive numbers of one of the district's sequences."""
    doc = Counter._get_collection().find_one_and_update(
        {"_id": f"{district_id}:{sequence}"}, {"$inc": {"seq": count}}, upsert=True,
        return_document=ReturnDocument.AFTER)
    return doc["seq"] - count + 1


def buckets(district_id: str, sequence: str, depth: int) -> list[int]:
    """Every bucket the district's numbers so far fall in, for a list under a unit at `depth`."""
    doc = Counter._get_collection().find_one({"_id": f"{district_id}:{sequence}"}) or {}
    return list(range(bucket(doc.get("seq", 0), depth) + 1))


def volunteer_seq(number: str) -> int:
    """ZY00000123 -> 123."""
    return int(number[2:])


def unit_keys(district_id: str, path: list[str], seq: int) -> dict:
    """A unit's keys (None at the depths below it, so a move clears what no longer applies)."""
    return {f"sub{i}": key(district_id, path[i], bucket(seq, i)) if i < len(path) else None for i in DEPTHS}


def household_keys(district_id: str, unit_path: list[str], seq: int) -> dict:
    """A household's keys: its unit's subtree keys at its own number, and its unit."""
    return {**unit_keys(district_id, unit_path, seq), "uk": key(district_id, unit_path[-1])}


def resident_keys(district_id: str, courtyard_path: list[str], seq: int, name: str, phone_index: str,
                  phone_masked: str, courtyard_id: str) -> dict:
    # a resident without a phone (phone_masked empty) is found by name only
    keys: dict[str, str | None] = {"pm": key(district_id, phone_masked) if phone_masked else None,
                                   "ph": key(district_id, phone_index) if phone_masked else None,
                                   "cy": key(district_id, courtyard_id)}
    for i in DEPTHS:
        within = i < len(courtyard_path)
        for length in (1, 2):
            keys[f"n{length}_{i}"] = key(district_id, courtyard_path[i], name[:length], bucket(seq, i)) \
                if within and len(name) >= length else None
    return keys


def name_field(text: str, depth: int) -> tuple[str, str]:
    """The key field a name search reads, and the prefix it looks up."""
    length = 2 if len(text) >= 2 else 1
    return f"n{length}_{depth}", text[:length]


class VolunteerScopes:
    """The `volunteer_scopes` entries: where each volunteer may be found."""

    def __init__(self, db: Database):
        self.collection = db["volunteer_scopes"]

    def ensure_indexes(self) -> None:
        for name in ("k", "vol", "u"):
            self.collection.create_index([(name, ASCENDING)])

    @staticmethod
    def entries(volunteer: Volunteer, units: list[Unit]) -> dict[str, dict]:
        district, seq = volunteer.district_id, volunteer_seq(volunteer.volunteer_number)
        scope = {unit_id: depth for unit in units for depth, unit_id in enumerate(unit.path)}
        return {f"{volunteer.id}|{unit_id}": {
            "district_id": district, "vol": volunteer.id, "unit": unit_id, "num": seq, "status": volunteer.status,
            "skills": list(volunteer.skills), "u": key(district, unit_id),
            "k": key(district, unit_id, volunteer.status, bucket(seq, depth))} for unit_id, depth in scope.items()}

    def record(self, volunteer: Volunteer, units: list[Unit]) -> None:
        """After a volunteer's write: its entries at its version, and none for units it left."""
        entries = self.entries(volunteer, units)
        for _id, entry in entries.items():
            put_if_newer(self.collection, _id, volunteer.version, entry)
        self.collection.delete_many({"vol": volunteer.id, "_id": {"$nin": sorted(entries)},
                                     "v": {"$lte": volunteer.version}})

    def insert_new(self, volunteers: list[tuple[Volunteer, list[Unit]]], version: int) -> None:
        """Entries of volunteers about to be registered in one write (an import): written first,
        so that the follower, which hears of them at once, finds them there."""
        documents = [{"_id": _id, **entry, "v": version}
                     for volunteer, units in volunteers for _id, entry in self.entries(volunteer, units).items()]
        if documents:
            self.collection.insert_many(documents, ordered=False)

    def forget(self, volunteer_ids: list[str]) -> None:
        """Entries of volunteers who were not registered after all (an import's duplicates)."""
        if volunteer_ids:
            self.collection.delete_many({"vol": {"$in": volunteer_ids}})

    def stale(self, versions: dict[str, int]) -> list[str]:
        """The volunteers (id -> version) whose entries are missing or older."""
        indexed: dict[str, int] = {}
        for doc in self.collection.find({"vol": {"$in": sorted(versions)}}, {"vol": 1, "v": 1}):
            indexed[doc["vol"]] = min(indexed.get(doc["vol"], doc["v"]), doc["v"])
        return [vid for vid, version in versions.items() if indexed.get(vid, 0) < version]
