"""A district onboards from Excel (docs/onboarding.md): the template of a kind, a dry run that marks
every bad cell of a 2,000-row workbook and writes nothing, and an import job that survives a
SIGKILL of the service mid-file, ends with every row registered exactly once, and changes nothing
when the same file is imported again."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

import grpc
import openpyxl
import pytest

from services.common.config import Env, pii_vault
from services.common.ids import new_id, ulid
from services.registration.sheets import BAD_FILL, REASONS_HEADER, ROW_NUMBER_HEADER
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import District, new_national_id, new_phone
from tests.support.stack import KAFKA_PREFIX
from wenming.registration.v1 import registration_pb2 as reg

VOLUNTEERS, RESIDENTS, UNITS = reg.IMPORT_KIND_VOLUNTEERS, reg.IMPORT_KIND_RESIDENTS, reg.IMPORT_KIND_UNITS
TEAMS, TEAM_MEMBERS = reg.IMPORT_KIND_TEAMS, reg.IMPORT_KIND_TEAM_MEMBERS
DONE = reg.IMPORT_JOB_STATE_DONE
HEADERS = ["姓名", "身份证号", "手机号", "政治面貌", "服务单位", "技能特长", "可服务日", "可服务时段"]


@dataclass
class Sheet:
    """A volunteers workbook as a district's office would fill it in, and the cells made wrong."""

    rows: list[list[str]] = field(default_factory=list)
    defects: set[tuple[int, str]] = field(default_factory=set)  # (row number in the file, header)

    def add(self, **cells) -> int:
        self.rows.append([cells.get(h, "") for h in HEADERS])
        return len(self.rows) + 1  # the header is row 1

    def spoil(self, number: int, header: str, value: str) -> None:
        self.rows[number - 2][HEADERS.index(header)] = value
        self.defects.add((number, header))

    def cell(self, number: int, header: str) -> str:
        return self.rows[number - 2][HEADERS.index(header)]

    def xlsx(self) -> bytes:
        book = openpyxl.Workbook()
        sheet = book.active
        sheet.append([f"{h}*" if h in HEADERS[:5] else h for h in HEADERS])  # as the template marks them
        for row in self.rows:
            sheet.append(row)
        out = io.BytesIO()
        book.save(out)
        return out.getvalue()


def clean_sheet(tree, count: int) -> Sheet:
    """`count` valid volunteers of station 0's courtyards, their units written each way a sheet may."""
    center, station, yards = tree.center.name, tree.stations[0].name, tree.courtyards[:2]
    ways = [yards[0].name, f"{station}/{yards[1].name}", f"{center}/{tree.institute.name}/{station}/{yards[0].name}",
            f"{yards[0].name}；{yards[1].name}", tree.stations[0].unit_id]
    sheet = Sheet()
    for i in range(count):
        sheet.add(姓名=f"志愿者{i}", 身份证号=new_national_id(year=1960 + i % 40), 手机号=new_phone(),
                  政治面貌=["群众", "中共党员", "共青团员"][i % 3], 服务单位=ways[i % len(ways)],
                  技能特长=["", "义务理发", "助老服务、数字助老"][i % 3], 可服务日=["", "周一、周三", "周六"][i % 3],
                  可服务时段=["", "上午", "下午、晚上"][i % 3])
    return sheet


