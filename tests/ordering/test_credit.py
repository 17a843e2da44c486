"""志愿者信用 on the real stack: the loop records no-shows and complaints by itself (an accepted
order served without one volunteer, a 2-star rating, an activity a volunteer signed up to and
missed), an admin records one once per idempotency key, the volunteer appeals once, an admin of
the scope decides, a repeat of either gets the first answer; everything refused that should be,
by status, role and unit subtree; the events on the topic; the standing on SuggestVolunteers."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.config import load_settings
from services.common.consumer import ConsumedEvent, Outcome
from services.common.events import decode
from services.ordering.app import build, extra_settings
from tests.support.grpc_helpers import expect_error
from tests.support.plans import connect_monitored
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import events_pb2 as ev
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.ordering.v1 import types_pb2


K = types_pb2.CreditIncidentKind
S = types_pb2.CreditIncidentStatus
OUT = pb.CreditAppealOutcome
DENIED = grpc.StatusCode.PERMISSION_DENIED
PRECONDITION = grpc.StatusCode.FAILED_PRECONDITION
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(scope="module")
def credit_book(stack, ordering_proc):
    """The credit desk in this process, on the service's database: to hand it an event again."""
    settings = load_settings("ordering", environ=ordering_proc.env, extra=extra_settings)
    return build(settings, connect_monitored(settings.mongodb_uri, settings.mongodb_database)).credit


def _incidents(world, token, **request) -> pb.ListCreditIncidentsResponse:
    return world.stub.ListCreditIncidents(pb.ListCreditIncidentsRequest(**request), metadata=token, timeout=10)


def _wait_incidents(world, token, count: int, **request) -> pb.ListCreditIncidentsResponse:
    return wait_until(lambda: (reply := _incidents(world, token, **request)) and len(reply.incidents) >= count
                      and reply, what=f"{count} credit incident(s)")


def _appeal(world, token, incident_id: str, reason: str = "那天临时住院，有病历可以证明") -> pb.CreditIncident:
    return world.stub.AppealCreditIncident(pb.AppealCreditIncidentRequest(incident_id=incident_id, reason=reason),
                                           metadata=token, timeout=10).incident


def _decide(world, token, incident_id: str, outcome: int, reason: str = "已核实") -> pb.CreditIncident:
    return world.stub.DecideCreditAppeal(pb.DecideCreditAppealRequest(incident_id=incident_id, outcome=outcome,
                                                                      reason=reason), metadata=token, timeout=10).incident


def _served_by_one_of_two(world, yard, shifted):
    """An order dispatched to two volunteers, both accepted, only the first came; hours confirmed."""
    came, missed = world.volunteers(yard, 2, name="理发员")
    resident_id, resident = world.resident(yard)
    order = world.place(resident)
    holder = world.holder(order)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=holder, timeout=10)
    world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[came.id, missed.id]),
                             metadata=holder, timeout=10)
    for volunteer in (came, missed):
        world.stub.AcceptOrder(pb.AcceptOrderRequest(order_id=order.order_id), metadata=volunteer.token, timeout=10)
    world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=world.code(order)),
                            metadata=came.token, timeout=10)
    shifted.advance(40 * 60)
    world.stub.CheckOutOrder(pb.CheckOutOrderRequest(order_id=order.order_id, code=world.code(order),
                                                     report="已理发"), metadata=came.token, timeout=10)
    world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id), metadata=holder, timeout=10)
    return order, came, missed, resident


