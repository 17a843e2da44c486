"""Live courses (直播课程): scheduled by a unit's admins with an external https stream, signed up
for by anyone in the district, given a replay video after the event.

Sign-ups are one conditional update each (not signed up yet, seats left, not cancelled, not
ended), so the count can never exceed the capacity nor count anyone twice.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse

from services.common.auth import Principal, Role, require_district
from services.common.clock import as_utc, clock
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.retry import LOST_RACE, Retry, until_written
from services.common.validation import Validator, valid_id
from wenming.media.v1 import events_pb2, media_pb2 as pb

from .assets import AssetLibrary
from .models import LiveCourse
from .units import UnitInfo, Units, subtree_filter

L = pb.LiveCourseStatus
MAX_DURATION = dt.timedelta(hours=12)
MAX_CAPACITY = 100_000
MAX_URL = 500
CONFLICTS = Retry(max_attempts=30, backoff=LOST_RACE)  # concurrent sign-ups each bump the version; a loser re-reads and tries again


def status_of(course: LiveCourse, now: dt.datetime) -> int:
    if course.cancelled:
        return L.LIVE_COURSE_STATUS_CANCELLED
    if now < as_utc(course.starts_at):
        return L.LIVE_COURSE_STATUS_SCHEDULED
    if now < as_utc(course.ends_at):
        return L.LIVE_COURSE_STATUS_LIVE
    return L.LIVE_COURSE_STATUS_ENDED


def snapshot(course: LiveCourse) -> events_pb2.LiveCourseSnapshot:
    return events_pb2.LiveCourseSnapshot(
        live_course_id=course.id, unit=UnitInfo.of(course).ref(), title=course.title,
        starts_at=to_timestamp(course.starts_at), ends_at=to_timestamp(course.ends_at), capacity=course.capacity,
        signup_count=course.signup_count, cancelled=course.cancelled, replay_asset_id=course.replay_asset_id)


def validate_stream_url(v: Validator, field: str, value: str) -> str:
    url = (value or "").strip()
    if not url:
        v.fail(field, "must not be empty")
        return url
    parts = urllib.parse.urlsplit(url)
    if len(url) > MAX_URL:
        v.fail(field, f"must be at most {MAX_URL} characters")
    elif parts.scheme != "https" or not parts.hostname:
        v.fail(field, "must be an https:// URL with a host")
    elif parts.username or parts.password:
        v.fail(field, "must not carry a user name or password")
    elif any(ch.isspace() or ord(ch) < 32 for ch in url):
        v.fail(field, "must not contain spaces or control characters")
    return url


class LiveCourses:
    def __init__(self, units: Units, assets: AssetLibrary, events: EventSource):
        self.units = units
        self.assets = assets
        self.events = events

    def _load(self, principal: Principal, course_id: str) -> LiveCourse:
        course_id = valid_id("live_course_id", course_id)
        course = LiveCourse.objects(id=course_id).first()
        if course is None:
            raise NotFound("live course", course_id)
        require_district(principal, course.district_id)
        return course

    @staticmethod
    def _require_admin_of(principal: Principal, course: LiveCourse) -> None:
        if not (principal.is_admin and principal.manages(course.unit_path)):
            raise PermissionDenied("only admins of the course's unit or above may do this")

    def _change(self, course: LiveCourse, filter: dict, update: dict, event_type, actor_id: str, preview: dict,
                **event_fields) -> LiveCourse | None:
        after = LiveCourse.from_raw({**course.to_mongo().to_dict(), **preview})
        event = self.events.new(event_type(live_course=snapshot(after), **event_fields),
                                district_id=course.district_id, aggregate_type="live_course", aggregate_id=course.id,
                                version=course.version + 1, actor_id=actor_id)
        return LiveCourse.change({"_id": course.id, "version": course.version, **filter}, update, [event])

    # ---- commands ----

    def schedule(self, principal: Principal, req: pb.ScheduleLiveCourseRequest) -> LiveCourse:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        title = v.text("title", req.title, max_len=100)
        description = v.text("description", req.description, max_len=2000, required=False, multiline=True)
        lecturer = v.text("lecturer", req.lecturer, max_len=50, required=False)
        stream_url = validate_stream_url(v, "stream_url", req.stream_url)
        v.int_range("capacity", req.capacity, 0, MAX_CAPACITY)
        now = clock.now()
        starts = v.timestamp("starts_at", req)
        ends = v.timestamp("ends_at", req)
        if starts is not None and starts <= now:
            v.fail("starts_at", "must be in the future")
        if starts is not None and ends is not None and not starts < ends <= starts + MAX_DURATION:
            v.fail("ends_at", "must be after starts_at and at most 12 hours later")
        v.check()
        unit = self.units.of_caller_or(principal, unit_id, "unit_id")
        if not (principal.is_admin and principal.manages(unit.path)):
            raise PermissionDenied("only admins of the unit or above schedule its live courses")
        course_id = new_id("live")
        course = LiveCourse(id=course_id, district_id=principal.district_id, **unit.fields(), title=title,
                            description=description, lecturer=lecturer, starts_at=starts, ends_at=ends,
                            stream_url=stream_url, capacity=req.capacity,
                            schedule_key=f"{int(starts.timestamp() * 1000):013d}:{course_id}",
                            created_by=principal.subject, created_at=now)
        event = self.events.new(events_pb2.LiveCourseScheduled(live_course=snapshot(course)),
                                district_id=course.district_id, aggregate_type="live_course", aggregate_id=course.id,
                                version=1, actor_id=principal.subject)
        course.insert([event])
        return course

    def sign_up(self, principal: Principal, course_id: str) -> LiveCourse:
        if principal.role == Role.ROLE_SERVICE:
            raise PermissionDenied("services do not sign up for courses")
        who = principal.subject

        def attempt() -> LiveCourse | None:
            course = self._load(principal, course_id)
            now = clock.now()
            self._check_open(course, who, now)
            filter = {"cancelled": False, "ends_at": {"$gt": now}, "signed_up": {"$ne": who}}
            if course.capacity:
                filter["signup_count"] = {"$lt": course.capacity}
            return self._change(course, filter, {"$addToSet": {"signed_up": who}, "$inc": {"signup_count": 1}},
                                events_pb2.LiveCourseSignedUp, who,
                                {"signup_count": course.signup_count + 1}, participant_id=who)

        return until_written(CONFLICTS, attempt, "报名人数较多，请稍后重试")

    @staticmethod
    def _check_open(course: LiveCourse, who: str, now: dt.datetime) -> None:
        if course.cancelled:
            raise FailedPrecondition("这门直播课已取消")
        if now >= as_utc(course.ends_at):
            raise FailedPrecondition("这门直播课已经结束")
        if who in course.signed_up:
            raise AlreadyExists("你已经报名了这门直播课")
        if course.capacity and course.signup_count >= course.capacity:
            raise FailedPrecondition(f"名额已满（{course.capacity} 人）")

    def cancel_sign_up(self, principal: Principal, course_id: str) -> LiveCourse:
        who = principal.subject

        def attempt() -> LiveCourse | None:
            course = self._load(principal, course_id)
            if who not in course.signed_up:
                raise FailedPrecondition("你没有报名这门直播课")
            if course.cancelled or clock.now() >= as_utc(course.starts_at):
                raise FailedPrecondition("直播已开始或已取消，不能再取消报名")
            return self._change(course, {"signed_up": who},
                                {"$pullAll": {"signed_up": [who]}, "$inc": {"signup_count": -1}},
                                events_pb2.LiveCourseSignUpCancelled, who,
                                {"signup_count": course.signup_count - 1}, participant_id=who)

        return until_written(CONFLICTS, attempt, "报名人数较多，请稍后重试")

    def cancel(self, principal: Principal, course_id: str, reason: str) -> LiveCourse:
        v = Validator()
        reason = v.text("reason", reason, max_len=200)
        v.check()
        course = self._load(principal, course_id)
        self._require_admin_of(principal, course)
        if course.cancelled or clock.now() >= as_utc(course.ends_at):
            raise FailedPrecondition("已结束或已取消的直播课不能再取消")
        changed = self._change(course, {"cancelled": False},
                               {"$set": {"cancelled": True, "cancel_reason": reason}},
                               events_pb2.LiveCourseCancelled, principal.subject, {"cancelled": True}, reason=reason)
        if changed is None:
            raise FailedPrecondition("the course changed meanwhile; reload and retry")
        return changed

    def attach_replay(self, principal: Principal, course_id: str, asset_id: str) -> LiveCourse:
        course = self._load(principal, course_id)
        self._require_admin_of(principal, course)
        asset = self.assets.usable(principal, asset_id, "asset_id", kind=pb.ASSET_KIND_VIDEO)
        if course.cancelled:
            raise FailedPrecondition("这门直播课已取消，不能添加回放")
        if clock.now() < as_utc(course.ends_at):
            raise FailedPrecondition("直播结束后才能添加回放")
        changed = self._change(course, {}, {"$set": {"replay_asset_id": asset.id}},
                               events_pb2.LiveCourseReplayAttached, principal.subject,
                               {"replay_asset_id": asset.id}, asset_id=asset.id)
        if changed is None:
            raise FailedPrecondition("the course changed meanwhile; reload and retry")
        return changed

    # ---- reads ----

    def get(self, principal: Principal, course_id: str) -> LiveCourse:
        return self._load(principal, course_id)

    def list(self, principal: Principal, req: pb.ListLiveCoursesRequest) -> tuple[list[LiveCourse], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id}
        if unit_id:
            query.update(subtree_filter(self.units.of_caller_or(principal, unit_id, "unit_id"), req.include_ancestors))
        if req.upcoming_only:
            query.update(cancelled=False, ends_at={"$gt": clock.now()})
        if after:
            query["schedule_key"] = {"$gt": after}
        found = [LiveCourse.from_raw(r) for r in
                 LiveCourse.collection().find(query, {"outbox": 0}).sort("schedule_key", 1).limit(size + 1)]
        next_token = encode_page_token(found[size - 1].schedule_key) if len(found) > size else ""
        return found[:size], next_token