def with_defects(sheet: Sheet, tree, registered: list[str]) -> None:
    """37 bad cells: each rule of the check broken, a few rows with two; `registered` are ID numbers
    the district holds already."""
    other_station_yard = tree.courtyards[2].name
    spoilt = iter(range(40, 2000, 50))
    for _ in range(5):  # a wrong check digit
        n = next(spoilt)
        good = sheet.cell(n, "身份证号")
        sheet.spoil(n, "身份证号", good[:17] + ("0" if good[17] != "0" else "1"))
    for value in ("11010519900101123", "1101051990010112345"):  # 17 and 19 characters
        sheet.spoil(next(spoilt), "身份证号", value)
    for value in ("110105199013011234", "110105199002301234"):  # month 13, 30 February
        sheet.spoil(next(spoilt), "身份证号", value)
    for value in ("12800000000", "1380000000", "电话未知", "02988886666"):
        sheet.spoil(next(spoilt), "手机号", value)
    for value in ("", "名" * 51):
        sheet.spoil(next(spoilt), "姓名", value)
    for value in ("党员", "团员", "无党派"):
        sheet.spoil(next(spoilt), "政治面貌", value)
    for _ in range(4):  # a courtyard of the other station: outside the admin's subtree
        sheet.spoil(next(spoilt), "服务单位", other_station_yard)
    for value in ("不存在的小院", f"{tree.stations[1].name}/{tree.courtyards[0].name}"):
        sheet.spoil(next(spoilt), "服务单位", value)
    for value in ("修电脑", "义务理发、跳舞"):
        sheet.spoil(next(spoilt), "技能特长", value)
    sheet.spoil(next(spoilt), "可服务日", "周八")
    for source in (100, 300, 500):  # the same person twice in the file
        sheet.spoil(next(spoilt), "身份证号", sheet.cell(source, "身份证号"))
    for source in (700, 900):
        sheet.spoil(next(spoilt), "手机号", sheet.cell(source, "手机号"))
    for number in registered:  # already in the district
        sheet.spoil(next(spoilt), "身份证号", number)
    # two rows with a second bad cell each
    sheet.spoil(40, "手机号", "123")
    sheet.spoil(90, "政治面貌", "群众们")
    assert len(sheet.defects) == 37


def _wait_done(stub, token: str, job_id: str, timeout: float = 240) -> reg.ImportJob:
    deadline = time.monotonic() + timeout
    while True:
        job = stub.GetImportJob(reg.GetImportJobRequest(job_id=job_id), metadata=bearer(token), timeout=10).job
        if job.state == DONE:
            return job
        assert time.monotonic() < deadline, f"import job not done after {timeout}s: {job}"
        time.sleep(0.3)


def _volunteers(db, district_id: str) -> list[dict]:
    return list(db.volunteers.find({"district_id": district_id}, {"id_index": 1, "name": 1}))


@pytest.fixture(scope="module")
def tree(module_district):
    return module_district.small_tree()


def test_the_templates_have_the_chinese_headers(module_district, tree):
    admin = bearer(tree.admins[tree.stations[0].unit_id])
    reply = module_district.stub.GetImportTemplate(reg.GetImportTemplateRequest(
        kind=VOLUNTEERS, format=reg.IMPORT_FORMAT_XLSX), metadata=admin, timeout=10)
    book = openpyxl.load_workbook(io.BytesIO(reply.content))
    assert reply.file_name == "志愿者导入模板.xlsx" and list(reply.headers) == HEADERS
    assert [c.value.rstrip("*") for c in book.worksheets[0][1]] == HEADERS
    assert book.worksheets[0].column_dimensions["B"].number_format == "@"  # ID numbers stay text
    assert [r[0] for r in book["填写说明"].iter_rows(min_row=2, values_only=True)] == HEADERS
    csv_reply = module_district.stub.GetImportTemplate(reg.GetImportTemplateRequest(
        kind=RESIDENTS, format=reg.IMPORT_FORMAT_CSV), metadata=admin, timeout=10)
    assert csv_reply.content.startswith(b"\xef\xbb\xbf")
    assert next(csv.reader(io.StringIO(csv_reply.content.decode("utf-8-sig")))) == ["姓名", "手机号", "所属小院"]


