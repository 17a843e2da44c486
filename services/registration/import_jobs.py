"""Imports from a spreadsheet as background jobs (docs/onboarding.md).

StartImport checks the file (onboarding.py), refuses its bad rows at once and stores the valid
ones, encrypted, in chunks: the file itself is never kept. A periodic job (one replica at a time,
services/common/scheduler.py) registers chunk after chunk — people 500 at a time through the roll
imports (volunteers.py, residents.py), units, teams and members one by one as their RPCs write
them — each one
document with its events, so no row is ever half written, and records each chunk's outcome in the
job with a write guarded by the chunk number, so a chunk is counted once. A process killed
mid-chunk leaves the job at that chunk: the next runner registers it again, and whatever the
killed one had written already comes back as registered already (the district's unique indexes).
Re-importing a file registers nothing twice for the same reason; while a job for the same file is
unfinished, StartImport answers with that job.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from prometheus_client import Counter
from pymongo import ASCENDING
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal
from services.common.clock import clock
from services.common.errors import AlreadyExists, DomainError, NotFound
from services.common.ids import new_id, ulid_millis
from services.common.jobs import actor_fields, actor_principal, count_failure, progress, readable, run_pass
from services.common.pii import PiiVault
from wenming.registration.v1 import registration_pb2 as pb

from .models import IMPORT_CHUNKS, IMPORT_ROWS_FIELD
from .onboarding import FIELD_COLUMNS, KINDS, MAX_ISSUES, Checked, Onboarding, Units
from .residents import ResidentBook
from .roll import MAX_ROWS as CHUNK_ROWS, RowResult
from .teams import TeamRoster
from .units import UnitDirectory
from .volunteers import VolunteerRegistry

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 1.0
JOB_NAME = "import-jobs"
# how often a pass looks for rows left behind (_drop_leftover_rows), and how long rows stored by a
# start whose job never came to be may wait for it
LEFTOVER_SWEEP_SECONDS = 600
UNCLAIMED_ROWS_SECONDS = 3600
ROWS = Counter("registration_import_rows_total", "Rows of spreadsheet imports, by what became of them",
               ["outcome"])
S = pb.ImportJobState
UNFINISHED = [S.IMPORT_JOB_STATE_QUEUED, S.IMPORT_JOB_STATE_RUNNING]


@dataclass(frozen=True)
class ChunkFormat:
    """How a kind's rows wait in a chunk (as text, to be encrypted) and how many at a time."""

    pack: Callable[[list], str]
    unpack: Callable[[str], list]
    rows: int


def _proto_rows(request_type) -> ChunkFormat:
    """Rows of a roll import, as its request (the bulk path: roll.MAX_ROWS to a write)."""
    return ChunkFormat(lambda rows: base64.b64encode(request_type(rows=rows).SerializeToString()).decode(),
                       lambda text: list(request_type.FromString(base64.b64decode(text)).rows), CHUNK_ROWS)


FORMATS = {pb.IMPORT_KIND_VOLUNTEERS: _proto_rows(pb.ImportVolunteersRequest),
           pb.IMPORT_KIND_RESIDENTS: _proto_rows(pb.ImportResidentsRequest),
           # written one by one (OneByOne): fewer to a chunk, so a chunk stays well inside a pass
           **{kind: ChunkFormat(json.dumps, json.loads, 100)
              for kind in (pb.IMPORT_KIND_UNITS, pb.IMPORT_KIND_TEAMS, pb.IMPORT_KIND_TEAM_MEMBERS)}}


def _issue(row: int, column: str, reason: str, already: bool = False) -> dict:
    return {"row": row, "column": column, "reason": reason, "already_registered": already}


