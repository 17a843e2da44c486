"""Activity plans (年有计划、月有安排、周有活动) over real gRPC against the real broker and database:
a station drafts its month's arrangements, puts them out for comments (征求意见) to its subtree,
publishes them once the deadline has passed and revises them; residents read the calendar; the
refusals — another station's admin, a resident outside the subtree, a comment after the deadline
or with a sensitive word, publishing early, bad input by field; the events, without the text."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from services.common.events import to_timestamp
from tests.ordering.support import next_month
from tests.support.grpc_helpers import expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2

S = types_pb2.ActivityPlanStatus
PERIOD = types_pb2.ActivityPlanPeriod
DENIED, PRECONDITION, INVALID, NOT_FOUND, EXISTS = (
    grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS)


def entry(title: str, when: str, unit_id: str = "", **fields) -> pb.ActivityPlanEntry:
    return pb.ActivityPlanEntry(title=title, when=when, category=c.SERVICE_CATEGORY_LECTURE_POLICY,
                                unit=c.UnitRef(unit_id=unit_id), **fields)


def create(world, unit, token, key: str, **fields) -> pb.ActivityPlan:
    month, first = next_month()
    request = pb.CreateActivityPlanRequest(unit_id=unit.unit_id, period=PERIOD.ACTIVITY_PLAN_PERIOD_MONTH,
                                           period_key=month, title="下月活动安排", idempotency_key=key)
    request.MergeFrom(pb.CreateActivityPlanRequest(**fields))
    return world.stub.CreateActivityPlan(request, metadata=token, timeout=10).plan


def comment(world, token, plan_id: str, key: str, text: str = "希望讲堂放在周末上午，方便上班的年轻人参加"):
    return world.stub.CommentOnActivityPlan(pb.CommentOnActivityPlanRequest(plan_id=plan_id, text=text,
                                                                            idempotency_key=key),
                                            metadata=token, timeout=10).comment


def calendar(world, token, month: str) -> list[pb.ActivityPlan]:
    return list(world.stub.ListActivityPlans(pb.ListActivityPlansRequest(month=month), metadata=token,
                                             timeout=10).plans)


@pytest.fixture(scope="module")
def people(world):
    """The station planning, the other station, a resident of each, a volunteer of the first."""
    station, other = world.stations[0], world.stations[1]
    _, resident = world.resident(world.courtyards[0], name="李阿姨")
    _, outsider = world.resident(world.courtyards[3], name="王大伯")
    volunteer = world.volunteer(world.courtyards[1])
    return station, other, resident, outsider, volunteer


def test_a_month_plan_from_draft_through_consultation_to_the_calendar(world, people, shifted, ordering_events):
    station, other, resident, outsider, volunteer = people
    admin, other_admin = world.as_admin(station), world.as_admin(other)
    month, first = next_month()
    activity = world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=world.courtyards[1].unit_id, title="小院讲堂：垃圾分类", category=c.SERVICE_CATEGORY_LECTURE_POLICY,
        starts_at=to_timestamp(dt.datetime.combine(first + dt.timedelta(days=9), dt.time(2), dt.UTC)),
        ends_at=to_timestamp(dt.datetime.combine(first + dt.timedelta(days=9), dt.time(4), dt.UTC)), resident_capacity=30),
        metadata=world.as_admin(world.courtyards[1]), timeout=10).activity
    entries = [entry("理论宣讲进小院", f"{month}-05"),
               entry("小院讲堂：垃圾分类", (first + dt.timedelta(days=9)).isoformat(), world.courtyards[1].unit_id,
                     activity_id=activity.activity_id, note="请带上家里的旧电池")]
    plan = create(world, station, admin, "plan-1", entries=entries)
    assert (plan.status, plan.revision, plan.published_revision, plan.unit.unit_id) == (
        S.ACTIVITY_PLAN_STATUS_DRAFT, 1, 0, station.unit_id)
    assert [(e.entry_id, e.unit.unit_id, e.activity_id) for e in plan.entries] == [
        ("e1", station.unit_id, ""), ("e2", world.courtyards[1].unit_id, activity.activity_id)]
    assert plan.entries[1].unit.name  # the holding unit as ordering knows it

    # a retry with the key drafts once; the key for another plan, or a second plan of the month, is refused
    assert create(world, station, admin, "plan-1", entries=entries).plan_id == plan.plan_id
    with expect_error(INVALID, field="idempotency_key"):
        create(world, station, admin, "plan-1", title="另一个计划")
    with expect_error(EXISTS):
        create(world, station, admin, "plan-2")
    # another station's admin neither drafts for it, nor edits, reads, publishes its plan
    with expect_error(DENIED):
        create(world, station, other_admin, "plan-3")
    with expect_error(DENIED):
        world.stub.SetActivityPlanEntries(pb.SetActivityPlanEntriesRequest(plan_id=plan.plan_id, entries=entries),
                                          metadata=other_admin, timeout=10)
    with expect_error(DENIED):
        world.stub.GetActivityPlan(pb.GetActivityPlanRequest(plan_id=plan.plan_id), metadata=other_admin, timeout=10)
    # a draft is the admins' own: residents see nothing and cannot comment yet
    with expect_error(NOT_FOUND):
        world.stub.GetActivityPlan(pb.GetActivityPlanRequest(plan_id=plan.plan_id), metadata=resident, timeout=10)
    assert calendar(world, resident, month) == []
    with expect_error(PRECONDITION):
        comment(world, resident, plan.plan_id, "c-early")

    # the institute above edits the draft too (an entry of the institute is not the station's to hold)
    with expect_error(INVALID, field="entries[0].unit.unit_id"):
        world.stub.SetActivityPlanEntries(pb.SetActivityPlanEntriesRequest(
            plan_id=plan.plan_id, entries=[entry("所里的活动", f"{month}-06", world.institute.unit_id)]),
            metadata=admin, timeout=10)
    entries.append(entry("志愿服务集中日", f"{month}-20"))
    plan = world.stub.SetActivityPlanEntries(pb.SetActivityPlanEntriesRequest(plan_id=plan.plan_id, entries=entries),
                                             metadata=world.as_admin(world.institute), timeout=10).plan
    assert len(plan.entries) == 3 and plan.version == 2

    # 征求意见 for two days
    deadline = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(days=2)
    opened = world.stub.OpenActivityPlanConsultation(pb.OpenActivityPlanConsultationRequest(
        plan_id=plan.plan_id, deadline=to_timestamp(deadline)), metadata=admin, timeout=10).plan
    assert opened.status == S.ACTIVITY_PLAN_STATUS_CONSULTING and opened.consultation_deadline.ToDatetime(dt.UTC) == deadline
    # the subtree's residents and volunteers read the draft and comment; a retry comments once
    (seen,) = calendar(world, resident, month)
    assert seen.status == S.ACTIVITY_PLAN_STATUS_CONSULTING and len(seen.entries) == 3 and not seen.published_entries
    first_comment = comment(world, resident, plan.plan_id, "c-1")
    assert comment(world, resident, plan.plan_id, "c-1") == first_comment
    with expect_error(INVALID, field="idempotency_key"):
        comment(world, resident, plan.plan_id, "c-1", text="换一句话再说一遍")
    comment(world, volunteer.token, plan.plan_id, "c-2", text="集中日我们队可以出十个人")
    # outside the subtree: neither read nor comment
    assert calendar(world, outsider, month) == []
    with expect_error(DENIED):
        comment(world, outsider, plan.plan_id, "c-3")
    with expect_error(PRECONDITION, contains="敏感词"):
        comment(world, resident, plan.plan_id, "c-4", text="楼下有人组织赌 博，请管管")
    with expect_error(INVALID, field="text"):
        comment(world, resident, plan.plan_id, "c-5", text="好")
    # the admins read the comments; nobody else does
    listed = world.stub.ListActivityPlanComments(pb.ListActivityPlanCommentsRequest(plan_id=plan.plan_id),
                                                 metadata=admin, timeout=10).comments
    assert [(x.text, x.author_role) for x in listed] == [("集中日我们队可以出十个人", c.ROLE_VOLUNTEER),
                                                         (first_comment.text, c.ROLE_RESIDENT)]
    assert listed[1].author_unit_name == world.courtyards[0].name
    for token in (other_admin, resident):
        with expect_error(DENIED):
            world.stub.ListActivityPlanComments(pb.ListActivityPlanCommentsRequest(plan_id=plan.plan_id),
                                                metadata=token, timeout=10)
    assert world.stub.GetActivityPlan(pb.GetActivityPlanRequest(plan_id=plan.plan_id), metadata=admin,
                                      timeout=10).plan.comment_count == 2

    # not before the deadline, nor by another station; after it, no more comments
    with expect_error(PRECONDITION, contains="尚未截止"):
        world.stub.PublishActivityPlan(pb.PublishActivityPlanRequest(plan_id=plan.plan_id), metadata=admin, timeout=10)
    shifted.advance(2 * 86400 + 60)
    with expect_error(PRECONDITION, contains="已截止"):
        comment(world, resident, plan.plan_id, "c-6")
    with expect_error(DENIED):
        world.stub.PublishActivityPlan(pb.PublishActivityPlanRequest(plan_id=plan.plan_id), metadata=other_admin,
                                       timeout=10)
    published = world.stub.PublishActivityPlan(pb.PublishActivityPlanRequest(plan_id=plan.plan_id), metadata=admin,
                                               timeout=10).plan
    assert (published.status, published.published_revision, len(published.published_entries)) == (
        S.ACTIVITY_PLAN_STATUS_PUBLISHED, 1, 3)
    # a retry whose answer was lost gets the plan as it is
    assert world.stub.PublishActivityPlan(pb.PublishActivityPlanRequest(plan_id=plan.plan_id), metadata=admin,
                                          timeout=10).plan == published

    # the activity the first entry became, planned after publication, is linked on the calendar
    later = world.stub.PlanActivity(pb.PlanActivityRequest(
        unit_id=station.unit_id, title="理论宣讲进小院", category=c.SERVICE_CATEGORY_LECTURE_THEORY,
        starts_at=to_timestamp(dt.datetime.combine(first + dt.timedelta(days=4), dt.time(2), dt.UTC)),
        ends_at=to_timestamp(dt.datetime.combine(first + dt.timedelta(days=4), dt.time(4), dt.UTC)), resident_capacity=30),
        metadata=admin, timeout=10).activity
    link = pb.LinkActivityPlanEntryRequest(plan_id=plan.plan_id, entry_id="e1", activity_id=later.activity_id)
    with expect_error(DENIED):
        world.stub.LinkActivityPlanEntry(link, metadata=other_admin, timeout=10)
    with expect_error(INVALID, field="entry_id"):
        world.stub.LinkActivityPlanEntry(pb.LinkActivityPlanEntryRequest(plan_id=plan.plan_id, entry_id="e9"),
                                         metadata=admin, timeout=10)
    linked = world.stub.LinkActivityPlanEntry(link, metadata=admin, timeout=10).plan
    assert linked.published_entries[0].activity_id == later.activity_id
    assert world.stub.LinkActivityPlanEntry(link, metadata=admin, timeout=10).plan == linked  # a retry: as it is

    # on the calendar of the subtree's residents
    (shown,) = calendar(world, resident, month)
    assert [e.title for e in shown.published_entries] == ["理论宣讲进小院", "小院讲堂：垃圾分类", "志愿服务集中日"]
    assert shown.published_entries[0].activity_id == later.activity_id

    # revised: a new draft; the calendar keeps revision 1, without the draft's entries
    revised = world.stub.ReviseActivityPlan(pb.ReviseActivityPlanRequest(plan_id=plan.plan_id), metadata=admin,
                                            timeout=10).plan
    assert (revised.status, revised.revision, revised.published_revision) == (S.ACTIVITY_PLAN_STATUS_DRAFT, 2, 1)
    assert world.stub.ReviseActivityPlan(pb.ReviseActivityPlanRequest(plan_id=plan.plan_id), metadata=admin,
                                         timeout=10).plan == revised
    (shown,) = calendar(world, resident, month)
    assert len(shown.published_entries) == 3 and not shown.entries
    # the admin's list of the station's subtree has it; the other station's has nothing
    assert [p.plan_id for p in world.stub.ListActivityPlans(pb.ListActivityPlansRequest(), metadata=admin,
                                                            timeout=10).plans] == [plan.plan_id]
    assert not world.stub.ListActivityPlans(pb.ListActivityPlansRequest(), metadata=other_admin, timeout=10).plans

    # the events, once each (a plan's in order; comments are aggregates of their own), without the text
    events = [p for e, p, _ in ordering_events.events(world.district.id, at_least=1, timeout=20, settle=2.0)
              if e.aggregate_type in ("activity_plan", "activity_plan_comment")]
    assert [type(p).__name__ for p in events if not isinstance(p, ev.ActivityPlanCommented)] == [
        "ActivityPlanDrafted", "ActivityPlanEntriesChanged", "ActivityPlanConsultationOpened",
        "ActivityPlanPublished", "ActivityPlanEntryLinked", "ActivityPlanRevised"]
    assert sorted(p.author_role for p in events if isinstance(p, ev.ActivityPlanCommented)) == [
        c.ROLE_RESIDENT, c.ROLE_VOLUNTEER]
    published_event = next(p for p in events if isinstance(p, ev.ActivityPlanPublished))
    assert (published_event.plan.period_key, published_event.plan.published_revision,
            published_event.plan.entry_count) == (month, 1, 3)
    assert all("周末" not in str(p) for p in events)


def test_bad_input_is_named_by_field(world, people):
    station, _, resident, _, _ = people
    admin = world.as_admin(station)
    month, _ = next_month()
    with expect_error(INVALID, field="period_key"):
        create(world, station, admin, "bad-1", period_key="下个月")
    with expect_error(INVALID, field="entries[0].when"):
        create(world, station, admin, "bad-2", entries=[entry("讲堂", "2020-01-01")])
    with expect_error(INVALID, field="idempotency_key"):
        create(world, station, admin, "")
    with expect_error(INVALID, field="unit_id"):  # courtyards are in their station's plan
        create(world, world.courtyards[0], world.as_admin(world.courtyards[0]), "bad-3")
    with expect_error(DENIED):  # residents do not draft plans
        create(world, station, resident, "bad-4")
    with expect_error(INVALID, field="month"):
        world.stub.ListActivityPlans(pb.ListActivityPlansRequest(), metadata=resident, timeout=10)
    with expect_error(INVALID, field="deadline"):
        world.stub.OpenActivityPlanConsultation(pb.OpenActivityPlanConsultationRequest(plan_id="apl_x"),
                                                metadata=admin, timeout=10)


def test_every_plan_call_refuses_another_stations_admin(world, people):
    station, other, _, _, _ = people
    admin, other_admin = world.as_admin(station), world.as_admin(other)
    plan = world.stub.CreateActivityPlan(pb.CreateActivityPlanRequest(
        unit_id=station.unit_id, period=PERIOD.ACTIVITY_PLAN_PERIOD_YEAR, period_key="2031", title="2031年度计划",
        entries=[entry("年度志愿服务集中月", "2031-03")], idempotency_key="year-2031"), metadata=admin, timeout=10).plan
    pid = plan.plan_id
    s = world.stub
    calls = {
        "CreateActivityPlan": lambda: s.CreateActivityPlan(pb.CreateActivityPlanRequest(
            unit_id=station.unit_id, period=PERIOD.ACTIVITY_PLAN_PERIOD_YEAR, period_key="2032", title="2032年度计划",
            idempotency_key="other-2032"), metadata=other_admin, timeout=10),
        "SetActivityPlanEntries": lambda: s.SetActivityPlanEntries(pb.SetActivityPlanEntriesRequest(plan_id=pid),
                                                                   metadata=other_admin, timeout=10),
        "OpenActivityPlanConsultation": lambda: s.OpenActivityPlanConsultation(pb.OpenActivityPlanConsultationRequest(
            plan_id=pid, deadline=to_timestamp(dt.datetime.now(dt.UTC) + dt.timedelta(days=3))), metadata=other_admin,
            timeout=10),
        "CommentOnActivityPlan": lambda: comment(world, other_admin, pid, "admin-comment"),
        "ListActivityPlanComments": lambda: s.ListActivityPlanComments(pb.ListActivityPlanCommentsRequest(plan_id=pid),
                                                                       metadata=other_admin, timeout=10),
        "PublishActivityPlan": lambda: s.PublishActivityPlan(pb.PublishActivityPlanRequest(plan_id=pid),
                                                             metadata=other_admin, timeout=10),
        "LinkActivityPlanEntry": lambda: s.LinkActivityPlanEntry(pb.LinkActivityPlanEntryRequest(
            plan_id=pid, entry_id="e1"), metadata=other_admin, timeout=10),
        "ReviseActivityPlan": lambda: s.ReviseActivityPlan(pb.ReviseActivityPlanRequest(plan_id=pid),
                                                           metadata=other_admin, timeout=10),
        "GetActivityPlan": lambda: s.GetActivityPlan(pb.GetActivityPlanRequest(plan_id=pid), metadata=other_admin,
                                                     timeout=10),
        "ListActivityPlans": lambda: s.ListActivityPlans(pb.ListActivityPlansRequest(unit_id=station.unit_id),
                                                         metadata=other_admin, timeout=10),
    }
    assert set(calls) == {m.name for m in pb.DESCRIPTOR.services_by_name["OrderingService"].methods
                          if "ActivityPlan" in m.name}
    for call in calls.values():
        with expect_error(DENIED):
            call()
    # nothing was written by the refusals
    assert s.GetActivityPlan(pb.GetActivityPlanRequest(plan_id=pid), metadata=admin, timeout=10).plan == plan
