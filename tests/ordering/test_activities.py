"""Activities (小院讲堂 etc.): plan, publish (公示), sign-up within capacity, QR attendance, one
rating per participant, completion with the volunteers' hours; cancellation."""

from __future__ import annotations

import datetime as dt

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.grpc_helpers import expect_error
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2


A = types_pb2.ActivityStatus
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION


def _window(starts_in: dt.timedelta, hours: float = 1.5) -> tuple[Timestamp, Timestamp]:
    starts = dt.datetime.now(dt.UTC) + starts_in
    a, b = Timestamp(), Timestamp()
    a.FromDatetime(starts)
    b.FromDatetime(starts + dt.timedelta(hours=hours))
    return a, b


def test_an_activity_from_plan_to_completion(world, shifted):
    yard = world.courtyards[0]
    admin = world.as_admin(yard)
    starts_at, ends_at = _window(dt.timedelta(minutes=20))
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        title="小院讲堂：党的二十届三中全会精神宣讲", description="邀请理论宣讲队志愿者，结合村里变化讲政策",
        category=c.SERVICE_CATEGORY_LECTURE_THEORY, location="幸福小院议事厅", starts_at=starts_at, ends_at=ends_at,
        volunteer_capacity=1, resident_capacity=2), metadata=admin, timeout=10).activity
    aid = activity.activity_id
    assert activity.status == A.ACTIVITY_STATUS_PLANNED and activity.unit.unit_id == yard.unit_id

    speaker, second_speaker = world.volunteers(yard, 2, skills=[c.SKILL_THEORY_LECTURE], name="宣讲员")
    (r1, t1), (r2, t2), (_, t3) = (world.resident(yard, name=n) for n in ("赵大娘", "钱大爷", "孙阿姨"))

    # planned is the organizers' business: residents neither see nor join it yet
    assert aid not in [a.activity_id for a in world.stub.ListActivities(pb.ListActivitiesRequest(), metadata=t1,
                                                                        timeout=10).activities]
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        world.stub.GetActivity(pb.GetActivityRequest(activity_id=aid), metadata=t1, timeout=10)
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    listed = world.stub.ListActivities(pb.ListActivitiesRequest(), metadata=t1, timeout=10).activities
    assert aid in [a.activity_id for a in listed]
    # people of the station's other courtyards see it only if the station organizes it
    _, elsewhere = world.resident(world.courtyards[1])
    assert aid not in [a.activity_id for a in world.stub.ListActivities(pb.ListActivitiesRequest(),
                                                                        metadata=elsewhere, timeout=10).activities]

    # sign-up: capacity per role, once per person
    world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=speaker.token, timeout=10)
    with expect_error(PRECONDITION, contains="full"):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=second_speaker.token,
                                  timeout=10)
    for token in (t1, t2):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=token, timeout=10)
    with expect_error(PRECONDITION, contains="already signed up"):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=t1, timeout=10)
    with expect_error(PRECONDITION, contains="2 resident places"):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=t3, timeout=10)
    mine = world.stub.GetActivity(pb.GetActivityRequest(activity_id=aid), metadata=t1, timeout=10).activity
    assert [p.participant_id for p in mine.participants] == [r1]  # a participant sees only themself
    assert mine.residents_signed_up == 2 and mine.volunteers_signed_up == 1

    # attendance by the unit's rotating code; rating only after attending, once
    code = world.stub.IssueActivityCheckinCode(pb.IssueActivityCheckinCodeRequest(activity_id=aid), metadata=admin,
                                               timeout=10).checkin.code
    with expect_error(PRECONDITION, contains="checked in"):
        world.stub.RateActivity(pb.RateActivityRequest(activity_id=aid, rating=5), metadata=t1, timeout=10)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="code"):
        world.stub.CheckInActivity(pb.CheckInActivityRequest(activity_id=aid, code="NOTTHECODE"), metadata=t1,
                                   timeout=10)
    for token in (speaker.token, t1):
        world.stub.CheckInActivity(pb.CheckInActivityRequest(activity_id=aid, code=code), metadata=token, timeout=10)
    with expect_error(PRECONDITION, contains="already checked in"):
        world.stub.CheckInActivity(pb.CheckInActivityRequest(activity_id=aid, code=code), metadata=t1, timeout=10)
    world.stub.RateActivity(pb.RateActivityRequest(activity_id=aid, rating=5, comment="讲得通俗易懂"), metadata=t1,
                            timeout=10)
    with expect_error(PRECONDITION, contains="one rating per participant"):
        world.stub.RateActivity(pb.RateActivityRequest(activity_id=aid, rating=4), metadata=t1, timeout=10)

    # completion after the end: the attending volunteer's planned time counts, verified
    with expect_error(PRECONDITION, contains="ended"):
        world.stub.CompleteActivity(pb.CompleteActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    shifted.advance(2 * 3600)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="manual[0].volunteer_id"):
        world.stub.CompleteActivity(pb.CompleteActivityRequest(activity_id=aid, manual=[
            pb.ManualHours(volunteer_id=second_speaker.id, minutes=30)]), metadata=admin, timeout=10)
    done = world.stub.CompleteActivity(pb.CompleteActivityRequest(activity_id=aid), metadata=admin,
                                       timeout=10).activity
    assert done.status == A.ACTIVITY_STATUS_COMPLETED
    assert [(h.volunteer_id, h.minutes, h.source) for h in done.hours] == [(speaker.id, 90, c.HOURS_SOURCE_VERIFIED)]
    organizer_view = {p.participant_id: p for p in done.participants}
    assert organizer_view[r1].attended_at.seconds and organizer_view[r1].rating == 5
    assert not organizer_view[r2].attended_at.seconds
    with expect_error(PRECONDITION):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=t3, timeout=10)


