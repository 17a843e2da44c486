"""Certificates in bulk and the scorecards as PDF (docs/points.md, docs/reporting.md) on the real
stack: the zip holds one PDF per volunteer of the subtree whose hours the unit recorded in the
month, each saying the volunteer's number, the hours their account holds and the number of a
certificate that GetCertificate and VerifyCertificate know, with a QR code of its verification page;
a second export issues nothing new; the file is in the audit record; refusals and bad input by
field. The scorecard PDF holds each unit's grade as GetUnitGrade gives it."""

from __future__ import annotations

import datetime as dt
import re
import uuid

import grpc
import pytest

from services.common.clock import CHINA
from services.common.pdf import qr_modules
from services.points.certificate_pdf import verification_url
from tests.points.support import run_points, volunteer_principal, token_for
from tests.support.exports import download, finished
from tests.support.grpc_helpers import bearer, expect_error, or_not_found
from tests.support.pdfs import flat, pdf_text, qr_modules_in, zip_files
from tests.support.stack import CATCH_UP_SECONDS
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import points_pb2 as pb

VERIFIED, MANUAL = c.HOURS_SOURCE_VERIFIED, c.HOURS_SOURCE_MANUAL
APP_URL = "https://wenming.test.example/app"
NUMBER = re.compile(r"ZM-\d{4}-\d{6}-[2-9A-HJ-NP-Z]{4}")


@pytest.fixture(scope="module")
def points(stack, registration, feed):
    """This module's points process, with the app's public address the QR codes point at."""
    yield from run_points(stack, POINTS_JOB_INTERVAL_SECONDS="1", PUBLIC_APP_URL=APP_URL)


@pytest.fixture(scope="module")
def tree(module_district, points):
    return module_district.small_tree()


def _this_month() -> pb.Period:
    now = dt.datetime.now(CHINA)
    return pb.Period(year=now.year, month=now.month)


def _export_certificates(stub, admin, unit) -> tuple[c.ExportJob, dict[str, bytes]]:
    started = stub.StartCertificatesExport(pb.StartCertificatesExportRequest(unit_id=unit.unit_id,
                                                                             period=_this_month()),
                                           metadata=admin, timeout=10).job
    assert started.kind == c.EXPORT_KIND_CERTIFICATES and started.file_name.endswith(".zip")
    job = finished(stub, pb.GetExportJobRequest, started.job_id, admin, timeout=120)
    assert job.state == c.EXPORT_JOB_STATE_DONE, c.ExportJobState.Name(job.state)
    name, content_type, content = download(stub, pb.DownloadExportRequest, job.job_id, admin)
    assert name.startswith(f"志愿服务记录证明-{unit.name}-") and content_type == "application/zip"
    return job, zip_files(content)


def test_certificates_in_bulk_one_pdf_per_volunteer_with_the_apis_figures(module_district, tree, stub, feed,
                                                                            registration_db):
    """Three volunteers of station 0's courtyards served on its orders this month; one of station 1's
    served on them too (outside the subtree), and one of station 0's was recorded by a courtyard
    (not the issuer): the zip holds the three."""
    d, station = module_district.id, tree.stations[0]
    admin = bearer(tree.admins[station.unit_id])
    people = [module_district.volunteer(tree.courtyards[i].unit_id, name=f"证明{i}") for i in (0, 1, 1)]
    outsider = module_district.volunteer(tree.courtyards[2].unit_id, name="站外志愿者")
    other_recorder = module_district.volunteer(tree.courtyards[0].unit_id, name="小院记录")
    events = []
    for i, person in enumerate([*people, outsider]):
        order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=station)
        events.append(feed.hours_confirmed(d, order, [(person.volunteer_id, 60 * (i + 1), VERIFIED),
                                                      (person.volunteer_id, 30, MANUAL)], station))
    order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[0], handling=tree.courtyards[0])
    events.append(feed.hours_confirmed(d, order, [(other_recorder.volunteer_id, 90, VERIFIED)], tree.courtyards[0]))
    feed.send(*events)

    def account(person) -> pb.Account | None:
        reply = or_not_found(lambda: stub.GetAccount(pb.GetAccountRequest(account_id=person.volunteer_id),
                                                     metadata=bearer(tree.admins[tree.center.unit_id]), timeout=5))
        return reply.account if reply and reply.account.verified_minutes else None

    assert wait_until(lambda: all(account(p) for p in (*people, outsider, other_recorder)), CATCH_UP_SECONDS)
    accounts = {p.volunteer_number: account(p) for p in people}

    job, files = _export_certificates(stub, admin, station)
    assert (job.total_rows, job.rows_done) == (3, 3)
    assert sorted(files) == sorted(f"{p.volunteer_number}-{p.name}.pdf" for p in people)
    numbers = {}
    for person in people:
        content = files[f"{person.volunteer_number}-{person.name}.pdf"]
        text = flat(pdf_text(content))
        found = NUMBER.findall(text)
        assert found, "no certificate number in the PDF"
        number = numbers[person.volunteer_number] = found[0]
        a = accounts[person.volunteer_number]
        assert f"志愿者{person.name}（志愿者编号{person.volunteer_number}）" in text
        assert f"累计服务时长{(a.verified_minutes + a.manual_minutes) / 60:.1f}小时" in text
        assert f"实时记录{a.verified_minutes / 60:.1f}小时" in text and f"补录{a.manual_minutes / 60:.1f}小时" in text
        assert qr_modules_in(content) == qr_modules(verification_url(APP_URL, number))
        # the number is a certificate of the API, with the same figures, verifiable by anyone
        cert = stub.GetCertificate(pb.GetCertificateRequest(number=number), metadata=admin, timeout=10).certificate
        assert (cert.facts.volunteer_number, cert.facts.verified_minutes, cert.facts.manual_minutes) == (
            person.volunteer_number, a.verified_minutes, a.manual_minutes)
        assert cert.facts.issuer.unit_id == station.unit_id
        assert stub.VerifyCertificate(pb.VerifyCertificateRequest(number=number), timeout=10).facts.number == number

    record = wait_until(lambda: registration_db.audit_records.find_one({"object_ids": job.job_id, "rows": 3}), 30)
    assert record["service"] == "points" and record["method"].endswith("/StartCertificatesExport")

    # the same export again answers the certificates already issued: no second one for anybody
    _, again = _export_certificates(stub, admin, station)
    assert {name.split("-")[0]: NUMBER.findall(flat(pdf_text(content)))[0] for name, content in again.items()} == numbers
    for person in people:
        listed = stub.ListCertificates(pb.ListCertificatesRequest(volunteer_id=person.volunteer_id), metadata=admin,
                                       timeout=10).certificates
        assert [cert.number for cert in listed] == [numbers[person.volunteer_number]]


