"""Certifications: past their expiry they no longer qualify (controllable clock) and expire once
on the topic; the granting unit revokes them with a reason."""

from __future__ import annotations

import grpc
import pytest

from tests.support.grpc_helpers import expect_error
from tests.training.support import first_aid_content
from tests.support.waiting import wait_until
from wenming.training.v1 import events_pb2 as ev
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import types_pb2 as ty


def _certified(campus, code: str, valid_months: int, station_index: int = 0):
    """A volunteer who attended a session of a quiz-less course granting `code`, and their cert."""
    content = first_aid_content(title="法律服务基础", category=ty.COURSE_CATEGORY_PROFESSIONAL, quiz=pb.Quiz(),
                                certification=ty.CertificationSpec(code=code, name="法律服务基础证书",
                                                                   valid_months=valid_months))
    station = campus.tree.stations[station_index]
    session = campus.session(campus.course(content), unit=station)
    volunteer, token = campus.volunteer(2 * station_index)
    campus.enroll(session, token)
    campus.stub.RecordAttendance(pb.RecordAttendanceRequest(session_id=session.session_id,
                                                            volunteer_ids=[volunteer.volunteer_id]),
                                 metadata=campus.admin(station), timeout=5)

    def qualifying():
        return campus.stub.ListCertifications(pb.ListCertificationsRequest(code=code, qualifying_only=True),
                                              metadata=token, timeout=5).certifications

    found = wait_until(qualifying)
    assert len(found) == 1
    return volunteer, token, found[0], qualifying


@pytest.fixture
def campus(module_campus):
    """One district for the module."""
    return module_campus

def test_a_certification_past_its_expiry_no_longer_qualifies_and_expires_once(campus, training_events, clock):
    volunteer, token, record, qualifying = _certified(campus, "legal_basic", valid_months=1)
    cert_id = record.certification.certification_id
    assert record.status == pb.CERTIFICATION_STATUS_ACTIVE and record.certification.expires_at.seconds
    center_view = campus.stub.ListCertifications(pb.ListCertificationsRequest(
        unit_id=campus.district.center_id, code="legal_basic", qualifying_only=True), metadata=campus.center,
        timeout=5).certifications
    assert [c.certification.certification_id for c in center_view] == [cert_id]

    clock.advance(32 * 24 * 3600)
    # no longer qualifies at once, whether or not the expiry job has run yet
    assert qualifying() == []
    got = campus.stub.GetCertification(pb.GetCertificationRequest(certification_id=cert_id), metadata=token,
                                       timeout=5).certification
    assert got.status == pb.CERTIFICATION_STATUS_EXPIRED
    # the job publishes CertificationExpired exactly once
    expired = wait_until(lambda: [p for _, p, _ in training_events.events(campus.district.id, timeout=1)
                                if isinstance(p, ev.CertificationExpired)])
    assert [p.certification.certification_id for p in expired] == [cert_id]
    events = training_events.events(campus.district.id, timeout=1, settle=3.0)  # several job passes
    assert len([p for _, p, _ in events if isinstance(p, ev.CertificationExpired)]) == 1
    assert expired[0].certification.code == "legal_basic"
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="EXPIRED"):
        campus.stub.RevokeCertification(pb.RevokeCertificationRequest(certification_id=cert_id, reason="到期"),
                                        metadata=campus.admin(campus.tree.stations[0]), timeout=5)


def test_the_granting_unit_revokes_a_certification_with_a_reason(campus, training_events):
    volunteer, token, record, qualifying = _certified(campus, "psych_basic", valid_months=0)
    cert_id = record.certification.certification_id
    assert not record.certification.HasField("expires_at")  # does not expire
    request = pb.RevokeCertificationRequest(certification_id=cert_id, reason="服务中存在违规行为")
    for outsider in (campus.admin(campus.tree.stations[1]), token):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            campus.stub.RevokeCertification(request, metadata=outsider, timeout=5)
    granting = campus.admin(campus.tree.stations[0])
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="reason"):
        campus.stub.RevokeCertification(pb.RevokeCertificationRequest(certification_id=cert_id), metadata=granting,
                                        timeout=5)
    revoked = campus.stub.RevokeCertification(request, metadata=granting, timeout=5).certification
    assert revoked.status == pb.CERTIFICATION_STATUS_REVOKED and revoked.revoke_reason == "服务中存在违规行为"
    assert qualifying() == []
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="REVOKED"):
        campus.stub.RevokeCertification(request, metadata=granting, timeout=5)
    revocations = wait_until(lambda: [p for _, p, _ in training_events.events(campus.district.id, timeout=1)
                                    if isinstance(p, ev.CertificationRevoked)])
    assert [(p.certification.certification_id, p.reason) for p in revocations] == [(cert_id, "服务中存在违规行为")]
