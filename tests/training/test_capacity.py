"""Capacity and waitlist under concurrency: 100 parallel enrollments never overbook, parallel
cancellations promote the waitlist in order, and the enrollment rules refuse clearly."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from tests.support.grpc_helpers import expect_error
from wenming.training.v1 import events_pb2 as ev
from wenming.training.v1 import training_pb2 as pb
from wenming.training.v1 import types_pb2 as ty

CAPACITY = 30


@pytest.fixture
def campus(module_campus):
    """One district for the module: every test makes its own sessions and volunteers."""
    return module_campus


def test_a_hundred_parallel_enrollments_never_overbook_and_cancellations_promote_in_order(
        campus, training_db, training_events):
    station = campus.tree.stations[0]
    organizer = campus.admin(station)
    with ThreadPoolExecutor(8) as pool:
        volunteers = list(pool.map(lambda n: campus.district.volunteer(campus.tree.courtyards[n % 2].unit_id),
                                   range(100)))
    campus.known(*(v.volunteer_id for v in volunteers))
    session = campus.session(campus.course(), capacity=CAPACITY)

    def enroll(volunteer):
        return campus.stub.Enroll(pb.EnrollRequest(session_id=session.session_id,
                                                   volunteer_id=volunteer.volunteer_id),
                                  metadata=organizer, timeout=60).trainee

    with ThreadPoolExecutor(100) as pool:
        trainees = list(pool.map(enroll, volunteers))
    seated = [t for t in trainees if t.state == ty.TRAINEE_STATE_ENROLLED]
    waiting = [t for t in trainees if t.state == ty.TRAINEE_STATE_WAITLISTED]
    assert (len(seated), len(waiting)) == (CAPACITY, 100 - CAPACITY)
    assert sorted(t.waitlist_position for t in waiting) == list(range(1, 71))

    stored = training_db.sessions.find_one({"_id": session.session_id})
    assert stored["seats_left"] == 0 and stored["waitlist_count"] == 70 and len(stored["trainees"]) == 100
    assert sum(1 for t in stored["trainees"].values() if t["state"] == ty.TRAINEE_STATE_ENROLLED) == CAPACITY
    waitlist = stored["waitlist"]
    assert len(set(waitlist)) == 70 and set(waitlist) == {t.volunteer_id for t in waiting}

    # 10 seated and 5 from the back of the waitlist cancel at once
    leaving = [t.volunteer_id for t in seated[:10]] + waitlist[60:65]

    def cancel(volunteer_id):
        return campus.stub.CancelEnrollment(pb.CancelEnrollmentRequest(
            session_id=session.session_id, volunteer_id=volunteer_id, reason="临时有事"),
            metadata=organizer, timeout=60).trainee

    with ThreadPoolExecutor(15) as pool:
        assert all(t.state == ty.TRAINEE_STATE_CANCELLED for t in pool.map(cancel, leaving))
    after = training_db.sessions.find_one({"_id": session.session_id})
    promoted = waitlist[:10]
    assert after["seats_left"] == 0 and after["waitlist"] == waitlist[10:60] + waitlist[65:]
    assert after["waitlist_count"] == 55
    states = {vid: t["state"] for vid, t in after["trainees"].items()}
    assert all(states[vid] == ty.TRAINEE_STATE_ENROLLED for vid in promoted)
    assert sum(1 for s in states.values() if s == ty.TRAINEE_STATE_ENROLLED) == CAPACITY

    view = campus.stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=organizer,
                                  timeout=5).session
    assert (view.enrolled_count, view.waitlist_count) == (CAPACITY, 55)
    events = [p for _, p, _ in training_events.events(campus.district.id, at_least=100 + 15 + 10, timeout=30,
                                                      settle=1.0)
              if getattr(p, "session_id", "") == session.session_id]
    created = [p for p in events if isinstance(p, ev.EnrollmentCreated)]
    assert len(created) == 100 and sum(1 for p in created if not p.waitlisted) == CAPACITY
    assert sorted(p.volunteer_id for p in events if isinstance(p, ev.EnrollmentPromoted)) == sorted(promoted)
    assert len([p for p in events if isinstance(p, ev.EnrollmentCancelled)]) == 15


def test_enrollment_rules(campus, clock):
    course = campus.course()
    session = campus.session(course, capacity=1)
    mine_token, other_token = campus.volunteer(0)[1], campus.volunteer(1)[1]
    outsider_token = campus.volunteer(2)[1]  # serves under the other station
    assert campus.enroll(session, mine_token).trainee.state == ty.TRAINEE_STATE_ENROLLED
    with expect_error(grpc.StatusCode.ALREADY_EXISTS, contains="ENROLLED"):
        campus.enroll(session, mine_token)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="serving under"):
        campus.enroll(session, outsider_token)
    assert campus.enroll(session, other_token).trainee.waitlist_position == 1

    # the seat holder leaves: the waitlisted volunteer gets the seat; coming back means the waitlist
    left = campus.stub.CancelEnrollment(pb.CancelEnrollmentRequest(session_id=session.session_id),
                                        metadata=mine_token, timeout=5)
    assert left.trainee.state == ty.TRAINEE_STATE_CANCELLED and left.session.enrolled_count == 1
    me = campus.stub.GetSession(pb.GetSessionRequest(session_id=session.session_id), metadata=other_token,
                                timeout=5).me
    assert me.state == ty.TRAINEE_STATE_ENROLLED and me.waitlist_position == 0
    back = campus.enroll(session, mine_token).trainee
    assert back.state == ty.TRAINEE_STATE_WAITLISTED and back.waitlist_position == 1

    # enrollment closes when the session starts
    clock.advance(21 * 60)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="enrollment closed"):
        campus.stub.CancelEnrollment(pb.CancelEnrollmentRequest(session_id=session.session_id),
                                     metadata=other_token, timeout=5)


def test_cancelling_a_session_cancels_every_place_and_needs_no_attendance(campus, training_events):
    session = campus.session(campus.course(), capacity=1,
                             starts_in=dt.timedelta(hours=3))  # attendance not open yet
    (a, a_token), (b, b_token) = campus.volunteer(0), campus.volunteer(1)
    campus.enroll(session, a_token)
    campus.enroll(session, b_token)
    organizer = campus.admin(campus.tree.stations[0])
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="opens 30 minutes"):
        campus.stub.RecordAttendance(pb.RecordAttendanceRequest(session_id=session.session_id,
                                                                volunteer_ids=[a.volunteer_id]),
                                     metadata=organizer, timeout=5)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="reason"):
        campus.stub.CancelSession(pb.CancelSessionRequest(session_id=session.session_id), metadata=organizer,
                                  timeout=5)
    cancelled = campus.stub.CancelSession(pb.CancelSessionRequest(session_id=session.session_id, reason="天气原因"),
                                          metadata=organizer, timeout=5).session
    assert cancelled.status == pb.SESSION_STATUS_CANCELLED and cancelled.cancel_reason == "天气原因"
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="CANCELLED"):
        campus.enroll(session, a_token)
    events = training_events.events(campus.district.id, at_least=3, timeout=20, settle=1.0)
    gone = {p.volunteer_id for _, p, _ in events if isinstance(p, ev.EnrollmentCancelled)
            and p.session_id == session.session_id}
    assert gone == {a.volunteer_id, b.volunteer_id} and all(
        p.by_organizer for _, p, _ in events if isinstance(p, ev.EnrollmentCancelled))
    assert [p.session.session_id for _, p, _ in events if isinstance(p, ev.SessionCancelled)] == [session.session_id]