def test_cancelled_activities_take_no_more_sign_ups(world):
    station = world.stations[1]
    admin = world.as_admin(station)
    starts_at, ends_at = _window(dt.timedelta(days=3))
    aid = world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=station.unit_id, title="健康义诊进村", category=c.SERVICE_CATEGORY_LECTURE_HEALTH,
        starts_at=starts_at, ends_at=ends_at, volunteer_capacity=5, resident_capacity=50), metadata=admin,
        timeout=10).activity.activity_id
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    # residents of any courtyard under the station may join the station's activity
    _, resident = world.resident(world.courtyards[3])
    world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=resident, timeout=10)
    cancelled = world.stub.CancelActivity(pb.CancelActivityRequest(activity_id=aid, reason="医生临时被抽调"),
                                          metadata=admin, timeout=10).activity
    assert cancelled.status == A.ACTIVITY_STATUS_CANCELLED and cancelled.cancel_reason == "医生临时被抽调"
    _, latecomer = world.resident(world.courtyards[2])
    with expect_error(PRECONDITION, contains="CANCELLED"):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=latecomer, timeout=10)
    with expect_error(PRECONDITION):
        world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    # the organizer's list of the subtree shows it with its status; the public list too (it was announced)
    subtree = world.stub.ListActivities(pb.ListActivitiesRequest(unit_id=station.unit_id, subtree=True,
                                                                 statuses=[A.ACTIVITY_STATUS_CANCELLED]),
                                        metadata=world.as_admin(world.institute), timeout=10).activities
    assert [a.activity_id for a in subtree] == [aid]


def test_activity_lists_page_soonest_first(world):
    yard = world.courtyards[2]
    admin = world.as_admin(yard)
    ids = []
    for days in (5, 3, 4):
        starts_at, ends_at = _window(dt.timedelta(days=days))
        activity = world.stub.PlanActivity(pb.PlanActivityRequest(
            title=f"周{days}文明实践活动", category=c.SERVICE_CATEGORY_CARE_FOR_SOCIETY, starts_at=starts_at,
            ends_at=ends_at, resident_capacity=10), metadata=admin, timeout=10).activity
        world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=activity.activity_id), metadata=admin,
                                   timeout=10)
        ids.append((days, activity.activity_id))
    seen, token = [], ""
    while True:
        reply = world.stub.ListActivities(pb.ListActivitiesRequest(
            unit_id=yard.unit_id, subtree=True, page=c.PageRequest(page_size=2, page_token=token)), metadata=admin,
            timeout=10)
        seen += [a.activity_id for a in reply.activities]
        token = reply.page.next_page_token
        if not token:
            break
    assert seen == [aid for _, aid in sorted(ids)]


def _plan_published(world, unit, starts_in: dt.timedelta, **capacity) -> str:
    admin = world.as_admin(unit)
    starts_at, ends_at = _window(starts_in)
    aid = world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=unit.unit_id, title="小院讲堂：移风易俗", category=c.SERVICE_CATEGORY_LECTURE_POLICY,
        starts_at=starts_at, ends_at=ends_at, **capacity), metadata=admin, timeout=10).activity.activity_id
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    return aid