def test_certificates_in_bulk_are_refused_outside_the_subtree_and_bad_input_named(module_district, tree, stub, stack):
    station, theirs = tree.stations[0], tree.stations[1]
    admin = bearer(tree.admins[station.unit_id])
    month = _this_month()
    for other in (bearer(tree.admins[theirs.unit_id]), bearer(tree.admins[tree.courtyards[0].unit_id]),
                  token_for(stack, volunteer_principal(module_district.id, f"vol_{uuid.uuid4().hex[:10]}",
                                                       tree.courtyards[0]))):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            stub.StartCertificatesExport(pb.StartCertificatesExportRequest(unit_id=station.unit_id, period=month),
                                         metadata=other, timeout=10)
    # another station's admin may neither follow nor fetch this station's export
    job = stub.StartCertificatesExport(pb.StartCertificatesExportRequest(period=month), metadata=admin,
                                       timeout=10).job
    for call in (lambda m: stub.GetExportJob(pb.GetExportJobRequest(job_id=job.job_id), metadata=m, timeout=10),
                 lambda m: download(stub, pb.DownloadExportRequest, job.job_id, m)):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            call(bearer(tree.admins[theirs.unit_id]))
    for request, field in ((pb.StartCertificatesExportRequest(unit_id="not an id"), "unit_id"),
                           (pb.StartCertificatesExportRequest(period=pb.Period(month=13)), "period.month"),
                           (pb.StartCertificatesExportRequest(period=pb.Period(year=1999)), "period.year"),
                           (pb.StartCertificatesExportRequest(period=pb.Period(month=1, quarter=1)), "period.quarter")):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            stub.StartCertificatesExport(request, metadata=admin, timeout=10)


def test_scorecards_as_pdf_hold_each_units_grade(tree, stub):
    station, yards = tree.stations[1], tree.courtyards[2:]
    admin = bearer(tree.admins[station.unit_id])
    period = _this_month()
    grades = {unit.unit_id: stub.GetUnitGrade(pb.GetUnitGradeRequest(unit_id=unit.unit_id, period=period),
                                              metadata=admin, timeout=10).grade for unit in (station, *yards)}
    started = stub.StartScorecardExport(pb.StartScorecardExportRequest(unit_id=station.unit_id, period=period,
                                                                       format=c.EXPORT_FORMAT_PDF),
                                        metadata=admin, timeout=10).job
    job = finished(stub, pb.GetExportJobRequest, started.job_id, admin)
    assert job.state == c.EXPORT_JOB_STATE_DONE and (job.total_rows, job.rows_done) == (3, 3)
    name, content_type, content = download(stub, pb.DownloadExportRequest, job.job_id, admin)
    assert name.startswith(f"三级创建评分表-{station.name}-") and name.endswith(".pdf")
    assert content_type == "application/pdf"
    text = flat(pdf_text(content))
    assert flat(f"三级创建评分表 {station.name} {period.year}年{period.month}月") in text
    for grade in grades.values():
        assert flat(f"{grade.unit.name}") in text
        for line in grade.lines:
            assert flat(line.explanation) in text, line.explanation
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="format"):
        stub.StartScorecardExport(pb.StartScorecardExportRequest(format=7), metadata=admin, timeout=10)