def test_the_loop_records_a_no_show_and_a_complaint_and_each_is_appealed_once(world, shifted, ordering_events,
                                                                              credit_book):
    yard, other_station = world.courtyards[0], world.stations[1]
    order, came, missed, resident = _served_by_one_of_two(world, yard, shifted)

    # accepted and never came: 爽约, recorded by the loop, at the holding courtyard
    no_show = _wait_incidents(world, missed.token, 1)
    (incident,) = no_show.incidents
    assert (incident.kind, incident.status, incident.automatic, incident.order_id, incident.unit.unit_id) == (
        K.CREDIT_INCIDENT_KIND_NO_SHOW, S.CREDIT_INCIDENT_STATUS_STANDING, True, order.order_id, yard.unit_id)
    assert "未到场" in incident.reason and not incident.recorded_by
    assert no_show.standing.no_shows == 1 and no_show.standing.summary == "近90天有效爽约1次、投诉0次"
    assert not _incidents(world, came.token).incidents  # the one who came has nothing

    # two stars: a complaint about the volunteer who served
    world.stub.RateOrder(pb.RateOrderRequest(order_id=order.order_id, rating=2, comment="迟到了半小时"),
                         metadata=resident, timeout=10)
    (complaint,) = _wait_incidents(world, came.token, 1).incidents
    assert complaint.kind == K.CREDIT_INCIDENT_KIND_COMPLAINT and "2星" in complaint.reason

    # another user's token is refused: a volunteer appeals only their own, a resident lists nothing
    with expect_error(DENIED):
        _appeal(world, came.token, incident.incident_id)
    with expect_error(DENIED):
        _incidents(world, came.token, volunteer_id=missed.id)
    with expect_error(DENIED):
        _incidents(world, resident)
    with expect_error(INVALID, field="reason"):
        _appeal(world, missed.token, incident.incident_id, reason="不")
    # nothing to decide before the appeal
    with expect_error(PRECONDITION):
        _decide(world, world.as_admin(yard), incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD)

    appealed = _appeal(world, missed.token, incident.incident_id)
    assert appealed.status == S.CREDIT_INCIDENT_STATUS_APPEALED and appealed.appealed_at.seconds
    # a retry whose first answer was lost gets that answer; another appeal is refused
    assert _appeal(world, missed.token, incident.incident_id) == appealed
    with expect_error(PRECONDITION, contains="已申诉"):
        _appeal(world, missed.token, incident.incident_id, reason="再补充一句：当天手机没电")
    # the admins of the scope see it pending; another station's admin neither sees nor decides it
    pending = _incidents(world, world.as_admin(yard), statuses=[S.CREDIT_INCIDENT_STATUS_APPEALED]).incidents
    assert [i.incident_id for i in pending] == [incident.incident_id] and pending[0].volunteer_name
    assert not _incidents(world, world.as_admin(other_station)).incidents
    with expect_error(DENIED):
        _decide(world, world.as_admin(other_station), incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD)
    with expect_error(DENIED):
        _incidents(world, world.as_admin(other_station), unit_id=yard.unit_id)
    with expect_error(DENIED):
        _decide(world, missed.token, incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD)
    with expect_error(INVALID, field="outcome"):
        _decide(world, world.as_admin(yard), incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UNSPECIFIED)

    voided = _decide(world, world.as_admin(yard), incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD,
                     "病历属实，撤销爽约记录")
    assert voided.status == S.CREDIT_INCIDENT_STATUS_VOIDED and voided.decision_reason == "病历属实，撤销爽约记录"
    assert _incidents(world, missed.token).standing.no_shows == 0
    # the same decision repeated gets the first answer; another outcome or reason is refused
    assert _decide(world, world.as_admin(yard), incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD,
                   "病历属实，撤销爽约记录") == voided
    with expect_error(PRECONDITION, contains="没有待处理的申诉"):
        _decide(world, world.as_admin(yard), incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_REJECTED,
                "病历属实，撤销爽约记录")
    with expect_error(PRECONDITION, contains="只能申诉一次"):
        _appeal(world, missed.token, incident.incident_id, reason="再补充一句：当天手机没电")

    # the complaint's appeal is rejected: it stands, for good
    _appeal(world, came.token, complaint.incident_id, reason="老人家门口修路，已提前电话说明")
    confirmed = _decide(world, world.as_admin(world.stations[0]), complaint.incident_id,
                        OUT.CREDIT_APPEAL_OUTCOME_REJECTED, "未提前告知居民")
    assert confirmed.status == S.CREDIT_INCIDENT_STATUS_CONFIRMED
    assert _incidents(world, came.token).standing.complaints == 1

    # the events, without the free text anyone wrote
    credit = wait_until(lambda: (found := [(e, p) for e, p, _ in ordering_events.events(world.district.id)
                                           if e.aggregate_type == "credit_incident"]) and len(found) >= 6 and found,
                        what="the credit events")
    kinds = [(type(p).__name__, p.incident.incident_id) for _, p in credit]
    assert kinds.count(("CreditIncidentRecorded", incident.incident_id)) == 1
    # the repeats changed nothing: one appeal, one decision
    assert kinds.count(("CreditIncidentAppealed", incident.incident_id)) == 1
    assert kinds.count(("CreditAppealDecided", incident.incident_id)) == 1
    decided = {p.incident.incident_id: p.upheld for _, p in credit if isinstance(p, ev.CreditAppealDecided)}
    assert decided == {incident.incident_id: True, complaint.incident_id: False}
    assert all("病历" not in str(p) for _, p in credit)

    # a redelivery (a consumer that died before committing its offset) records nothing twice
    for kind in (ev.OrderHoursConfirmed, ev.OrderRated):
        record = next(r for _, p, r in ordering_events.events(world.district.id)
                      if isinstance(p, kind) and p.order.order_id == order.order_id)
        envelope, payload = decode(record.value)
        again = ConsumedEvent(envelope, payload, record.topic, record.partition, record.offset)
        assert credit_book.handlers()[envelope.event_type](again) == Outcome.DUPLICATE
    assert world.db.credit_incidents.count_documents({"order_id": order.order_id}) == 2

    # the dispatcher sees the standing beside the score, and it scores nothing
    _, resident2 = world.resident(yard)
    fresh = world.place(resident2)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=fresh.order_id), metadata=world.holder(fresh),
                                timeout=10)
    candidates = world.stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=fresh.order_id, limit=50),
                                              metadata=world.holder(fresh), timeout=10).candidates
    factors = {f.factor: f for f in next(cand for cand in candidates if cand.volunteer_id == came.id).factors}
    assert factors["credit"].points == 0 and factors["credit"].explanation == "近90天有效爽约0次、投诉1次"