def test_the_organizer_records_attendance_by_pass_or_at_the_desk(world, ordering_events):
    yard = world.courtyards[1]
    admin = world.as_admin(yard)
    aid = _plan_published(world, yard, dt.timedelta(minutes=20), volunteer_capacity=1, resident_capacity=2)
    speaker = world.volunteer(yard, skills=[c.SKILL_POLICY_EXPLAIN], name="宣讲员")
    r1, t1 = world.resident(yard, name="吴奶奶")
    r2, _ = world.resident(yard, name="郑爷爷")   # no phone at hand: the desk signs him up
    r3, t3 = world.resident(yard, name="冯阿姨")
    for token in (speaker.token, t1):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=token, timeout=10)

    # my own pass: short, stable, mine only
    mine = world.stub.GetActivityPass(pb.GetActivityPassRequest(activity_id=aid), metadata=t1, timeout=10)
    assert len(mine.pass_code) == 8 and not set(mine.pass_code) & set("01OIL") and not mine.attended
    assert mine.qr_payload == f"wenming://activity-pass?activity={aid}&code={mine.pass_code}"
    assert world.stub.GetActivityPass(pb.GetActivityPassRequest(activity_id=aid), metadata=t1,
                                      timeout=10).pass_code == mine.pass_code
    speakers = world.stub.GetActivityPass(pb.GetActivityPassRequest(activity_id=aid), metadata=speaker.token,
                                          timeout=10).pass_code
    assert speakers != mine.pass_code
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="not signed up"):
        world.stub.GetActivityPass(pb.GetActivityPassRequest(activity_id=aid), metadata=t3, timeout=10)

    def record(**fields) -> pb.RecordActivityAttendanceResponse:
        return world.stub.RecordActivityAttendance(pb.RecordActivityAttendanceRequest(activity_id=aid, **fields),
                                                   metadata=admin, timeout=10)

    # the organizer scans (or types) the pass; twice changes nothing
    first = record(pass_code=f" {mine.pass_code.lower()} ")
    assert first.participant.participant_id == r1 and first.participant.attended_at.seconds
    again = record(pass_code=mine.pass_code)
    assert again.participant.attended_at == first.participant.attended_at
    assert again.activity.version == first.activity.version
    assert world.stub.GetActivityPass(pb.GetActivityPassRequest(activity_id=aid), metadata=t1, timeout=10).attended
    assert record(pass_code=speakers).participant.role == types_pb2.PARTICIPANT_ROLE_VOLUNTEER

    # 问需台: a resident without a phone, by id, signed up on the spot while there is room
    world.wait_resident_known(r2)
    desk = record(resident_id=r2)
    assert desk.participant.role == types_pb2.PARTICIPANT_ROLE_RESIDENT and desk.participant.attended_at.seconds
    assert desk.activity.residents_signed_up == 2
    assert record(resident_id=r2).activity.version == desk.activity.version
    world.wait_resident_known(r3)
    with expect_error(PRECONDITION, contains="2 resident places"):
        record(resident_id=r3)

    # exactly one of pass_code and resident_id, a pass of somebody signed up
    for fields in ({}, {"pass_code": mine.pass_code, "resident_id": r3}, {"pass_code": "ABC"}):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="pass_code"):
            record(**fields)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="pass_code", contains="not the pass"):
        record(pass_code="ZZZZZZZZ")
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="resident_id"):
        record(resident_id="bad id!")
    with expect_error(grpc.StatusCode.NOT_FOUND):
        record(resident_id="res_nobody")
    # a resident of another station is not this courtyard head's to record
    outsider, _ = world.resident(world.courtyards[2])
    world.wait_resident_known(outsider)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        record(resident_id=outsider)

    # points credits attendance from the same event check-in publishes
    published = wait_until(lambda: (found := [(e, p) for e, p, _ in ordering_events.events(world.district.id)
                                              if e.aggregate_id == aid]) and len(found) >= 8 and found,
                           what="the activity's events")
    attended = [(p.participant_id, p.role) for _, p in published if isinstance(p, ev.ActivityAttended)]
    assert attended == [(r1, types_pb2.PARTICIPANT_ROLE_RESIDENT), (speaker.id, types_pb2.PARTICIPANT_ROLE_VOLUNTEER),
                        (r2, types_pb2.PARTICIPANT_ROLE_RESIDENT)]
    signed_up = [p.participant_id for _, p in published if isinstance(p, ev.ActivitySignedUp)]
    assert signed_up == [speaker.id, r1, r2]


def test_the_desk_opens_with_check_in_only(world):
    yard = world.courtyards[1]
    aid = _plan_published(world, yard, dt.timedelta(days=2), resident_capacity=5)
    resident, token = world.resident(yard)
    world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=token, timeout=10)
    world.wait_resident_known(resident)  # the desk finds residents in the read model registration's events fill
    with expect_error(PRECONDITION, contains="30 minutes before"):
        world.stub.RecordActivityAttendance(pb.RecordActivityAttendanceRequest(activity_id=aid, resident_id=resident),
                                            metadata=world.as_admin(yard), timeout=10)


def test_the_calendar_lists_a_window_of_days(world):
    yard = world.courtyards[3]
    admin = world.as_admin(yard)
    ids = {days: _plan_published(world, yard, dt.timedelta(days=days), resident_capacity=5) for days in (40, 41, 45)}
    today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)

    def listed(**window) -> list[str]:
        request = pb.ListActivitiesRequest(unit_id=yard.unit_id, subtree=True)
        for name, days in window.items():
            getattr(request, name).FromDatetime(today + dt.timedelta(days=days))
        return [a.activity_id for a in world.stub.ListActivities(request, metadata=admin, timeout=10).activities]

    assert listed(starts_from=40, starts_before=42) == [ids[40], ids[41]]
    assert listed(starts_from=42, starts_before=100) == [ids[45]]
    assert listed(starts_from=44) == [ids[45]]                     # one bound: 92 days from it
    assert set(ids.values()) <= set(listed(starts_before=46))
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="starts_before"):
        listed(starts_from=42, starts_before=40)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="starts_before", contains="92 days"):
        listed(starts_from=0, starts_before=93)