def test_a_dry_run_marks_exactly_the_37_bad_cells_and_writes_nothing(module_district, tree, registration_db):
    district = module_district
    station = tree.admins[tree.stations[0].unit_id]
    registered = [new_national_id() for _ in range(3)]
    for number in registered:
        district.stub.RegisterVolunteer(reg.RegisterVolunteerRequest(
            district_id=district.id, name="已登记", national_id=number, phone=new_phone(), password="Test-pass-2026",
            political_status=reg.POLITICAL_STATUS_MASSES, service_unit_ids=[tree.courtyards[0].unit_id]),
            metadata=bearer(station), timeout=10)
    sheet = clean_sheet(tree, 2000)
    with_defects(sheet, tree, registered)
    before = len(_volunteers(registration_db, district.id))
    jobs_before = registration_db.import_jobs.count_documents({})

    reply = district.stub.CheckImport(reg.CheckImportRequest(
        kind=VOLUNTEERS, file=reg.ImportFile(file_name="凉州区志愿者.xlsx", content=sheet.xlsx())),
        metadata=bearer(station), timeout=120)

    bad_rows = {n for n, _ in sheet.defects}
    assert (reply.rows, reply.valid_rows, reply.marked_cells) == (2000, 2000 - len(bad_rows), 37)
    assert {(i.row, i.column) for i in reply.issues} == sheet.defects
    assert {i.row for i in reply.issues if i.already_registered} == {n for n, h in sheet.defects
                                                                     if sheet.cell(n, h) in registered}
    book = openpyxl.load_workbook(io.BytesIO(reply.error_workbook))
    rows = list(book.active.iter_rows())
    header = [c.value for c in rows[0]]
    assert header == [ROW_NUMBER_HEADER, *HEADERS, REASONS_HEADER]
    marks = {(row[0].value, header[c.column - 1]): c for row in rows[1:] for c in row
             if c.fill.fgColor.rgb == BAD_FILL.fgColor.rgb}
    assert set(marks) == sheet.defects and len(rows) - 1 == len(bad_rows)
    assert all(c.comment and c.comment.text for c in marks.values())
    reasons = {(i.row, i.column): i.reason for i in reply.issues}
    assert reasons[(40, "手机号")] == "应为11位大陆手机号（13–19开头）"
    assert "校验位" in reasons[(40, "身份证号")] and "管辖" in reasons[(next(n for n, h in sorted(sheet.defects)
                                                                         if h == "服务单位"), "服务单位")]
    for (number, _), reason in reasons.items():  # a reason never repeats a personal value
        assert sheet.cell(number, "身份证号") not in reason and sheet.cell(number, "手机号") not in reason
    # the marked rows carry what was typed, so the sheet can be corrected and imported as it is
    assert rows[1][HEADERS.index("身份证号") + 1].value == sheet.cell(rows[1][0].value, "身份证号")

    assert len(_volunteers(registration_db, district.id)) == before
    assert registration_db.import_jobs.count_documents({}) == jobs_before


def test_an_import_killed_mid_file_resumes_and_registers_every_row_exactly_once(stack, spawn, mongo_client):
    """Killed mid-file, the next process finishes the job: every row registered once, no row left
    waiting; rows other killed processes left behind are dropped by its first pass."""
    # a registration process of its own (own database), so the test's SIGKILL hits the one running the job;
    # its 2,000 registrations go to topics of their own, which no other service of this worker replays
    proc = spawn("registration", port_offset=1, database_prefix=f"{stack.db_prefix}onboard_",
                 log_name="registration-import", extra_env={"KAFKA_PREFIX": f"{KAFKA_PREFIX}onboard."})
    proc.wait_serving(90)
    district = District(proc.grpc_target, proc.env)
    try:
        tree = district.small_tree()
        token = tree.admins[tree.stations[0].unit_id]
        sheet = clean_sheet(tree, 2000)
        file = reg.ImportFile(file_name="凉州区志愿者.xlsx", content=sheet.xlsx())
        job = district.stub.StartImport(reg.StartImportRequest(kind=VOLUNTEERS, file=file), metadata=bearer(token),
                                        timeout=120).job
        assert job.total_rows == 2000 and job.state == reg.IMPORT_JOB_STATE_QUEUED
        # the same file again while it is unfinished: the one job
        assert district.stub.StartImport(reg.StartImportRequest(kind=VOLUNTEERS, file=file), metadata=bearer(token),
                                         timeout=120).job.job_id == job.job_id

        deadline = time.monotonic() + 120
        while job.rows_done == 0:  # the first chunk of 500 is in
            assert time.monotonic() < deadline, "the import never started"
            time.sleep(0.05)
            job = district.stub.GetImportJob(reg.GetImportJobRequest(job_id=job.job_id), metadata=bearer(token),
                                             timeout=10).job
        proc.kill()  # SIGKILL, mid-file
        assert 0 < job.rows_done < 2000 and job.rows_per_second > 0 and job.eta_seconds > 0, job
        db = mongo_client[f"{stack.db_prefix}onboard_registration"]
        assert 500 <= len(_volunteers(db, district.id)) < 2000
        waiting = list(db.import_chunks.find({"job_id": job.job_id}))  # the rows not yet registered: sealed
        numbers = [n for chunk in waiting for n in chunk["row_numbers"]]
        assert numbers and not any(sheet.cell(n, h) in str(waiting) for n in numbers[:50] for h in ("身份证号", "手机号"))
        # rows a killed process left behind elsewhere: of an ended job, of a start whose job was
        # never stored (two hours ago), and of one being started right now (kept)
        ended, unclaimed, starting = new_id("imp"), f"imp_{ulid(int(time.time() * 1000) - 7_200_000)}", new_id("imp")
        db.import_jobs.insert_one({"_id": ended, "district_id": district.id, "state": reg.IMPORT_JOB_STATE_DONE,
                                   "active": ended})
        db.import_chunks.insert_many([{"_id": f"{job_id}:00000", "job_id": job_id, "district_id": district.id,
                                       "n": 0, "row_numbers": [2], "rows": b"sealed"}
                                      for job_id in (ended, unclaimed, starting)])

        proc.start()
        proc.wait_serving(90)
        deadline = time.monotonic() + 30
        while db.import_chunks.count_documents({"job_id": {"$in": [ended, unclaimed]}}) and time.monotonic() < deadline:
            time.sleep(0.3)
        assert db.import_chunks.distinct("job_id", {"job_id": {"$in": [ended, unclaimed, starting]}}) == [starting]
        db.import_chunks.delete_many({"job_id": starting})
        done = _wait_done(district.stub, token, job.job_id)
        assert (done.total_rows, done.rows_done, done.refused) == (2000, 2000, 0)
        assert done.registered + done.already_registered == 2000
        vault = pii_vault(Env(proc.env))
        wanted = {vault.blind_index(sheet.cell(n, "身份证号"), district_id=district.id, field="national_id")
                  for n in range(2, 2002)}
        stored = [v["id_index"] for v in _volunteers(db, district.id)]
        assert len(stored) == 2000 and set(stored) == wanted  # every row, each once
        assert db.import_chunks.count_documents({"job_id": job.job_id}) == 0  # no personal data left waiting

        again = district.stub.StartImport(reg.StartImportRequest(kind=VOLUNTEERS, file=file), metadata=bearer(token),
                                          timeout=120).job
        assert again.job_id != job.job_id
        again = _wait_done(district.stub, token, again.job_id)
        assert (again.registered, again.already_registered) == (0, 2000)
        assert all(i.already_registered for i in again.issues) and len(again.issues) == 200
        assert [v["id_index"] for v in _volunteers(db, district.id)] == stored
    finally:
        district.close()