def test_a_volunteer_who_signed_up_and_missed_the_activity_has_a_no_show(world, shifted):
    yard = world.courtyards[1]
    admin = world.as_admin(yard)
    starts, ends = Timestamp(), Timestamp()
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    starts.FromDatetime(start)
    ends.FromDatetime(start + dt.timedelta(hours=1))
    aid = world.stub.PlanActivity(pb.PlanActivityRequest(
        title="小院讲堂：垃圾分类", category=c.SERVICE_CATEGORY_CARE_FOR_SOCIETY, starts_at=starts, ends_at=ends,
        volunteer_capacity=3), metadata=admin, timeout=10).activity.activity_id
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    came, missed, excused = world.volunteers(yard, 3, name="讲解员")
    for volunteer in (came, missed, excused):
        world.stub.SignUpActivity(pb.SignUpActivityRequest(activity_id=aid), metadata=volunteer.token, timeout=10)
    code = world.stub.IssueActivityCheckinCode(pb.IssueActivityCheckinCodeRequest(activity_id=aid), metadata=admin,
                                               timeout=10).checkin.code
    world.stub.CheckInActivity(pb.CheckInActivityRequest(activity_id=aid, code=code), metadata=came.token, timeout=10)
    shifted.advance(2 * 3600)
    # the organizer enters hours for one who served without checking in: not a no-show
    world.stub.CompleteActivity(pb.CompleteActivityRequest(activity_id=aid, manual=[
        pb.ManualHours(volunteer_id=excused.id, minutes=60)]), metadata=admin, timeout=10)

    (incident,) = _wait_incidents(world, missed.token, 1).incidents
    assert (incident.kind, incident.activity_id, incident.automatic) == (K.CREDIT_INCIDENT_KIND_NO_SHOW, aid, True)
    assert "垃圾分类" in incident.reason
    listed = _incidents(world, admin, volunteer_id=missed.id)
    assert [i.incident_id for i in listed.incidents] == [incident.incident_id] and listed.standing.no_shows == 1
    assert not _incidents(world, came.token).incidents and not _incidents(world, excused.token).incidents


