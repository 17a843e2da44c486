"""The loop across real services, nothing published by hand: a certification training grants
(enroll → check in → pass the quiz) makes a volunteer eligible in ordering's matching; the hours a unit confirms in ordering reach the
volunteer's account in points, once, however many events about the order follow; the photos a
volunteer checks out with show in the order's history in media, for the resident."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from tests.media.helpers import MediaClient, jpeg
from tests.support.grpc_helpers import bearer, or_not_found
from tests.training.support import RIGHT_ANSWERS, first_aid_content
from wenming.common.v1 import common_pb2 as c
from wenming.media.v1 import media_pb2 as med
from wenming.ordering.v1 import ordering_pb2 as pb
from wenming.points.v1 import points_pb2 as pts
from wenming.points.v1 import points_pb2_grpc
from wenming.training.v1 import training_pb2 as trn
from wenming.training.v1 import training_pb2_grpc
from wenming.training.v1 import types_pb2 as trn_types

from .support import S
from tests.support.waiting import wait_until


@pytest.fixture(scope="module")
def peers(stack, ordering):
    """training and points as real processes beside this session's ordering (ports apart from the
    ones their own test packages use)."""
    procs = [stack.service(name, port_offset=2, log_name=f"{name}-for-ordering")
             for name in ("training", "points", "media")]
    for proc in procs:
        proc.start()
    try:
        for proc in procs:
            proc.wait_serving(90)
        yield {proc.definition.name: proc for proc in procs}
    finally:
        for proc in procs:
            proc.stop()


@pytest.fixture(scope="module")
def training_stub(peers):
    with grpc.insecure_channel(peers["training"].grpc_target) as channel:
        yield training_pb2_grpc.TrainingServiceStub(channel)


@pytest.fixture(scope="module")
def points_stub(peers):
    with grpc.insecure_channel(peers["points"].grpc_target) as channel:
        yield points_pb2_grpc.PointsServiceStub(channel)


def _once_known(call):
    """`call()`'s answer once the service has learnt what it names from registration's events
    (until then it answers NOT_FOUND)."""
    return wait_until(lambda: or_not_found(call), timeout=60,
                      what="the peer to learn the district from registration's events")


def test_a_certification_granted_by_training_makes_the_volunteer_eligible(world, training_stub):
    yard, station = world.courtyards[0], world.stations[0]
    trainee = world.volunteer(yard, skills=[], name="救护学员")
    _, resident = world.resident(yard)
    order = world.place(resident, "first_aid")
    admin = world.as_admin(yard)
    world.stub.AcknowledgeOrder(pb.AcknowledgeOrderRequest(order_id=order.order_id), metadata=admin, timeout=10)

    def candidates() -> list[str]:
        reply = world.stub.SuggestVolunteers(pb.SuggestVolunteersRequest(order_id=order.order_id, limit=50),
                                             metadata=admin, timeout=10)
        return [cand.volunteer_id for cand in reply.candidates]

    assert trainee.id not in candidates()

    # training: enroll → check in with the station's rotating code → pass the quiz → certified
    _once_known(lambda: training_stub.GetTrainingRecord(trn.GetTrainingRecordRequest(volunteer_id=trainee.id),
                                                        metadata=world.as_center(), timeout=5))
    # (units, volunteers and teams travel in different partitions: each may arrive later than another)
    course = _once_known(lambda: training_stub.CreateCourse(trn.CreateCourseRequest(content=first_aid_content()),
                                                            metadata=world.as_center(), timeout=10)).course
    trainer = _once_known(lambda: training_stub.RegisterTrainer(trn.RegisterTrainerRequest(
        name="李医生", title="主治医师", specialties=[c.SKILL_EMERGENCY_RESCUE], served_unit_ids=[world.center.unit_id]),
        metadata=world.as_center(), timeout=10)).trainer
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    request = trn.ScheduleSessionRequest(course_id=course.course_id, unit_id=station.unit_id,
                                         trainer_id=trainer.trainer_id, mode=trn_types.SESSION_MODE_OFFLINE,
                                         location="实践站培训室", capacity=10)
    request.starts_at.FromDatetime(start)
    request.ends_at.FromDatetime(start + dt.timedelta(hours=4))
    station_admin = world.as_admin(station)
    session = _once_known(lambda: training_stub.ScheduleSession(request, metadata=station_admin, timeout=10)).session
    training_stub.Enroll(trn.EnrollRequest(session_id=session.session_id), metadata=trainee.token, timeout=10)
    code = training_stub.IssueCheckinCode(trn.IssueCheckinCodeRequest(session_id=session.session_id),
                                          metadata=station_admin, timeout=10).code
    training_stub.CheckIn(trn.CheckInRequest(session_id=session.session_id, code=code), metadata=trainee.token,
                          timeout=10)
    assert trainee.id not in candidates()  # attending is not enough: the quiz decides
    passed = training_stub.SubmitQuiz(trn.SubmitQuizRequest(session_id=session.session_id, answers=RIGHT_ANSWERS),
                                      metadata=trainee.token, timeout=10)
    assert passed.passed

    # CertificationGranted → ordering's read model → the trainee qualifies and can be dispatched
    wait_until(lambda: trainee.id in candidates(), timeout=60, what="the certified volunteer among the candidates")
    dispatched = world.stub.DispatchOrder(pb.DispatchOrderRequest(order_id=order.order_id, volunteer_ids=[trainee.id]),
                                          metadata=admin, timeout=10).order
    assert dispatched.status == S.ORDER_STATUS_DISPATCHED


def test_confirmed_hours_reach_the_volunteers_account_once(world, points_stub, shifted):
    yard = world.courtyards[1]
    volunteer = world.volunteer(yard, name="理发志愿者")
    _, resident = world.resident(yard)
    order = world.served_order(resident, volunteer, shifted, minutes=45)
    holder = world.holder(order)
    world.stub.ConfirmOrderHours(pb.ConfirmOrderHoursRequest(order_id=order.order_id), metadata=holder, timeout=10)
    world.stub.RateOrder(pb.RateOrderRequest(order_id=order.order_id, rating=5, comment="手艺好，态度好"),
                         metadata=resident, timeout=10)
    closed = world.stub.CloseOrder(pb.CloseOrderRequest(order_id=order.order_id), metadata=holder, timeout=10).order
    assert closed.status == S.ORDER_STATUS_CLOSED

    station_admin = bearer(world.tree.admins[world.stations[0].unit_id])

    def account():
        return points_stub.GetAccount(pts.GetAccountRequest(account_id=volunteer.id), metadata=station_admin,
                                      timeout=5).account

    credited = _once_known(lambda: (a := account()).verified_minutes > 0 and a)
    assert credited.verified_minutes == 45 and credited.manual_minutes == 0
    # the rating and closing that followed add no hours; nothing is credited twice
    entries = points_stub.ListLedgerEntries(pts.ListLedgerEntriesRequest(account_id=volunteer.id,
                                                                         book=pts.BOOK_VERIFIED_MINUTES),
                                            metadata=station_admin, timeout=5).entries
    assert [(e.amount, e.cause_type, e.cause_id) for e in entries] == [
        (45, "wenming.ordering.v1.OrderHoursConfirmed", order.order_id)]
    assert account().verified_minutes == 45


def test_completion_photos_show_in_the_orders_history_in_media(world, peers, shifted):
    media = MediaClient(peers["media"])
    try:
        yard = world.courtyards[2]
        volunteer = world.volunteer(yard, name="摄影志愿者")
        _, resident = world.resident(yard)
        raw_token = dict(volunteer.token)["authorization"].removeprefix("Bearer ")
        # media learns the volunteer (and the units) from registration's events
        photo = _once_known(lambda: media.upload(raw_token, jpeg(320, 240, (9, 8, 7)), "服务后.jpg")).asset
        order = world.accepted_order(resident, volunteer)
        world.stub.CheckInOrder(pb.CheckInOrderRequest(order_id=order.order_id, code=world.code(order)),
                                metadata=volunteer.token, timeout=10)
        shifted.advance(40 * 60)
        world.stub.CheckOutOrder(pb.CheckOutOrderRequest(order_id=order.order_id, code=world.code(order),
                                                         report="已为老人理发", photo_asset_ids=[photo.asset_id]),
                                 metadata=volunteer.token, timeout=10)

        def photos() -> list[str]:
            reply = media.stub.ListAssets(med.ListAssetsRequest(linked_order_id=order.order_id), metadata=resident,
                                          timeout=10)
            return [a.asset_id for a in reply.assets]

        # OrderAccepted and OrderCompleted → media links the photo and lets the resident see it
        assert wait_until(lambda: photos() == [photo.asset_id], timeout=60, what="the photo in the order's history")
        outsider = world.resident(world.courtyards[3])[1]
        with pytest.raises(grpc.RpcError) as refused:
            media.stub.ListAssets(med.ListAssetsRequest(linked_order_id=order.order_id), metadata=outsider, timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    finally:
        media.close()


def test_attendance_recorded_at_the_desk_earns_the_residents_points(world, points_stub):
    yard = world.courtyards[3]
    admin = world.as_admin(yard)
    start = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=20)
    request = pb.PlanActivityRequest(title="小院讲堂：防范电信诈骗", category=c.SERVICE_CATEGORY_LECTURE_SCIENCE,
                                     resident_capacity=10)
    request.starts_at.FromDatetime(start)
    request.ends_at.FromDatetime(start + dt.timedelta(hours=1))
    aid = world.stub.PlanActivity(request, metadata=admin, timeout=10).activity.activity_id
    world.stub.PublishActivity(pb.PublishActivityRequest(activity_id=aid), metadata=admin, timeout=10)
    resident_id, _ = world.resident(yard, name="褚奶奶")
    world.wait_resident_known(resident_id)
    world.stub.RecordActivityAttendance(pb.RecordActivityAttendanceRequest(activity_id=aid, resident_id=resident_id),
                                        metadata=admin, timeout=10)

    def account():
        return points_stub.GetAccount(pts.GetAccountRequest(account_id=resident_id), metadata=admin,
                                      timeout=5).account

    credited = _once_known(lambda: (a := account()).points > 0 and a)
    rules = points_stub.GetPointRules(pts.GetPointRulesRequest(), metadata=admin, timeout=5).rules
    assert credited.points == rules.attendance_points > 0