def test_residents_import_and_another_station_is_refused(registration, module_district, tree):
    district = module_district
    own, other = tree.admins[tree.stations[0].unit_id], tree.admins[tree.stations[1].unit_id]
    rows = [("赵桂兰", new_phone(), tree.courtyards[0].name), ("钱", new_phone(), tree.courtyards[1].name),
            ("孙", new_phone(), tree.courtyards[2].name), ("李", new_phone(), tree.stations[0].name)]
    content = "\ufeff姓名,手机号,所属小院\n" + "".join(f"{n},{p},{y}\n" for n, p, y in rows)
    file = reg.ImportFile(file_name="群众.csv", content=content.encode())
    job = district.stub.StartImport(reg.StartImportRequest(kind=RESIDENTS, file=file), metadata=bearer(own),
                                    timeout=30).job
    # the admin of the other station sees nothing of it, and a resident calls nothing of this
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.GetImportJob(reg.GetImportJobRequest(job_id=job.job_id), metadata=bearer(other), timeout=10)
    _, resident = district.resident(tree.courtyards[0].unit_id)
    for call, request in ((district.stub.GetImportJob, reg.GetImportJobRequest(job_id=job.job_id)),
                          (district.stub.StartImport, reg.StartImportRequest(kind=RESIDENTS, file=file)),
                          (district.stub.CheckImport, reg.CheckImportRequest(kind=RESIDENTS, file=file))):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            call(request, metadata=bearer(resident), timeout=10)
    # nor does another district's admin find it
    elsewhere = District(registration.grpc_target, registration.env)
    try:
        with expect_error(grpc.StatusCode.NOT_FOUND):
            elsewhere.stub.GetImportJob(reg.GetImportJobRequest(job_id=job.job_id), metadata=elsewhere.as_center(),
                                        timeout=10)
    finally:
        elsewhere.close()

    done = _wait_done(district.stub, own, job.job_id, timeout=60)
    assert (done.registered, done.refused) == (2, 2)
    assert {(i.row, i.column) for i in done.issues} == {(4, "所属小院"), (5, "所属小院")}
    assert "小院" in next(i.reason for i in done.issues if i.row == 5)
    # the same rows seen by the other station's admin: their courtyards are outside its subtree
    seen = district.stub.CheckImport(reg.CheckImportRequest(kind=RESIDENTS, file=file), metadata=bearer(other),
                                     timeout=30)
    # (rows 2 and 3 are registered by now: their phones are marked too; row 4 was never registered)
    assert {(i.row, i.column) for i in seen.issues} == {(2, "所属小院"), (3, "所属小院"), (5, "所属小院"),
                                                        (2, "手机号"), (3, "手机号")}


