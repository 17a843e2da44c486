"""The hours and points export (时长积分统计, docs/reporting.md): every volunteer of a unit's
subtree with their verified, manual and training minutes and their points in a date range, and a
second sheet of totals per unit, through the kit's export jobs (services/common/exports.py).

A figure is the sum of the volunteer's ledger entries in that book that occurred in the range —
credits, reversals, and for points also redemptions, refunds and expiry — so over a range holding
all of a volunteer's history it is the balance GetAccount shows. A volunteer is counted once, under
the first of their service units inside the subtree (所属单位), so the unit totals add up to the
whole.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from services.common.auth import Principal, Role, require_role
from services.common.clock import CHINA
from services.common.errors import PermissionDenied
from services.common.exports import ExportJobs, Sheet, WorkbookSource
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.points.v1 import points_pb2 as pb

from .directory import Directory
from .models import LedgerEntry

START_HOURS_EXPORT = f"/{pb.DESCRIPTOR.services_by_name['PointsService'].full_name}/StartHoursExport"
MAX_DAYS = 3660  # ten years: a typo such as 0026 for 2026 is refused, not read as centuries
PAGE_ROWS = 1000
BOOKS = (pb.BOOK_VERIFIED_MINUTES, pb.BOOK_MANUAL_MINUTES, pb.BOOK_TRAINING_MINUTES, pb.BOOK_POINTS)
FIGURES = ("核实时长（分钟）", "手工时长（分钟）", "培训时长（分钟）", "积分")
HEADERS = ("志愿者编号", "姓名", "所属单位", *FIGURES)
UNIT_HEADERS = ("单位", "志愿者人数", *FIGURES)
TOTAL = "合计"


def date_range(v: Validator, from_text: str, to_text: str) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) in UTC of the China days from `from_text` to `to_text`, both included."""
    days = []
    for field, text in (("from_date", from_text), ("to_date", to_text)):
        try:
            days.append(dt.date.fromisoformat(text.strip()) if len(text.strip()) == 10 else None)
        except ValueError:
            days.append(None)
        if days[-1] is None:
            v.fail(field, "应为 YYYY-MM-DD 格式的日期，如 2026-11-01")
    first, last = days
    if first and last:
        if last < first:
            v.fail("to_date", "结束日期不能早于开始日期")
        elif (last - first).days >= MAX_DAYS:
            v.fail("to_date", f"统计区间最长 {MAX_DAYS} 天")
    v.check()
    # check() has raised unless both dates were read (an unreadable one is failed above)
    assert first is not None and last is not None
    start = dt.datetime.combine(first, dt.time(), CHINA)
    return start.astimezone(dt.UTC), (start + dt.timedelta(days=(last - first).days + 1)).astimezone(dt.UTC)


def first_unit_inside(volunteer: dict, root_id: str) -> dict | None:
    """The volunteer's first service unit inside the subtree of `root_id` (所属单位): where the hours
    export and the monthly report file them, once each."""
    return next((u for u in volunteer["units"] if root_id in u["path"]), None)


def home_unit(volunteer: dict, root_id: str) -> str:
    """The name of the volunteer's first service unit inside the subtree of `root_id`."""
    unit = first_unit_inside(volunteer, root_id)
    return unit["name"] if unit else ""


def sums_by_account(entries: list[dict]) -> dict[str, list[int]]:
    """Per account, its entries' amounts summed per book, in BOOKS order."""
    sums: dict[str, list[int]] = defaultdict(lambda: [0] * len(BOOKS))
    for entry in entries:
        sums[entry["account_id"]][BOOKS.index(entry["book"])] += entry["amount"]
    return sums


def unit_totals(rows: list[list]) -> list[list]:
    """One row per unit (volunteers and each figure summed), in the order units first appear,
    then the grand total."""
    units: dict[str, list[int]] = {}
    for row in rows:
        total = units.setdefault(row[2], [0] * (1 + len(BOOKS)))
        total[0] += 1
        for i, value in enumerate(row[3:], start=1):
            total[i] += value
    grand = [sum(values[i] for values in units.values()) for i in range(1 + len(BOOKS))]
    return [[name, *values] for name, values in units.items()] + [[TOTAL, *grand]]


class HoursSource(WorkbookSource):
    kind = common_pb2.EXPORT_KIND_HOURS
    title = "时长积分统计"

    def __init__(self, directory: Directory):
        self.directory = directory
        self.entries = LedgerEntry._get_collection()

    def count(self, principal: Principal, job: dict) -> int:
        return self.directory.registry.volunteers.count_documents({"district_id": job["district_id"],
                                                                   "scope": job["unit_id"]})

    def page(self, principal: Principal, job: dict, cursor: str) -> tuple[list[list], str]:
        # the starter must still run the unit: an admin moved elsewhere meanwhile gets no more pages
        self.directory.managed_unit(principal, job["unit_id"])
        query: dict = {"district_id": job["district_id"], "scope": job["unit_id"]}
        if cursor:
            query["_id"] = {"$gt": cursor}
        volunteers = list(self.directory.registry.volunteers.find(query, {"number": 1, "name": 1, "units": 1})
                          .sort("_id", 1).limit(PAGE_ROWS))
        params = job["params"]
        sums = sums_by_account(list(self.entries.find(
            {"district_id": job["district_id"], "account_id": {"$in": [v["_id"] for v in volunteers]},
             "book": {"$in": list(BOOKS)}, "occurred_at": {"$gte": params["start"], "$lt": params["end"]}},
            {"account_id": 1, "book": 1, "amount": 1})))
        rows = [[v["number"], v["name"], home_unit(v, job["unit_id"]), *sums[v["_id"]]] for v in volunteers]
        return rows, volunteers[-1]["_id"] if len(volunteers) == PAGE_ROWS else ""

    def sheets(self, job: dict, rows: list[list]) -> list[Sheet]:
        params = job["params"]
        heading = f"{params['from_date']} 至 {params['to_date']}"
        grand = unit_totals(rows)[-1]
        return [Sheet(f"明细 {heading}", HEADERS, [*rows, [TOTAL, "", "", *grand[2:]]]),
                Sheet("单位汇总", UNIT_HEADERS, unit_totals(rows))]


def reported_unit(directory: Directory, principal: Principal, unit_id: str, title: str, verb: str = "导出") -> dict:
    """The unit a points export or report is over: unit admins only, their own unit or one below it
    (every Start…Export of points and GetMonthlyReport authorize alike; `verb` says what was refused)."""
    require_role(principal, Role.ROLE_UNIT_ADMIN)
    unit = directory.unit(principal.district_id, unit_id)
    if not principal.manages(unit["path"]):
        raise PermissionDenied(f"只能{verb}本单位及下级单位的{title}")
    return unit


def start_hours(exports: ExportJobs, directory: Directory, principal: Principal,
                req: pb.StartHoursExportRequest) -> dict:
    """StartHoursExport: unit admins, for a unit of their own subtree."""
    v = Validator()
    unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
    start, end = date_range(v, req.from_date, req.to_date)
    unit = reported_unit(directory, principal, unit_id, HoursSource.title)
    return exports.start(principal, HoursSource.kind, unit, {
        "start": start, "end": end, "from_date": req.from_date.strip(), "to_date": req.to_date.strip()})
