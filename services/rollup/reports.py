"""A region's month (GetRegionReport): each district's figures and their sum, from the records
facts.py keeps, added up by the monthly report's own rules (monthly_rules.tally) with the region
as the root and its districts as the rows — so each district's row is what its own report gives
for its center, and the total is the sum of the rows by the same rule that makes a district's
合计 the sum of its units."""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict

from prometheus_client import Histogram

from services.common import monthly_rules as rules
from services.common.auth import Principal
from services.common.clock import clock
from services.common.validation import Validator
from wenming.rollup.v1 import rollup_pb2 as pb

from .facts import DistrictFacts
from .regions import Region, Regions

COMPUTE_SECONDS = Histogram("rollup_region_report_seconds", "Time to compute a region's month (GetRegionReport)",
                            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
Span = tuple[dt.datetime, dt.datetime]


class RegionReports:
    def __init__(self, facts: DistrictFacts, regions: Regions):
        self.facts = facts
        self.regions = regions

    def get(self, principal: Principal, req: pb.GetRegionReportRequest) -> pb.RegionReport:
        """GetRegionReport: the region's 文明办 (center admins of its account district), for their region."""
        v = Validator()
        region_id = v.ident("region_id", req.region_id, required=False)
        year, month = rules.validate_month(v, "month", req.month, clock.now())
        v.check()
        return self.compute(self.regions.readable_by(principal, region_id), year, month)

    def compute(self, region: Region, year: int, month: int) -> pb.RegionReport:
        started = time.perf_counter()
        span = rules.month_bounds(year, month)
        ids = region.district_ids
        hours = self._hours(region, span)
        result = rules.tally(region.region_id, ids, span, (), volunteers=self._volunteers(region, hours),
                             teams=self._teams(region), activities=self._activities(region, span),
                             orders=self._orders(region, span), hours=hours)
        report = pb.RegionReport(
            region_id=region.region_id, name=region.name, month=f"{year:04d}-{month:02d}",
            districts=[pb.DistrictRow(district_id=d.district_id, name=d.name,
                                      figures=rules.figures_msg(result.units[d.district_id])) for d in region.districts],
            total=rules.figures_msg(result.total))
        COMPUTE_SECONDS.observe(time.perf_counter() - started)
        return report

    # ---- the month's records of the region's districts, each at (region, district) ----

    @staticmethod
    def _path(region: Region, record: dict) -> tuple[str, str]:
        return region.region_id, record["district_id"]

    def _in(self, region: Region) -> dict:
        return {"district_id": {"$in": region.district_ids}}

    def _hours(self, region: Region, span: Span) -> list[rules.Hours]:
        found = self.facts.hours.find({**self._in(region), "occurred_at": {"$gte": span[0], "$lt": span[1]}})
        return [rules.Hours(self._path(region, h), 0, h["minutes"], h["volunteer_id"]) for h in found]

    def _volunteers(self, region: Region, hours: list[rules.Hours]) -> list[rules.Volunteer]:
        minutes: dict[str, int] = defaultdict(int)
        for h in hours:
            minutes[h.volunteer_id] += h.minutes
        return [rules.Volunteer(self._path(region, v), v.get("registered_at"), minutes[v["_id"]])
                for v in self.facts.volunteers.find({**self._in(region), "serving": True})]

    def _teams(self, region: Region) -> list[rules.Team]:
        return [rules.Team(self._path(region, t), t.get("created_at")) for t in self.facts.teams.find(self._in(region))]

    def _activities(self, region: Region, span: Span) -> list[rules.Activity]:
        found = self.facts.activities.find({**self._in(region), "completed": 1,
                                            "starts_at": {"$gte": span[0], "$lt": span[1]}})
        return [rules.Activity(self._path(region, a), a["category"], a.get("participants", 0)) for a in found]

    def _orders(self, region: Region, span: Span) -> list[rules.Order]:
        found = self.facts.orders.find({**self._in(region), "placed_at": {"$gte": span[0], "$lt": span[1]}})
        return [rules.Order(self._path(region, o), o["category"], bool(o["completed"]), o["rating"]) for o in found]