def test_a_bad_request_names_its_field(module_district, tree):
    stub, admin = module_district.stub, bearer(tree.admins[tree.stations[0].unit_id])
    good = reg.ImportFile(file_name="群众.csv", content="姓名,手机号,所属小院\n".encode())
    cases = {
        "kind": reg.CheckImportRequest(file=good),
        "file.file_name": reg.CheckImportRequest(kind=RESIDENTS, file=reg.ImportFile(content=good.content)),
        "file.content": reg.CheckImportRequest(kind=RESIDENTS, file=reg.ImportFile(file_name="a.csv")),
    }
    for name, request in cases.items():
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=name):
            stub.CheckImport(request, metadata=admin, timeout=10)
    for content, says in ((b"x" * (7 * 1024 * 1024 + 1), "MiB"), ("姓名,手机号\n张三,13800000000\n".encode(), "所属小院"),
                          (b"PK\x03\x04" + b"\x00" * 100, "xlsx"), ("姓名,手机号,所属小院\n".encode(), "no rows")):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="file.content", contains=says):
            stub.StartImport(reg.StartImportRequest(kind=RESIDENTS, file=reg.ImportFile(file_name="a", content=content)),
                             metadata=admin, timeout=30)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="job_id"):
        stub.GetImportJob(reg.GetImportJobRequest(job_id="../jobs"), metadata=admin, timeout=10)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        stub.GetImportJob(reg.GetImportJobRequest(job_id="imp_01JD3Q8Y6P4M2T5R7W9X0Z1B3C"), metadata=admin, timeout=10)