def test_an_admin_records_an_incident_once_per_key_and_may_not_judge_its_appeal(world):
    yard, neighbour = world.courtyards[2], world.courtyards[3]
    volunteer = world.volunteer(yard)
    _, resident = world.resident(yard)
    order = world.accepted_order(resident, volunteer)
    recorder = world.as_admin(yard)

    def record(token=recorder, **changes) -> pb.CreditIncident:
        fields = dict(volunteer_id=volunteer.id, kind=K.CREDIT_INCIDENT_KIND_COMPLAINT,
                      reason="居民来电投诉服务中态度生硬", order_id=order.order_id, idempotency_key="complaint-1")
        return world.stub.RecordCreditIncident(pb.RecordCreditIncidentRequest(**{**fields, **changes}),
                                               metadata=token, timeout=10).incident

    # bad input is named by its field, never echoed in full
    with expect_error(INVALID, field="reason") as caught:
        record(reason="长" * 500, idempotency_key="complaint-long")
    assert "长" * 60 not in caught.value.details()
    with expect_error(INVALID, field="order_id"):
        record(order_id="", idempotency_key="complaint-none")
    with expect_error(INVALID, field="idempotency_key"):
        record(idempotency_key="")
    with expect_error(INVALID, field="volunteer_id"):  # took no part in the order
        record(volunteer_id=world.volunteer(yard).id, idempotency_key="complaint-stranger")
    # another courtyard's admin and the volunteer themself are refused
    with expect_error(DENIED):
        record(world.as_admin(neighbour))
    with expect_error(DENIED):
        record(volunteer.token)

    first = record()
    assert (first.status, first.automatic, first.unit.unit_id) == (S.CREDIT_INCIDENT_STATUS_STANDING, False,
                                                                   yard.unit_id)
    assert record().incident_id == first.incident_id  # a retry records once
    with expect_error(INVALID, field="idempotency_key"):
        record(reason="另一件事，不是同一个请求")
    second = record(kind=K.CREDIT_INCIDENT_KIND_NO_SHOW, reason="约定上门未到", idempotency_key="no-show-1")

    # keyset paging, newest first
    page1 = _incidents(world, recorder, volunteer_id=volunteer.id, page=c.PageRequest(page_size=1))
    page2 = _incidents(world, recorder, volunteer_id=volunteer.id,
                       page=c.PageRequest(page_size=1, page_token=page1.page.next_page_token))
    assert [i.incident_id for i in (*page1.incidents, *page2.incidents)] == [second.incident_id, first.incident_id]
    assert not page2.page.next_page_token
    with expect_error(INVALID, field="page.page_token"):
        _incidents(world, recorder, page=c.PageRequest(page_token="!!"))

    # nobody judges an appeal against their own record: the station decides
    _appeal(world, volunteer.token, first.incident_id)
    with expect_error(DENIED, contains="登记该记录的管理员"):
        _decide(world, recorder, first.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD)
    upheld = _decide(world, world.as_admin(world.stations[1]), first.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD,
                     "经回访，居民撤回投诉")
    assert upheld.status == S.CREDIT_INCIDENT_STATUS_VOIDED


def test_another_stations_admin_is_refused_every_credit_rpc(world):
    yard = world.courtyards[0]
    volunteer = world.volunteer(yard)
    _, resident = world.resident(yard)
    order = world.accepted_order(resident, volunteer)
    incident = world.stub.RecordCreditIncident(pb.RecordCreditIncidentRequest(
        volunteer_id=volunteer.id, kind=K.CREDIT_INCIDENT_KIND_NO_SHOW, reason="约定上门未到", order_id=order.order_id,
        idempotency_key="refusals-1"), metadata=world.as_admin(yard), timeout=10).incident
    _appeal(world, volunteer.token, incident.incident_id)
    other = world.as_admin(world.stations[1])
    calls = {
        "RecordCreditIncident": lambda: world.stub.RecordCreditIncident(pb.RecordCreditIncidentRequest(
            volunteer_id=volunteer.id, kind=K.CREDIT_INCIDENT_KIND_NO_SHOW, reason="越界登记", order_id=order.order_id,
            idempotency_key="refusals-2"), metadata=other, timeout=10),
        "AppealCreditIncident": lambda: _appeal(world, other, incident.incident_id),
        "DecideCreditAppeal": lambda: _decide(world, other, incident.incident_id, OUT.CREDIT_APPEAL_OUTCOME_UPHELD),
        "ListCreditIncidents": lambda: _incidents(world, other, unit_id=yard.unit_id),
    }
    assert set(calls) == {m.name for m in pb.DESCRIPTOR.services_by_name["OrderingService"].methods
                          if "Credit" in m.name}
    for call in calls.values():
        with expect_error(DENIED):
            call()
    assert incident.incident_id not in [i.incident_id for i in _incidents(world, other).incidents]
    with expect_error(DENIED):  # nor their standing, through a filter of their own subtree
        _incidents(world, other, volunteer_id=volunteer.id)