def _result_issue(kind: int, row: int, result: RowResult) -> dict:
    """What the roll import said about a row, as the sheet's reader reads it."""
    key = result.field.rsplit(".", 1)[-1] if "." in result.field else ""
    key = FIELD_COLUMNS.get(key, key)
    columns = {col.key: col.header for col in KINDS[kind].columns}
    if result.already_registered:
        return _issue(row, columns.get(key) or columns[KINDS[kind].identity], KINDS[kind].exists, True)
    # the file was checked when the job started: what fails now changed since (a unit moved away)
    return _issue(row, columns.get(key, ""), "导入时未通过校验（单位或人员信息在导入前发生了变化），请重新检查")


def one_by_one(rows: list, write: Callable[[object], str]) -> list[RowResult]:
    """Rows written one at a time as their RPC writes them (one document each): what exists
    already is reported as such, what is refused now (it changed since the check) with the reason."""
    results = [RowResult(i) for i in range(len(rows))]
    for result, row in zip(results, rows, strict=True):
        try:
            result.id = write(row)
        except AlreadyExists:
            result.refuse(f"rows[{result.row}]", "exists already", already_registered=True)
        except DomainError as error:
            result.refuse(f"rows[{result.row}]", str(error))
    return results


class OneByOne:
    """The kinds without a roll import: units (CreateUnit), teams (CreateTeam), members (AddTeamMember)."""

    def __init__(self, units: UnitDirectory, teams: TeamRoster):
        self.directory = units
        self.roster = teams

    def units(self, principal: Principal, rows: list[dict]) -> list[RowResult]:
        """A parent is found by its path of names: one an earlier row (or chunk) created is found too."""
        known = Units(principal)

        def create(row: dict) -> str:
            parent = known.by_path.get(tuple(row["parent"]))
            if parent is None:
                raise NotFound("parent unit", "/".join(row["parent"]))
            unit = self.directory.create(principal, parent["_id"], row["name"], row["level"], row["head_name"],
                                         row["head_phone"])
            known.add({"_id": unit.id, "level": unit.level, "names": (*row["parent"], row["name"])})
            return unit.id

        return one_by_one(rows, create)

    def teams(self, principal: Principal, rows: list[dict]) -> list[RowResult]:
        return one_by_one(rows, lambda row: self.roster.create(principal, pb.CreateTeamRequest(**row)).id)

    def members(self, principal: Principal, rows: list[dict]) -> list[RowResult]:
        return one_by_one(rows, lambda row: self.roster.add_member(principal, row["team_id"], row["volunteer_id"]).id)


