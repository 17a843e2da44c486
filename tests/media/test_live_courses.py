"""Live courses: validated https stream, race-free sign-ups that never overbook, replay only
after the event (the service's clock is moved, not waited for)."""

from __future__ import annotations

import datetime as dt
from concurrent.futures import ThreadPoolExecutor

import grpc
from google.protobuf.timestamp_pb2 import Timestamp

from tests.support.grpc_helpers import bearer, expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.media.v1 import media_pb2 as pb

from .helpers import fake_video, jpeg

L = pb.LiveCourseStatus


def ts(delta: dt.timedelta) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(dt.datetime.now(dt.UTC) + delta)
    return stamp


def schedule_request(**changes) -> pb.ScheduleLiveCourseRequest:
    fields = dict(title="《民法典》走进百姓生活", description="法律服务队直播讲解婚姻家庭编", lecturer="李律师",
                  starts_at=ts(dt.timedelta(hours=1)), ends_at=ts(dt.timedelta(hours=2)),
                  stream_url="https://live.example.cn/room/1024", capacity=0)
    fields.update(changes)
    return pb.ScheduleLiveCourseRequest(**fields)


def rpc(media_client, method: str, request, token: str):
    return getattr(media_client.stub, method)(request, metadata=bearer(token), timeout=10)


def test_scheduling_validates_its_input(media_client, world, media_db):
    admin = world.admin(world.tree.stations[0])
    before = media_db.live_courses.count_documents({"district_id": world.district.id})
    for changes, field in [
        ({"stream_url": "http://live.example.cn/1"}, "stream_url"),
        ({"stream_url": "https://user:secret@live.example.cn/1"}, "stream_url"),
        ({"stream_url": "javascript:alert(1)"}, "stream_url"),
        ({"stream_url": ""}, "stream_url"),
        ({"title": " "}, "title"),
        ({"capacity": -1}, "capacity"),
        ({"starts_at": ts(-dt.timedelta(minutes=5))}, "starts_at"),
        ({"ends_at": ts(dt.timedelta(minutes=30))}, "ends_at"),
        ({"ends_at": ts(dt.timedelta(hours=14))}, "ends_at"),
    ]:
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            rpc(media_client, "ScheduleLiveCourse", schedule_request(**changes), admin)
    for outsider in (world.volunteer_token, world.resident_token):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            rpc(media_client, "ScheduleLiveCourse", schedule_request(), outsider)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "ScheduleLiveCourse", schedule_request(unit_id=world.tree.stations[1].unit_id), admin)
    assert media_db.live_courses.count_documents({"district_id": world.district.id}) == before


def test_sign_ups_never_overbook_even_when_they_race(media_client, world):
    admin = world.admin(world.tree.stations[0])
    course = rpc(media_client, "ScheduleLiveCourse", schedule_request(capacity=5), admin).live_course
    assert course.status == L.LIVE_COURSE_STATUS_SCHEDULED and course.signup_count == 0
    yards = [u.unit_id for u in world.tree.courtyards]
    with ThreadPoolExecutor(6) as pool:
        tokens = list(pool.map(lambda i: world.district.resident(yards[i % 4])[1], range(12)))

    def sign_up(token: str):
        try:
            return rpc(media_client, "SignUpLiveCourse", pb.SignUpLiveCourseRequest(
                live_course_id=course.live_course_id), token).live_course
        except grpc.RpcError as err:
            return err.code()

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(sign_up, tokens))
    winners = [r for r in results if isinstance(r, pb.LiveCourse)]
    assert len(winners) == 5 and all(w.signed_up for w in winners)
    assert set(r for r in results if not isinstance(r, pb.LiveCourse)) == {grpc.StatusCode.FAILED_PRECONDITION}
    got = rpc(media_client, "GetLiveCourse", pb.GetLiveCourseRequest(live_course_id=course.live_course_id),
              admin).live_course
    assert got.signup_count == 5 and not got.signed_up

    winner = tokens[results.index(winners[0])]
    loser = tokens[next(i for i, r in enumerate(results) if not isinstance(r, pb.LiveCourse))]
    with expect_error(grpc.StatusCode.ALREADY_EXISTS):
        sign_up_again = pb.SignUpLiveCourseRequest(live_course_id=course.live_course_id)
        rpc(media_client, "SignUpLiveCourse", sign_up_again, winner)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="名额已满"):
        rpc(media_client, "SignUpLiveCourse", sign_up_again, loser)
    left = rpc(media_client, "CancelLiveCourseSignUp", pb.CancelLiveCourseSignUpRequest(
        live_course_id=course.live_course_id), winner).live_course
    assert left.signup_count == 4 and not left.signed_up
    assert rpc(media_client, "SignUpLiveCourse", sign_up_again, loser).live_course.signup_count == 5


