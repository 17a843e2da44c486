"""Regions (市/省) and who may read them, with no database: the configuration naming each region's
districts and the releases their events come from, and the rule for the region's 文明办.

A region's 文明办 logs in through a registration release of its own (the city's or province's),
where it is a district of its own — its "account district" — whose center admins act for the
region. The region's id is that account district's id, so a token says which region it speaks
for without anything new in tokens, logins or sessions (docs/rollup.md).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cached_property

from services.common.auth import Principal
from services.common.config import Env
from services.common.errors import PermissionDenied
from services.common.events import release_events_topic
from services.common.validation import ID_PATTERN

PREFIX = re.compile(r"^[A-Za-z0-9._-]{0,40}$")  # as KAFKA_PREFIX (services/common/config.py)
# the services whose events a district's month is made of: volunteers and teams, orders and
# activities, service hours
SOURCES = ("registration", "ordering", "points")
REFUSED = "只能由市、省文明办的管理员查看本区域的汇总"


@dataclass(frozen=True)
class District:
    district_id: str
    name: str
    kafka_prefix: str  # the KAFKA_PREFIX of the release the district runs in


@dataclass(frozen=True)
class Region:
    region_id: str  # the account district of the region's 文明办
    name: str
    districts: tuple[District, ...]

    @property
    def district_ids(self) -> list[str]:
        return [d.district_id for d in self.districts]


@dataclass(frozen=True)
class Regions:
    by_id: dict[str, Region]

    @cached_property
    def _topics_of(self) -> dict[str, frozenset[str]]:
        """district id -> the topics of its release (a province's region may repeat its cities' districts)."""
        return {d.district_id: frozenset(release_events_topic(d.kafka_prefix, s) for s in SOURCES)
                for region in self.by_id.values() for d in region.districts}

    def topics(self) -> list[str]:
        """The event topics of every release a region's district runs in."""
        return sorted(set().union(*self._topics_of.values()))

    def hosts(self, topic: str, district_id: str) -> bool:
        """True when the district is a configured one and `topic` is of its release: a release
        never speaks for a district it does not run. Asked for every event."""
        return topic in self._topics_of.get(district_id, ())

    def readable_by(self, principal: Principal, region_id: str) -> Region:
        """The region a caller asks for (empty: their own), if they may read it: a center admin of
        the region's account district, for that region only. District admins, other roles and
        other regions' admins are refused."""
        region = self.by_id.get(principal.district_id)
        if not principal.is_center_admin or region is None or region_id not in ("", region.region_id):
            raise PermissionDenied(REFUSED)
        return region


def parse_regions(text: str) -> Regions:
    """ROLLUP_REGIONS, JSON: {"regions": [{"region_id", "name", "districts": [{"district_id",
    "name", "kafka_prefix"}]}]}. ValueError names what is wrong."""
    try:
        raw = json.loads(text)
        regions = [Region(r["region_id"], r["name"], tuple(District(d["district_id"], d["name"], d.get("kafka_prefix", ""))
                                                             for d in r["districts"]))
                   for r in raw["regions"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"not the expected JSON ({type(exc).__name__}: {exc})") from None
    problems = []
    prefixes: dict[str, str] = {}
    for region in regions:
        if not ID_PATTERN.match(region.region_id) or not region.name or not region.districts:
            problems.append(f"region {region.region_id!r} needs an id, a name and at least one district")
        for d in region.districts:
            if not ID_PATTERN.match(d.district_id) or not d.name:
                problems.append(f"district {d.district_id!r} of {region.region_id!r} needs an id and a name")
            if not PREFIX.match(d.kafka_prefix):
                problems.append(f"district {d.district_id!r}: kafka_prefix is at most 40 of A-Z a-z 0-9 . _ -")
            if prefixes.setdefault(d.district_id, d.kafka_prefix) != d.kafka_prefix:
                problems.append(f"district {d.district_id!r} is named with two different kafka_prefix values")
    if len({r.region_id for r in regions}) < len(regions):
        problems.append("a region_id appears twice")
    # a region's admins are its account district's: were that a district of some region, the
    # district's own center admins would read the region
    problems += [f"region {r.region_id!r} is also a district" for r in regions if r.region_id in prefixes]
    if not regions:
        problems.append("no region")
    if problems:
        raise ValueError("; ".join(problems))
    return Regions({r.region_id: r for r in regions})


def extra_settings(env: Env) -> dict:
    text = env.str("ROLLUP_REGIONS")
    if not text:  # already named as missing
        return {}
    try:
        return {"regions": parse_regions(text)}
    except ValueError as exc:
        env.problems.append(f"ROLLUP_REGIONS: {exc}")
        return {}