class ImportJobs:
    def __init__(self, db: Database, vault: PiiVault, onboarding: Onboarding, units: UnitDirectory,
                 volunteers: VolunteerRegistry, residents: ResidentBook, teams: TeamRoster):
        self.jobs = db["import_jobs"]
        self.chunks = db[IMPORT_CHUNKS]
        self.vault = vault
        self.onboarding = onboarding
        single = OneByOne(units, teams)
        self.imports = {pb.IMPORT_KIND_VOLUNTEERS: volunteers.import_roll,
                        pb.IMPORT_KIND_RESIDENTS: residents.import_roll, pb.IMPORT_KIND_UNITS: single.units,
                        pb.IMPORT_KIND_TEAMS: single.teams, pb.IMPORT_KIND_TEAM_MEMBERS: single.members}
        self._running: set[str] = set()  # jobs this process has worked on since it started
        self._swept_at: float | None = None  # when this process last looked for rows left behind

    @staticmethod
    def ensure_indexes(db: Database) -> None:
        # one unfinished job per (district, kind, file): `active` becomes the job id when it is done
        db["import_jobs"].create_index([("active", ASCENDING)], unique=True)
        db["import_jobs"].create_index([("state", ASCENDING)])
        db[IMPORT_CHUNKS].create_index([("job_id", ASCENDING)])

    # ---- the API ----

    def start(self, principal: Principal, req: pb.StartImportRequest) -> dict:
        checked = self.onboarding.check(principal, req.kind, req.file, against_district=False)
        district = principal.district_id
        digest = hashlib.sha256(req.file.content).hexdigest()
        job_id, now = new_id("imp"), clock.now()
        size = FORMATS[req.kind].rows
        chunks = [checked.valid[at:at + size] for at in range(0, len(checked.valid), size)]
        if chunks:
            self.chunks.insert_many([self._sealed(job_id, district, req.kind, n, chunk)
                                     for n, chunk in enumerate(chunks)])
        issues = checked.issues()
        already = len({m.row.number for m in checked.marked} & {number for number, _ in checked.registered})
        job = {"_id": job_id, "district_id": district, "kind": req.kind, "file_name": req.file.file_name.strip(),
               "active": f"{district}|{req.kind}|{digest}", "unit_id": principal.unit_id,
               "unit_path": list(principal.unit_path), "actor": actor_fields(principal),
               "state": S.IMPORT_JOB_STATE_QUEUED if chunks else S.IMPORT_JOB_STATE_DONE,
               "total_rows": checked.rows, "chunks": len(chunks), "next_chunk": 0, "registered": 0,
               "already_registered": already, "refused": len(checked.marked) - already,
               "issues": [_issue(i.row, i.column, i.reason, i.already_registered) for i in issues],
               "created_at": now, "finished_at": None if chunks else now, "run_started_at": None, "run_rows": 0}
        if not chunks:
            job["active"] = job_id
        try:
            self.jobs.insert_one(job)
        except DuplicateKeyError:
            self.chunks.delete_many({"job_id": job_id})
            running = self.jobs.find_one({"active": job["active"]})
            if running is None:  # it finished in between: this file's import is a new one
                return self.start(principal, req)
            return running
        ROWS.labels("refused").inc(job["refused"])
        ROWS.labels("already_registered").inc(already)
        return job

    def check(self, principal: Principal, req: pb.CheckImportRequest) -> Checked:
        return self.onboarding.check(principal, req.kind, req.file, against_district=True)

    def get(self, principal: Principal, job_id: str) -> dict:
        return readable(self.jobs, principal, job_id, "import job")

    @staticmethod
    def progress(job: dict) -> tuple[int, float, int]:
        """(rows done, rows per second, seconds left) of the current run (services/common/jobs.py)."""
        running = job["state"] in UNFINISHED
        return progress(job["registered"] + job["already_registered"] + job["refused"], job["total_rows"],
                        job.get("run_started_at"), job["run_rows"], job.get("finished_at"), running)

    # ---- the runner ----

    def _sealed(self, job_id: str, district: str, kind: int, n: int, chunk: list[tuple[int, object]]) -> dict:
        text = FORMATS[kind].pack([row for _, row in chunk])
        return {"_id": f"{job_id}:{n:05d}", "job_id": job_id, "district_id": district, "n": n,
                "row_numbers": [number for number, _ in chunk],
                "rows": self.vault.encrypt(text, district_id=district, field=IMPORT_ROWS_FIELD)}

    def _opened(self, job: dict, chunk: dict) -> list:
        text = self.vault.decrypt(chunk["rows"], district_id=job["district_id"], field=IMPORT_ROWS_FIELD)
        return FORMATS[job["kind"]].unpack(text)

    def run_pass(self) -> int:
        """Chunks of unfinished jobs, oldest job first, for one pass (services/common/jobs.py); how many."""
        pending = sorted(self.jobs.find({"state": {"$in": UNFINISHED}}, {"issues": 0}), key=lambda j: j["_id"])
        if self._swept_at is None or time.monotonic() - self._swept_at > LEFTOVER_SWEEP_SECONDS:
            self._drop_leftover_rows({job["_id"] for job in pending})
            self._swept_at = time.monotonic()
        return run_pass("import", pending, "next_chunk", self._next_chunk, self._failed)

    def _drop_leftover_rows(self, unfinished: set[str]) -> int:
        """People's rows wait in chunks only while their job runs: they are dropped in a write after
        the one that ends the job, and a start whose job was not stored drops the rows it had
        stored. A process killed in between leaves them behind; the first pass of the next one (and
        one every LEFTOVER_SWEEP_SECONDS) drops those of ended jobs, and those of no job once the
        job would be an hour old. How many chunks went."""
        waiting = [job_id for job_id in self.chunks.distinct("job_id") if job_id not in unfinished]
        if not waiting:
            return 0
        states = {job["_id"]: job["state"] for job in self.jobs.find({"_id": {"$in": waiting}}, {"state": 1})}
        now_ms = time.time() * 1000

        def left_behind(job_id: str) -> bool:
            if job_id in states:
                return states[job_id] not in UNFINISHED
            made = ulid_millis(job_id.partition("_")[2])
            return made is not None and now_ms - made > UNCLAIMED_ROWS_SECONDS * 1000

        leftover = [job_id for job_id in waiting if left_behind(job_id)]
        if not leftover:
            return 0
        dropped = self.chunks.delete_many({"job_id": {"$in": leftover}}).deleted_count
        log.warning("dropped %d chunk(s) of rows left behind by %d import job(s) that had ended or never started",
                    dropped, len(leftover))
        return dropped

    def _failed(self, job: dict) -> None:
        """A chunk that keeps failing gives the job up; its waiting rows are dropped."""
        if count_failure(self.jobs, job, "next_chunk", {
                "state": S.IMPORT_JOB_STATE_FAILED, "finished_at": clock.now(), "active": job["_id"]}):
            self.chunks.delete_many({"job_id": job["_id"]})
            self._running.discard(job["_id"])

    def _begin_run(self, job: dict) -> dict | None:
        """This process takes the job on: the rate is measured from here."""
        fields = {"state": S.IMPORT_JOB_STATE_RUNNING, "run_started_at": clock.now(),
                  "run_rows": job["registered"] + job["already_registered"] + job["refused"]}
        if not self.jobs.update_one({"_id": job["_id"], "next_chunk": job["next_chunk"]}, {"$set": fields}).matched_count:
            return None
        self._running.add(job["_id"])
        return {**job, **fields}

    def _next_chunk(self, job: dict) -> dict | None:
        """Registers the job's next chunk and records it; the job as it is then, or None when it is
        done (or another runner moved it on)."""
        if job["_id"] not in self._running:
            job = self._begin_run(job)
            if job is None:
                return None
        n = job["next_chunk"]
        chunk = self.chunks.find_one({"_id": f"{job['_id']}:{n:05d}"})
        rows = self._opened(job, chunk)
        results = self.imports[job["kind"]](actor_principal(job), rows)
        counts = {"registered": 0, "already_registered": 0, "refused": 0}
        issues = []
        for number, result in zip(chunk["row_numbers"], results, strict=True):
            outcome = "registered" if not result.refused else \
                "already_registered" if result.already_registered else "refused"
            counts[outcome] += 1
            if result.refused:
                issues.append(_result_issue(job["kind"], number, result))
        last = n + 1 == job["chunks"]
        stored = self.jobs.find_one({"_id": job["_id"]}, {"issues": 1}) or {"issues": []}
        fields: dict = {"next_chunk": n + 1, "issues": (stored["issues"] + issues)[:MAX_ISSUES], "failures": 0}
        if last:
            fields.update(state=S.IMPORT_JOB_STATE_DONE, finished_at=clock.now(), active=job["_id"])
        if not self.jobs.update_one({"_id": job["_id"], "next_chunk": n}, {"$set": fields, "$inc": counts}).matched_count:
            return None  # another runner recorded this chunk
        for outcome, count in counts.items():
            ROWS.labels(outcome).inc(count)
        if last:
            # the people are registered: their data no longer waits in the chunks
            self.chunks.delete_many({"job_id": job["_id"]})
            self._running.discard(job["_id"])
            done, rate, _ = self.progress({**job, **fields, **{k: job[k] + v for k, v in counts.items()}})
            log.info("import job done", extra={"job_id": job["_id"], "district_id": job["district_id"],
                                               "rows": done, "rows_per_second": round(rate, 1)})
            return None
        return {**job, "next_chunk": n + 1, **{k: job[k] + v for k, v in counts.items()}}
