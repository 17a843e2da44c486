"""派单 helper: candidates ranked by distance, load and availability, each score explained; and
certifications from training's events (produced to the real broker here, as training will)
deciding who qualifies, until they are revoked or expire."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.clock import CHINA
from services.common.events import EventSource, record_headers
from services.common.kafka_clients import make_producer
from tests.support.grpc_helpers import expect_error
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.training.v1 import events_pb2 as training


def _next_saturday_morning() -> Timestamp:
    today = dt.datetime.now(CHINA)
    saturday = (today + dt.timedelta(days=(5 - today.weekday()) % 7 or 7)).replace(hour=9, minute=0, second=0,
                                                                                   microsecond=0)
    ts = Timestamp()
    ts.FromDatetime(saturday.astimezone(dt.UTC))
    return ts


@pytest.fixture(scope="module")
def world(own_world):
    """This module counts every qualified volunteer of a station: a world of its own."""
    return own_world


def test_candidates_are_ranked_and_every_score_is_explained(world):
    yard, neighbour_yard, station = world.courtyards[0], world.courtyards[1], world.stations[0]
    weekend = c.Availability(weekdays=[c.WEEKDAY_SATURDAY, c.WEEKDAY_SUNDAY], periods=[c.DAY_PERIOD_MORNING])
    evenings = c.Availability(weekdays=[c.WEEKDAY_MONDAY, c.WEEKDAY_TUESDAY], periods=[c.DAY_PERIOD_EVENING])
    repair = [c.SKILL_APPLIANCE_REPAIR]
    near = world.volunteer(yard, skills=repair, availability=weekend, name="同院")
    busy = world.volunteer(yard, skills=repair, availability=weekend, name="忙碌")
    neighbour = world.volunteer(neighbour_yard, skills=repair, availability=evenings, name="同站")
    world.volunteer(world.courtyards[2], skills=repair, name="外站")        # another station: not eligible
    world.volunteer(yard, skills=[c.SKILL_CULTURE_ART], name="无技能")      # lacks the skill: not eligible
    _, resident = world.resident(yard)
    admin = world.as_admin(station)

    # busy already has a repair order on hand
    other = world.place(resident, "repair")
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=other.order_id), metadata=admin, timeout=10)
    world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=other.order_id, volunteer_ids=[busy.id]),
                             metadata=admin, timeout=10)

    order = world.place(resident, "repair", wanted_at=_next_saturday_morning())
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)
    reply = world.stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=order.order_id, limit=10),
                                         metadata=admin, timeout=10)
    ranked = [(cand.volunteer_id, cand.score) for cand in reply.candidates]
    assert reply.eligible == 3
    assert ranked == [(near.id, 40 + 15), (busy.id, 40 - 10 + 15), (neighbour.id, 25 - 10)]
    reasons = {cand.volunteer_id: {f.factor: f.explanation for f in cand.factors} for cand in reply.candidates}
    assert reasons[near.id]["distance"].startswith("同一小院") and yard.name in reasons[near.id]["distance"]
    assert reasons[busy.id]["load"] == "当前在办 1 单"
    assert reasons[near.id]["availability"] == "周六上午通常有空"
    assert reasons[neighbour.id]["availability"] == "周六上午通常没空"
    assert reasons[neighbour.id]["distance"].startswith("同一实践站")
    assert reasons[near.id]["skills"] == "具备所需技能：家电维修"
    assert reply.candidates[1].active_orders == 1 and reply.candidates[0].volunteer_number

    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="limit"):
        world.stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=order.order_id, limit=51), metadata=admin,
                                     timeout=10)


def _publish_certification(producer, source: EventSource, district_id: str, payload, version: int) -> None:
    cert = payload.certification
    entry = source.new(payload, district_id=district_id, aggregate_type="certification",
                       aggregate_id=cert.certification_id, version=version)
    producer.send(entry["topic"], key=entry["key"].encode(), value=entry["value"],
                  headers=record_headers(entry)).get(timeout=15)


def test_certifications_from_training_decide_who_qualifies_until_revoked_or_expired(world, stack, shifted):
    yard = world.courtyards[3]
    valid, expired, revoked = world.volunteers(yard, 3, skills=[], name="急救")
    now = dt.datetime.now(dt.UTC)

    def cert(volunteer, cert_id: str, expires: dt.datetime) -> training.Certification:
        message = training.Certification(certification_id=cert_id, volunteer_id=volunteer.id, code="first_aid",
                                         name="红十字救护员证")
        message.granted_at.FromDatetime(now - dt.timedelta(days=10))
        message.expires_at.FromDatetime(expires)
        return message

    producer = make_producer(stack.kafka, "ordering-tests-training")
    source = EventSource("training")
    suffix = world.district.id
    try:
        _publish_certification(producer, source, world.district.id, training.CertificationGranted(
            certification=cert(valid, f"cert_a_{suffix}", now + dt.timedelta(days=30))), 1)
        _publish_certification(producer, source, world.district.id, training.CertificationGranted(
            certification=cert(expired, f"cert_b_{suffix}", now - dt.timedelta(days=1))), 1)
        revoked_cert = cert(revoked, f"cert_c_{suffix}", now + dt.timedelta(days=300))
        _publish_certification(producer, source, world.district.id,
                               training.CertificationGranted(certification=revoked_cert), 1)
        _publish_certification(producer, source, world.district.id,
                               training.CertificationRevoked(certification=revoked_cert, reason="复训未通过"), 2)
    finally:
        producer.close()
    wait_until(lambda: world.db.certifications.count_documents({"district_id": world.district.id, "state": "revoked"})
               == 1 and world.db.certifications.count_documents({"district_id": world.district.id}) == 3,
               what="certifications in ordering's read model")

    _, resident = world.resident(yard)
    order = world.place(resident, "first_aid")
    admin = world.as_admin(yard)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)
    reply = world.stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=order.order_id), metadata=admin,
                                         timeout=10)
    assert [cand.volunteer_id for cand in reply.candidates] == [valid.id]
    assert {f.factor: f.explanation for f in reply.candidates[0].factors}["certifications"] == "持有所需证书：first_aid"
    for volunteer in (expired, revoked):
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="no valid certification first_aid"):
            world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[volunteer.id]),
                                     metadata=admin, timeout=10)

    # a month later the last certificate has lapsed too, even before training announces it
    shifted.advance(31 * 24 * 3600)
    assert world.stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=order.order_id), metadata=admin,
                                        timeout=10).eligible == 0
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="first_aid"):
        world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[valid.id]),
                                 metadata=admin, timeout=10)