def test_a_replay_is_attached_after_the_course_and_everyone_can_watch_it(media_client, world, move_clock):
    admin = world.admin(world.tree.stations[0])
    course = rpc(media_client, "ScheduleLiveCourse", schedule_request(
        starts_at=ts(dt.timedelta(minutes=10)), ends_at=ts(dt.timedelta(minutes=70))), admin).live_course
    rpc(media_client, "SignUpLiveCourse", pb.SignUpLiveCourseRequest(live_course_id=course.live_course_id),
        world.volunteer_token)
    recording = fake_video(600_000)
    video = media_client.upload(admin, recording, "回放.mp4").asset
    picture = media_client.upload(admin, jpeg(), "海报.jpg").asset
    attach = pb.AttachReplayRequest(live_course_id=course.live_course_id, asset_id=video.asset_id)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="结束后"):
        rpc(media_client, "AttachReplay", attach, admin)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):  # the replay itself is not public yet
        media_client.download(world.other_resident_token, video.asset_id)

    move_clock(2 * 3600)
    get = pb.GetLiveCourseRequest(live_course_id=course.live_course_id)
    ended = rpc(media_client, "GetLiveCourse", get, world.volunteer_token).live_course
    assert ended.status == L.LIVE_COURSE_STATUS_ENDED and ended.signed_up
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="已经结束"):
        rpc(media_client, "SignUpLiveCourse", pb.SignUpLiveCourseRequest(live_course_id=course.live_course_id),
            world.resident_token)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="asset_id"):
        rpc(media_client, "AttachReplay", pb.AttachReplayRequest(live_course_id=course.live_course_id,
                                                                 asset_id=picture.asset_id), admin)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "AttachReplay", attach, world.admin(world.tree.stations[1]))
    replayed = rpc(media_client, "AttachReplay", attach, admin).live_course
    assert replayed.replay_asset_id == video.asset_id

    # a replay is for everyone in the district
    assert media_client.download(world.other_resident_token, video.asset_id)[1] == recording
    upcoming = rpc(media_client, "ListLiveCourses", pb.ListLiveCoursesRequest(upcoming_only=True),
                   world.resident_token).live_courses
    assert course.live_course_id not in [c.live_course_id for c in upcoming]
    everything = rpc(media_client, "ListLiveCourses", pb.ListLiveCoursesRequest(
        unit_id=world.tree.courtyards[0].unit_id, include_ancestors=True), world.resident_token).live_courses
    assert course.live_course_id in [c.live_course_id for c in everything]


def test_cancelling_a_course_stops_sign_ups(media_client, world):
    admin = world.admin(world.tree.stations[0])
    course = rpc(media_client, "ScheduleLiveCourse", schedule_request(), admin).live_course
    cancel = pb.CancelLiveCourseRequest(live_course_id=course.live_course_id, reason="讲师临时有事")
    for outsider in (world.admin(world.tree.stations[1]), world.volunteer_token):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            rpc(media_client, "CancelLiveCourse", cancel, outsider)
    cancelled = rpc(media_client, "CancelLiveCourse", cancel, world.admin(world.tree.institute)).live_course
    assert cancelled.status == L.LIVE_COURSE_STATUS_CANCELLED and cancelled.cancel_reason == "讲师临时有事"
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="已取消"):
        rpc(media_client, "SignUpLiveCourse", pb.SignUpLiveCourseRequest(live_course_id=course.live_course_id),
            world.resident_token)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        rpc(media_client, "CancelLiveCourse", cancel, admin)


def test_courses_are_listed_in_start_order(media_client, world):
    yard = world.tree.courtyards[1]
    admin = world.admin(yard)
    later = rpc(media_client, "ScheduleLiveCourse", schedule_request(
        starts_at=ts(dt.timedelta(hours=6)), ends_at=ts(dt.timedelta(hours=7))), admin).live_course
    sooner = rpc(media_client, "ScheduleLiveCourse", schedule_request(
        starts_at=ts(dt.timedelta(hours=5)), ends_at=ts(dt.timedelta(hours=6))), admin).live_course
    assert later.unit.unit_id == yard.unit_id
    seen, token = [], ""
    while True:
        page = rpc(media_client, "ListLiveCourses", pb.ListLiveCoursesRequest(
            unit_id=yard.unit_id, page=c.PageRequest(page_size=1, page_token=token)), world.resident_token)
        seen += [course.live_course_id for course in page.live_courses]
        token = page.page.next_page_token
        if not token:
            break
    assert seen == [sooner.live_course_id, later.live_course_id]
