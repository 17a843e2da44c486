"""The roster export (docs/reporting.md) on the real stack: a station admin's workbook holds the
station's volunteers exactly as SearchVolunteers shows them (masked), another station's roster is
refused, bad input names its field, and the finished file is in the audit record with its rows."""

from __future__ import annotations

import subprocess
import sys

import grpc
import pytest

from tests.support.exports import download, finished, sheet_rows
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import new_phone
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import registration_pb2 as reg

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@pytest.fixture
def roster(district):
    tree = district.small_tree()
    mine = [district.volunteer(tree.courtyards[i % 2].unit_id, name=f"花名册{i}") for i in range(3)]
    district.volunteer(tree.courtyards[2].unit_id, name="别站志愿者")  # station 1
    return tree, mine


def test_roster_workbook_matches_the_volunteer_list_and_is_audited(district, roster, registration_db):
    tree, mine = roster
    station = tree.stations[0]
    admin = bearer(tree.admins[station.unit_id])
    started = district.stub.StartRosterExport(reg.StartRosterExportRequest(unit_id=station.unit_id),
                                              metadata=admin, timeout=10).job
    assert started.kind == c.EXPORT_KIND_ROSTER and started.unit.unit_id == station.unit_id
    job = finished(district.stub, reg.GetExportJobRequest, started.job_id, admin)
    assert job.state == c.EXPORT_JOB_STATE_DONE
    assert (job.total_rows, job.rows_done) == (3, 3) and job.size_bytes > 0 and job.expires_at.seconds

    name, content_type, content = download(district.stub, reg.DownloadExportRequest, job.job_id, admin)
    assert name == job.file_name and name.startswith(f"志愿者花名册-{station.name}-") and content_type == XLSX
    headers, rows = sheet_rows(content)
    assert headers[:6] == ["志愿者编号", "姓名", "性别", "出生日期", "身份证号", "手机号"]
    listed = district.stub.SearchVolunteers(reg.SearchVolunteersRequest(unit_id=station.unit_id),
                                            metadata=admin, timeout=5).volunteers
    assert sorted((r[0], r[1], r[4], r[5]) for r in rows) == sorted(
        (v.volunteer_number, v.name, v.national_id_masked, v.phone_masked) for v in listed)
    assert {r[0] for r in rows} == {v.volunteer_number for v in mine}
    assert all("*" in r[4] and "*" in r[5] for r in rows)  # masked as the API masks them

    record = wait_until(lambda: registration_db.audit_records.find_one({"object_ids": job.job_id, "rows": 3}), 30)
    assert record["method"].endswith("/StartRosterExport") and record["actor_unit_id"] == station.unit_id


def test_station_admin_cannot_export_or_read_another_stations_roster(district, roster):
    tree, _ = roster
    station0, station1 = (bearer(tree.admins[s.unit_id]) for s in tree.stations)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.StartRosterExport(reg.StartRosterExportRequest(unit_id=tree.stations[1].unit_id),
                                        metadata=station0, timeout=10)
    theirs = district.stub.StartRosterExport(reg.StartRosterExportRequest(), metadata=station1, timeout=10).job
    assert theirs.unit.unit_id == tree.stations[1].unit_id  # no unit named: the caller's own
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.GetExportJob(reg.GetExportJobRequest(job_id=theirs.job_id), metadata=station0, timeout=10)
    finished(district.stub, reg.GetExportJobRequest, theirs.job_id, station1)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        download(district.stub, reg.DownloadExportRequest, theirs.job_id, station0)
    phone = new_phone()
    district.volunteer(tree.courtyards[0].unit_id, phone=phone)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        district.stub.StartRosterExport(reg.StartRosterExportRequest(unit_id=tree.courtyards[0].unit_id),
                                        metadata=bearer(district.volunteer_token(phone)), timeout=10)


def test_bad_input_names_the_field(district, roster):
    tree, _ = roster
    admin = bearer(tree.admins[tree.stations[0].unit_id])
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="unit_id"):
        district.stub.StartRosterExport(reg.StartRosterExportRequest(unit_id="not an id"), metadata=admin, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="status"):
        district.stub.StartRosterExport(reg.StartRosterExportRequest(status=99), metadata=admin, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="job_id"):
        district.stub.GetExportJob(reg.GetExportJobRequest(job_id=""), metadata=admin, timeout=10)


def test_the_command_line_starts_follows_and_saves_the_roster(district, roster, registration, tmp_path):
    tree, mine = roster
    station = tree.stations[0]
    done = subprocess.run([sys.executable, "-m", "services.common.export_cli", "roster", "--status", "active"],
                          env={**registration.env, "WENMING_TOKEN": tree.admins[station.unit_id],
                               "REGISTRATION_GRPC_TARGET": registration.grpc_target},
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "导出任务 exp_" in done.stdout and "3/3 行 (100%)" in done.stdout
    [saved] = tmp_path.glob(f"志愿者花名册-{station.name}-*.xlsx")
    _, rows = sheet_rows(saved.read_bytes())
    assert {r[0] for r in rows} == {v.volunteer_number for v in mine}
    refused = subprocess.run([sys.executable, "-m", "services.common.export_cli", "roster", "--unit",
                              tree.stations[1].unit_id], env={**registration.env, "WENMING_TOKEN":
                              tree.admins[station.unit_id], "REGISTRATION_GRPC_TARGET": registration.grpc_target},
                             cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "PERMISSION_DENIED" in refused.stderr
