"""The kit's export jobs (services/common/exports.py) on the real database: a runner that dies
mid-export leaves the job at its page and the next one finishes it with every row once; a page
that keeps failing gives the job up; a file past its time is deleted."""

from __future__ import annotations

import datetime as dt
import io
import uuid

import openpyxl
import pytest

from services.common.auth import Principal
from services.common.exports import ExportJobs, Sheet, WorkbookSource
from wenming.common.v1 import common_pb2 as c

KIND, START = c.EXPORT_KIND_ROSTER, "/wenming.test.v1.TestService/StartTestExport"
UNIT = {"_id": "unt_test", "name": "测试站", "path": ["unt_center", "unt_test"], "level": c.UNIT_LEVEL_STATION}
ADMIN = Principal(subject="adm_test", district_id="dtest", role=c.ROLE_UNIT_ADMIN, unit_id="unt_test",
                  unit_level=c.UNIT_LEVEL_STATION, unit_path=("unt_center", "unt_test"))


class ProcessDied(BaseException):
    """Not an Exception: nothing in the runner catches it, as nothing catches a SIGKILL."""


class Numbers(WorkbookSource):
    """`total` numbered rows, `size` a page; dies (or fails) when asked to read the page at `bad`."""

    kind, title = KIND, "编号表"

    def __init__(self, total: int, size: int, bad: int | None = None, error: type[BaseException] = ProcessDied):
        self.total, self.size, self.bad, self.error = total, size, bad, error
        self.reads: list[int] = []

    def count(self, principal, job) -> int:
        return self.total

    def page(self, principal, job, cursor: str):
        start = int(cursor or 0)
        self.reads.append(start)
        if start == self.bad:
            raise self.error("page failed")
        rows = [[n, f"第{n}行"] for n in range(start, min(start + self.size, self.total))]
        return rows, str(start + self.size) if start + self.size < self.total else ""

    def sheets(self, job, rows):
        return [Sheet("编号", ("编号", "名称"), rows)]


@pytest.fixture
def db(stack, mongo_client):
    name = f"{stack.db_prefix}kit_exports_{uuid.uuid4().hex[:6]}"
    ExportJobs.ensure_indexes(mongo_client[name])
    yield mongo_client[name]
    mongo_client.drop_database(name)


def _file(jobs: ExportJobs, job_id: str) -> list[list]:
    content = b"".join(part.data for part in jobs.download(ADMIN, job_id))
    return [list(r) for r in openpyxl.load_workbook(io.BytesIO(content)).active.iter_rows(min_row=2, values_only=True)]


def test_a_runner_killed_mid_export_leaves_the_job_for_the_next_with_every_row_once(db):
    first = ExportJobs(db, "test", [Numbers(250, 100, bad=200)], {KIND: START})
    job = first.start(ADMIN, KIND, UNIT, {})
    with pytest.raises(ProcessDied):
        first.run_pass()
    stored = db.export_jobs.find_one({"_id": job["_id"]})
    assert (stored["state"], stored["next_page"], stored["rows_done"], stored["total_rows"]) == \
        (c.EXPORT_JOB_STATE_RUNNING, 2, 200, 250)

    source = Numbers(250, 100)
    second = ExportJobs(db, "test", [source], {KIND: START})  # the replica that takes the job over
    second.run_pass()
    assert source.reads == [200]  # it goes on where the dead one stopped
    done = second.get(ADMIN, job["_id"])
    assert (done["state"], done["total_rows"]) == (c.EXPORT_JOB_STATE_DONE, 250)
    assert [row[0] for row in _file(second, job["_id"])] == list(range(250))
    assert db.export_pages.count_documents({"job_id": job["_id"]}) == 0
    [record] = db.audit.find({"object_ids": job["_id"]})
    assert (record["method"], record["rows"], record["actor_id"]) == (START, 250, ADMIN.subject)


def test_a_page_failing_three_passes_in_a_row_gives_the_job_up(db):
    jobs = ExportJobs(db, "test", [Numbers(250, 100, bad=100, error=ValueError)], {KIND: START})
    job = jobs.start(ADMIN, KIND, UNIT, {})
    for _ in range(3):
        jobs.run_pass()
    given_up = jobs.get(ADMIN, job["_id"])
    assert (given_up["state"], given_up["next_page"]) == (c.EXPORT_JOB_STATE_FAILED, 1)
    assert db.export_pages.count_documents({"job_id": job["_id"]}) == 0
    assert db.audit.count_documents({"object_ids": job["_id"]}) == 0  # no file, nothing handed out


def test_the_file_is_deleted_after_its_time(db):
    jobs = ExportJobs(db, "test", [Numbers(3, 100)], {KIND: START})
    job = jobs.start(ADMIN, KIND, UNIT, {})
    jobs.run_pass()
    assert db.export_parts.count_documents({"job_id": job["_id"]}) == 1
    db.export_jobs.update_one({"_id": job["_id"]},
                              {"$set": {"expires_at": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)}})
    assert jobs.purge_expired() == 1
    assert db.export_parts.count_documents({"job_id": job["_id"]}) == 0
    assert jobs.get(ADMIN, job["_id"])["state"] == c.EXPORT_JOB_STATE_EXPIRED