def _cli(registration, token: str, *args: str, cwd) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.registration.import_cli", "--target",
                           registration.grpc_target, *args], env={**registration.env, "WENMING_TOKEN": token},
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def test_the_command_line_downloads_checks_imports_and_follows(registration, module_district, tree, tmp_path):
    yard = tree.courtyards[1]
    token = tree.admins[yard.unit_id]
    made = _cli(registration, token, "template", "volunteers", "-o", "v.xlsx", cwd=tmp_path)
    assert made.returncode == 0 and "服务单位" in made.stdout, made.stderr
    book = openpyxl.load_workbook(tmp_path / "v.xlsx")
    for name, phone in (("周一", new_phone()), ("吴二", "123"), ("郑三", new_phone())):
        book.active.append([name, new_national_id(), phone, "群众", yard.name])
    book.save(tmp_path / "v.xlsx")

    checked = _cli(registration, token, "check", "volunteers", "v.xlsx", cwd=tmp_path)
    assert checked.returncode == 1 and "共 3 行：可导入 2 行" in checked.stdout and "第3行 手机号" in checked.stdout
    marked = openpyxl.load_workbook(tmp_path / "v.errors.xlsx").active
    assert marked.cell(2, 1).value == 3 and marked.cell(2, 4).fill.fgColor.rgb == BAD_FILL.fgColor.rgb

    run = _cli(registration, token, "run", "volunteers", "v.xlsx", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "3/3 行 (100%)" in run.stdout and "新登记 2" in run.stdout and "有误跳过 1" in run.stdout, run.stdout
    job_id = re.search(r"imp_[0-9A-Z]{26}", run.stdout).group()
    status = _cli(registration, token, "status", job_id, cwd=tmp_path)
    assert status.returncode == 0 and "IMPORT_JOB_STATE_DONE" in status.stdout, status.stderr
    # another station's admin is refused the job, and without a token nothing is called
    refused = _cli(registration, tree.admins[tree.stations[1].unit_id], "status", job_id, cwd=tmp_path)
    assert refused.returncode == 2 and "PERMISSION_DENIED" in refused.stderr
    assert _cli(registration, "", "status", job_id, cwd=tmp_path).returncode == 2


def test_units_are_imported_parents_first_and_once(module_district, tree, registration_db):
    district = module_district
    institute = bearer(tree.admins[tree.institute.unit_id])
    head_phone = new_phone()
    lines = [("测试实践所", "新实践站", "实践站", "王站长", head_phone),
             ("新实践站", "新小院甲", "小院", "", ""),             # its parent is the row above
             (f"{tree.institute.name}/新实践站", "新小院乙", "小院", "", ""),
             (tree.courtyards[0].name, "小院之下", "小院", "", ""),  # nothing under a courtyard
             (tree.stations[0].name, tree.courtyards[0].name, "小院", "", ""),  # there already
             ("新实践站", "新小院甲", "小院", "", ""),             # twice in the file
             ("别处的所", "无根站", "实践站", "", "")]
    content = "上级单位,单位名称,级别,负责人,负责人手机号\n" + "".join(",".join(line) + "\n" for line in lines)
    file = reg.ImportFile(file_name="单位.csv", content=content.encode())
    marked = {(5, "级别"), (6, "单位名称"), (7, "单位名称"), (8, "上级单位")}

    checked = district.stub.CheckImport(reg.CheckImportRequest(kind=UNITS, file=file), metadata=institute, timeout=30)
    assert (checked.valid_rows, checked.marked_cells) == (3, 4)
    assert {(i.row, i.column) for i in checked.issues} == marked
    assert [i.row for i in checked.issues if i.already_registered] == [6]
    assert "与第3行重复" in [i.reason for i in checked.issues if i.row == 7]
    assert registration_db.units.count_documents({"district_id": district.id, "name": "新实践站"}) == 0

    job = _wait_done(district.stub, tree.admins[tree.institute.unit_id], district.stub.StartImport(
        reg.StartImportRequest(kind=UNITS, file=file), metadata=institute, timeout=30).job.job_id, timeout=60)
    assert (job.registered, job.already_registered, job.refused) == (3, 1, 3)
    stored = {u["name"]: u for u in registration_db.units.find({"district_id": district.id,
                                                                "name": {"$in": ["新实践站", "新小院甲", "新小院乙"]}})}
    assert stored["新实践站"]["parent_id"] == tree.institute.unit_id
    assert stored["新小院甲"]["parent_id"] == stored["新小院乙"]["parent_id"] == stored["新实践站"]["_id"]
    assert stored["新实践站"]["head_phone_masked"] == head_phone[:3] + "****" + head_phone[-4:]
    assert head_phone not in str(stored["新实践站"])

    again = district.stub.StartImport(reg.StartImportRequest(kind=UNITS, file=file), metadata=institute,
                                      timeout=30).job
    # every unit of the file exists now, the one written twice included: nothing left to do
    assert (again.state, again.registered, again.already_registered, again.refused) == (DONE, 0, 5, 2)
    # another station's admin may not build under this station
    other = district.stub.CheckImport(reg.CheckImportRequest(kind=UNITS, file=reg.ImportFile(
        file_name="u.csv", content=f"上级单位,单位名称,级别\n{tree.stations[0].name},越权小院,小院\n".encode())),
        metadata=bearer(tree.admins[tree.stations[1].unit_id]), timeout=30)
    assert [(i.row, i.column) for i in other.issues] == [(2, "上级单位")] and "管辖" in other.issues[0].reason


def _sheet_job(stub, token: str, kind: int, content: str) -> tuple[reg.CheckImportResponse, reg.ImportJob]:
    """A CSV checked, then imported to the end."""
    file = reg.ImportFile(file_name="sheet.csv", content=content.encode())
    checked = stub.CheckImport(reg.CheckImportRequest(kind=kind, file=file), metadata=bearer(token), timeout=30)
    job = stub.StartImport(reg.StartImportRequest(kind=kind, file=file), metadata=bearer(token), timeout=30).job
    return checked, _wait_done(stub, token, job.job_id, timeout=60)


def test_teams_then_their_members_each_once(module_district, tree):
    district = module_district
    token = tree.admins[tree.stations[0].unit_id]
    yard, station = tree.courtyards[0], tree.stations[0]
    v1, v2, v3 = (district.volunteer(u.unit_id).volunteer_number for u in (yard, yard, tree.courtyards[2]))
    teams = ("所属单位,队伍名称,专长,队长志愿者编号\n"
             f"{station.name},助老小队,助老服务,{v1}\n"
             f"{yard.name},理发小组,义务理发,{v2}\n"
             f"{station.name},助老小队,,{v2}\n"            # twice in the file
             f"{station.name},无队长,,ZY99999999\n"        # nobody has this number
             f"{tree.courtyards[1].name},远队,,{v1}\n"     # v1 serves elsewhere
             f"{tree.courtyards[2].name},越权队,,{v3}\n")  # another station's courtyard
    checked, job = _sheet_job(district.stub, token, TEAMS, teams)
    assert {(i.row, i.column) for i in checked.issues} == {(4, "队伍名称"), (5, "队长志愿者编号"),
                                                          (6, "队长志愿者编号"), (7, "所属单位")}
    assert (job.registered, job.refused) == (2, 4)

    members = ("所属单位,队伍名称,志愿者编号\n"
               f"{station.name},助老小队,{v2}\n"
               f"{station.name},助老小队,{v1}\n"          # the leader is a member already
               f"{station.name},不存在的队,{v2}\n"
               f"{station.name},助老小队,{v2}\n")         # twice in the file
    checked, job = _sheet_job(district.stub, token, TEAM_MEMBERS, members)
    assert {(i.row, i.column, i.already_registered) for i in checked.issues} == {
        (3, "志愿者编号", True), (4, "队伍名称", False), (5, "志愿者编号", False)}
    assert (job.registered, job.already_registered, job.refused) == (1, 1, 2)
    listed = district.stub.ListTeams(reg.ListTeamsRequest(unit_id=station.unit_id), metadata=bearer(token),
                                     timeout=10).teams
    team = next(t for t in listed if t.name == "助老小队")
    got = district.stub.GetTeam(reg.GetTeamRequest(team_id=team.team_id), metadata=bearer(token), timeout=10).team
    numbers = {district.stub.GetVolunteer(reg.GetVolunteerRequest(volunteer_id=m), metadata=bearer(token),
                                          timeout=10).volunteer.volunteer_number for m in got.member_volunteer_ids}
    assert numbers == {v1, v2}

    _, again = _sheet_job(district.stub, token, TEAM_MEMBERS, members)
    assert (again.registered, again.already_registered, again.refused) == (0, 2, 2)


def test_a_chunk_that_keeps_failing_gives_its_job_up_and_holds_up_no_other(module_district, tree, registration_db):
    """A job whose stored rows no longer open (here: damaged in the database) fails three passes,
    is FAILED, its rows are dropped; a file imported behind it goes through meanwhile."""
    district = module_district
    token = tree.admins[tree.courtyards[3].unit_id]
    claims = district.stub.VerifyToken(reg.VerifyTokenRequest(access_token=token), timeout=5).claims
    broken = new_id("imp")  # older than the next job: it comes first
    registration_db.import_chunks.insert_one({"_id": f"{broken}:00000", "job_id": broken, "district_id": district.id,
                                              "n": 0, "row_numbers": [2], "rows": b"\x01damaged"})
    registration_db.import_jobs.insert_one({
        "_id": broken, "district_id": district.id, "kind": RESIDENTS, "file_name": "坏.csv", "active": broken,
        "unit_id": claims.unit.unit_id, "unit_path": list(claims.unit.path),
        "actor": {"subject": claims.subject, "role": claims.role, "unit_id": claims.unit.unit_id,
                  "unit_level": claims.unit.level, "unit_path": list(claims.unit.path), "unit_name": claims.unit.name,
                  "display_name": ""},
        "state": reg.IMPORT_JOB_STATE_QUEUED, "total_rows": 1, "chunks": 1, "next_chunk": 0, "registered": 0,
        "already_registered": 0, "refused": 0, "issues": [], "created_at": dt.datetime.now(dt.UTC),
        "finished_at": None, "run_started_at": None, "run_rows": 0})
    _, job = _sheet_job(district.stub, token, RESIDENTS,
                        f"姓名,手机号,所属小院\n周七,{new_phone()},{tree.courtyards[3].name}\n")
    assert job.registered == 1

    deadline = time.monotonic() + 60
    while (failed := district.stub.GetImportJob(reg.GetImportJobRequest(job_id=broken), metadata=bearer(token),
                                                timeout=10).job).state != reg.IMPORT_JOB_STATE_FAILED:
        assert time.monotonic() < deadline, failed
        time.sleep(0.3)
    assert (failed.rows_done, failed.eta_seconds) == (0, 0)
    # the rows go right after the job is marked FAILED (a second write)
    while registration_db.import_chunks.count_documents({"job_id": broken}) and time.monotonic() < deadline:
        time.sleep(0.3)
    assert registration_db.import_chunks.count_documents({"job_id": broken}) == 0
