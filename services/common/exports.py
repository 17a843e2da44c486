"""Exports as background jobs (docs/reporting.md), for every service that owns data worth a file.

A service describes each kind it exports as an `ExportSource`: the sheet's headers, how many rows
there are, and how to read them a page at a time with the rights of the admin who started the job
(so a page is authorized as the RPCs behind it are, and masked as they mask). `ExportJobs.start`
stores the job; the service's `exports` periodic job (one replica at a time) reads page after page,
keeping each with a write guarded by its number, so a page is counted once and a process killed
mid-export leaves the job at that page for the next runner. After the last page it writes the
file (a workbook, or what the source renders: PDF, a zip of PDFs), keeps it in the database in
1 MiB parts until EXPIRES_AFTER, deletes the pages, and records the export in the audit record with
its row count — the file is where personal data leaves. `purge_expired` deletes files past their time.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.styles import Font, PatternFill
from openpyxl.utils import get_column_letter
from pymongo import ASCENDING, ReturnDocument
from pymongo.database import Database

from wenming.common.v1 import common_pb2

from . import tracing
from .audit import client_address, record_action
from .auth import Principal
from .clock import CHINA, as_utc, clock
from .errors import FailedPrecondition
from .events import to_timestamp
from .ids import new_id
from .jobs import actor_fields, actor_principal, count_failure, progress, readable, run_pass
from .mongo import RawDoc

log = logging.getLogger(__name__)

S = common_pb2.ExportJobState
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EXPIRES_AFTER = dt.timedelta(hours=24)
PART_BYTES = 1024 * 1024  # a part of the file per document; also what DownloadExport sends at a time
INTERVAL_SECONDS = 1.0
JOB_NAME = "exports"
# what a sheet calls each level of the unit tree (exports, and the import templates' 级别 column)
UNIT_LEVEL_NAMES = {common_pb2.UNIT_LEVEL_CENTER: "中心", common_pb2.UNIT_LEVEL_INSTITUTE: "实践所",
                    common_pb2.UNIT_LEVEL_STATION: "实践站", common_pb2.UNIT_LEVEL_COURTYARD: "小院"}
HEADER_FILL = PatternFill("solid", start_color="FFDDEBF7", end_color="FFDDEBF7")
RUNNING = (S.EXPORT_JOB_STATE_QUEUED, S.EXPORT_JOB_STATE_RUNNING)

# a row of a sheet: its cells in header order, as the pages keep them between passes (JSON: text and numbers)
Row = list[str | int | float]


@dataclass(frozen=True)
class Sheet:
    """A finished table of the workbook: its title, header row and rows; a caption, when given, is a
    row above the headers (the report's name, unit and period, as a form sent upwards carries it)."""

    title: str
    headers: tuple[str, ...]
    rows: list[Row]
    caption: str = ""


@dataclass(frozen=True)
class FileFormat:
    """What an export's file is: its name's extension and the type it is served as."""

    extension: str
    content_type: str


XLSX_FILE = FileFormat("xlsx", XLSX)
PDF_FILE = FileFormat("pdf", "application/pdf")
ZIP_FILE = FileFormat("zip", "application/zip")


class ExportSource(Protocol):
    """One kind of export of a service."""

    kind: common_pb2.ExportKind
    title: str  # the file's name before the unit and date, e.g. 志愿者花名册

    def file_format(self, params: RawDoc) -> FileFormat:
        """The file a job with these parameters makes (known at start: it names the file)."""

    def count(self, principal: Principal, job: RawDoc) -> int:
        """How many rows the export will have (for progress; the pages decide)."""

    def page(self, principal: Principal, job: RawDoc, cursor: str) -> tuple[list[Row], str]:
        """The rows after `cursor` ("" for the first page) and the cursor of the next page, "" after
        the last. Read with the starter's rights: a refusal ends the job as failed."""

    def render(self, job: RawDoc, rows: list[Row]) -> bytes:
        """The file from every row read, in the job's format."""


class WorkbookSource(ABC):
    """A source exported as an .xlsx: it turns the rows into `sheets`, the main sheet first, then
    any totals."""

    @abstractmethod
    def sheets(self, job: RawDoc, rows: list[Row]) -> list[Sheet]: ...

    def file_format(self, params: RawDoc) -> FileFormat:
        return XLSX_FILE

    def render(self, job: RawDoc, rows: list[Row]) -> bytes:
        return workbook(self.sheets(job, rows))


def file_name(title: str, unit_name: str, day: dt.date, extension: str = XLSX_FILE.extension) -> str:
    """志愿者花名册-某某站-20261207.xlsx: what a person saves it as (no path characters)."""
    safe = "".join(c for c in unit_name if c not in '\\/:*?"<>|').strip() or "单位"
    return f"{title}-{safe}-{day:%Y%m%d}.{extension}"


def workbook(sheets: list[Sheet]) -> bytes:
    """An .xlsx of the sheets (write-only: rows go straight to the file, a district's roll fits)."""
    book = Workbook(write_only=True)
    for sheet in sheets:
        out = book.create_sheet(sheet.title)
        out.freeze_panes = "A3" if sheet.caption else "A2"
        for i, header in enumerate(sheet.headers, start=1):
            out.column_dimensions[get_column_letter(i)].width = max(10, 2 * len(header) + 4)
        if sheet.caption:
            caption = WriteOnlyCell(out, value=sheet.caption)
            caption.font = Font(bold=True, size=14)
            out.append([caption])
        out.append([_header_cell(out, header) for header in sheet.headers])
        for row in sheet.rows:
            out.append(row)
    data = io.BytesIO()
    book.save(data)
    return data.getvalue()


def _header_cell(sheet: Any, text: str) -> WriteOnlyCell:  # a write-only worksheet (openpyxl has no stubs here)
    cell = WriteOnlyCell(sheet, value=text)
    cell.font = Font(bold=True)
    cell.fill = HEADER_FILL
    return cell


def job_msg(job: RawDoc) -> common_pb2.ExportJob:
    done, rate, eta = progress(job["rows_done"], job["total_rows"], job.get("run_started_at"), job["run_rows"],
                               job.get("finished_at"), job["state"] in RUNNING)
    return common_pb2.ExportJob(
        job_id=job["_id"], kind=job["kind"], state=job["state"],
        unit=common_pb2.UnitRef(unit_id=job["unit_id"], level=job["unit_level"], name=job["unit_name"],
                                path=job["unit_path"]),
        file_name=job["file_name"],
        total_rows=job["total_rows"], rows_done=done, rows_per_second=round(rate, 1), eta_seconds=eta,
        size_bytes=job.get("size_bytes", 0), created_at=to_timestamp(job["created_at"]),
        finished_at=to_timestamp(job.get("finished_at")), expires_at=to_timestamp(job.get("expires_at")))


class ExportJobs:
    """The export jobs of one service; `start_method` names, per kind, the RPC that starts it (the
    audit record of the finished file is filed under it)."""

    def __init__(self, db: Database[RawDoc], service: str, sources: list[ExportSource],
                 start_methods: dict[common_pb2.ExportKind, str]):
        self.jobs = db["export_jobs"]
        self.pages = db["export_pages"]
        self.parts = db["export_parts"]
        self.audit = db["audit"]
        self.service = service
        self.sources = {source.kind: source for source in sources}
        self.start_methods = start_methods
        self._running: set[str] = set()  # jobs this process has worked on since it started

    @staticmethod
    def ensure_indexes(db: Database[RawDoc]) -> None:
        db["export_jobs"].create_index([("state", ASCENDING)])
        for collection in ("export_pages", "export_parts"):
            db[collection].create_index([("job_id", ASCENDING)])

    # ---- the API ----

    def start(self, principal: Principal, kind: common_pb2.ExportKind, unit: RawDoc, params: RawDoc) -> RawDoc:
        """A new job over `unit` (a dict with _id, name, path), already authorized by the caller."""
        now = clock.now()
        source = self.sources[kind]
        made = source.file_format(params)
        job = {"_id": new_id("exp"), "district_id": principal.district_id, "kind": kind, "params": params,
               "unit_id": unit["_id"], "unit_name": unit["name"], "unit_path": list(unit["path"]),
               "unit_level": unit["level"], "actor": actor_fields(principal),
               "client_address": client_address(), "trace_id": tracing.current_trace_id(),
               "file_name": file_name(source.title, unit["name"], now.astimezone(CHINA).date(), made.extension),
               "content_type": made.content_type,
               "state": S.EXPORT_JOB_STATE_QUEUED, "total_rows": 0, "rows_done": 0, "next_page": 0,
               "cursor": "", "pages_read": False, "failures": 0, "created_at": now,
               "run_started_at": None, "run_rows": 0}
        self.jobs.insert_one(job)
        return job

    def get(self, principal: Principal, job_id: str) -> RawDoc:
        """The job as it stands now: a file past its time is expired at once, even before
        `purge_expired` has deleted it."""
        job = readable(self.jobs, principal, job_id, "export job")
        if job["state"] == S.EXPORT_JOB_STATE_DONE and as_utc(job["expires_at"]) <= clock.now():
            job["state"] = S.EXPORT_JOB_STATE_EXPIRED
        return job

    def download(self, principal: Principal, job_id: str) -> Iterator[common_pb2.ExportFilePart]:
        """The file in parts; FAILED_PRECONDITION while it is not ready or after it expired."""
        job = self.get(principal, job_id)
        if job["state"] != S.EXPORT_JOB_STATE_DONE:
            raise FailedPrecondition("导出文件尚未生成完毕" if job["state"] in RUNNING else "导出文件已过期或生成失败，请重新导出")
        for n in range(job["parts"]):
            part = self.parts.find_one({"_id": f"{job['_id']}:{n:05d}"})
            if part is None:  # expired between the check and this part
                raise FailedPrecondition("导出文件已过期，请重新导出")
            # the name and type travel once, with the first part
            # jobs stored before other formats were all workbooks
            content_type = job.get("content_type", XLSX)
            yield common_pb2.ExportFilePart(file_name=job["file_name"] if n == 0 else "",
                                            content_type=content_type if n == 0 else "", data=bytes(part["data"]))

    # ---- the runner ----

    def run_pass(self) -> int:
        """Steps of unfinished jobs, oldest first, for one pass (jobs.py); how many."""
        pending = sorted(self.jobs.find({"state": {"$in": list(RUNNING)}}), key=lambda j: j["_id"])
        return run_pass("export", pending, "next_page", self._step, self._failed)

    def _step(self, job: RawDoc) -> RawDoc | None:
        """The job's next page, or its file once every page is in; the job as it is then, or None
        when it is done (or another runner moved it on)."""
        if job["_id"] not in self._running:
            begun = self._begin_run(job)
            if begun is None:
                return None
            job = begun
        if job["pages_read"]:
            self._finish(job)
            return None
        n, source = job["next_page"], self.sources[job["kind"]]
        rows, cursor = source.page(actor_principal(job), job, job["cursor"])
        # a repeat of the page (a runner that died after storing it) replaces it; rows as JSON text,
        # since the database takes no arrays of arrays
        self.pages.replace_one({"_id": f"{job['_id']}:{n:06d}"},
                               {"job_id": job["_id"], "n": n, "rows": json.dumps(rows, ensure_ascii=False)},
                               upsert=True)
        fields = {"next_page": n + 1, "cursor": cursor, "pages_read": not cursor, "failures": 0,
                  "rows_done": job["rows_done"] + len(rows)}
        if not self.jobs.update_one({"_id": job["_id"], "next_page": n}, {"$set": fields}).matched_count:
            return None
        return {**job, **fields}

    def _begin_run(self, job: RawDoc) -> RawDoc | None:
        """This process takes the job on: the rate is measured from here; the first run counts the rows."""
        fields = {"state": S.EXPORT_JOB_STATE_RUNNING, "run_started_at": clock.now(), "run_rows": job["rows_done"]}
        if job["state"] == S.EXPORT_JOB_STATE_QUEUED:
            fields["total_rows"] = self.sources[job["kind"]].count(actor_principal(job), job)
        if not self.jobs.update_one({"_id": job["_id"], "next_page": job["next_page"]}, {"$set": fields}).matched_count:
            return None
        self._running.add(job["_id"])
        return {**job, **fields}

    def _finish(self, job: RawDoc) -> None:
        """The file from the stored pages, kept in parts; the job done; the export recorded."""
        rows = [row for page in self.pages.find({"job_id": job["_id"]}).sort("n", ASCENDING)
                for row in json.loads(page["rows"])]
        content = self.sources[job["kind"]].render(job, rows)
        parts = [content[at:at + PART_BYTES] for at in range(0, len(content), PART_BYTES)]
        self.parts.delete_many({"job_id": job["_id"]})  # what a runner that died here had written
        self.parts.insert_many([{"_id": f"{job['_id']}:{n:05d}", "job_id": job["_id"], "data": data}
                                for n, data in enumerate(parts)])
        now = clock.now()  # expiry is a rule in time: tests move this clock
        done = self.jobs.find_one_and_update(
            {"_id": job["_id"], "state": S.EXPORT_JOB_STATE_RUNNING, "pages_read": True},
            {"$set": {"state": S.EXPORT_JOB_STATE_DONE, "finished_at": now, "expires_at": now + EXPIRES_AFTER,
                      "parts": len(parts), "size_bytes": len(content), "total_rows": len(rows)}},
            return_document=ReturnDocument.AFTER)
        self._running.discard(job["_id"])
        if done is None:
            return  # another runner finished it
        self.pages.delete_many({"job_id": job["_id"]})
        record_action(self.audit, self.service, actor_principal(job), self.start_methods[job["kind"]],
                      [job["_id"], job["unit_id"]], code="OK", client_address=job["client_address"], peer="",
                      trace_id=job["trace_id"], rows=len(rows))
        log.info("export job done", extra={"job_id": job["_id"], "district_id": job["district_id"],
                                           "rows": len(rows), "bytes": len(content)})

    def _failed(self, job: RawDoc) -> None:
        """A step that keeps failing gives the job up; its pages are dropped."""
        if count_failure(self.jobs, job, "next_page", {"state": S.EXPORT_JOB_STATE_FAILED, "finished_at": clock.now()}):
            self.pages.delete_many({"job_id": job["_id"]})
            self._running.discard(job["_id"])

    def purge_expired(self) -> int:
        """Deletes the files past their time; how many."""
        expired = [job["_id"] for job in self.jobs.find(
            {"state": S.EXPORT_JOB_STATE_DONE, "expires_at": {"$lt": clock.now()}}, {"_id": 1})]
        for job_id in expired:
            self.parts.delete_many({"job_id": job_id})
            self.jobs.update_one({"_id": job_id, "state": S.EXPORT_JOB_STATE_DONE},
                                 {"$set": {"state": S.EXPORT_JOB_STATE_EXPIRED}})
        return len(expired)


def scheduled(jobs: ExportJobs) -> list[tuple[str, Callable[[], int], float]]:
    """The periodic jobs a service adds for its exports: (name, work, interval)."""
    return [(JOB_NAME, jobs.run_pass, INTERVAL_SECONDS), ("export-expiry", jobs.purge_expired, 600.0)]
