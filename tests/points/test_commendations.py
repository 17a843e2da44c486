"""表彰/嘉许 over the real stack: a station's admin records a volunteer's commendation (a retry with
the key records nothing new), the volunteer and the admins above list them newest first, an admin
revokes one (the record stays, marked revoked), the events are read off Kafka; certificates show
the volunteer's unrevoked commendations and stop showing a revoked one; another station's admin,
the volunteer and a resident are refused; bad input names the field and writes nothing."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
import uuid

import grpc
import pytest

from services.common.clock import CHINA
from tests.points.support import POINTS_TOPIC, account_known
from tests.support.events import TopicTap
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import new_phone
from tests.support.waiting import wait_until
from wenming.common.v1 import common_pb2 as c
from wenming.points.v1 import events_pb2 as events
from wenming.points.v1 import points_pb2 as pb

L = pb.CommendationLevel
DENIED, INVALID, NOT_FOUND = (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.INVALID_ARGUMENT,
                              grpc.StatusCode.NOT_FOUND)
LAST_YEAR = dt.datetime.now(CHINA).year - 1


@pytest.fixture(scope="module")
def world(module_district, points, stub):
    d = module_district
    tree = d.small_tree()
    phones = [new_phone(), new_phone()]
    # both serve a courtyard of station 0; the second one holds certificates
    mine = d.volunteer(tree.courtyards[0].unit_id, phone=phones[0], name="表彰测试甲")
    holder = d.volunteer(tree.courtyards[1].unit_id, phone=phones[1], name="表彰测试乙")
    admins = {name: bearer(tree.admins[unit.unit_id]) for name, unit in (
        ("station0", tree.stations[0]), ("station1", tree.stations[1]), ("institute", tree.institute),
        ("courtyard0", tree.courtyards[0]))}
    # points knows both volunteers once registration's events reached it
    assert wait_until(lambda: all(account_known(stub, v.volunteer_id, admins["station0"]) for v in (mine, holder)), 30)
    return dict(district=d, tree=tree, mine=mine, holder=holder, admins=admins,
                mine_token=bearer(d.volunteer_token(phones[0])), holder_token=bearer(d.volunteer_token(phones[1])))


def _request(volunteer_id: str, **changes) -> pb.RecordCommendationRequest:
    fields = dict(volunteer_id=volunteer_id, year=LAST_YEAR, level=L.COMMENDATION_LEVEL_DISTRICT, title="优秀志愿者",
                  issuer="区文明办", awarded_on=f"{LAST_YEAR}-12-05", idempotency_key=f"k-{uuid.uuid4().hex[:8]}")
    return pb.RecordCommendationRequest(**{**fields, **changes})


def _listed(stub, metadata, volunteer_id: str = "", page_size: int = 0) -> list[pb.Commendation]:
    seen, token = [], ""
    while True:
        reply = stub.ListCommendations(pb.ListCommendationsRequest(
            volunteer_id=volunteer_id, page=c.PageRequest(page_size=page_size, page_token=token)),
            metadata=metadata, timeout=5)
        seen += list(reply.commendations)
        token = reply.page.next_page_token
        if not token:
            return seen


def test_record_list_revoke_and_the_events_on_kafka(stub, world, stack, points_db):
    tap = TopicTap(stack.kafka, POINTS_TOPIC)
    mine, admins, tree = world["mine"], world["admins"], world["tree"]
    vid = mine.volunteer_id
    try:
        first = _request(vid, idempotency_key="cmd-first")
        recorded = stub.RecordCommendation(first, metadata=admins["station0"], timeout=5).commendation
        assert (recorded.volunteer_id, recorded.year, recorded.level, recorded.title, recorded.issuer,
                recorded.awarded_on) == (vid, LAST_YEAR, L.COMMENDATION_LEVEL_DISTRICT, "优秀志愿者", "区文明办",
                                         f"{LAST_YEAR}-12-05")
        assert recorded.commendation_id.startswith("comm_") and recorded.district_id == world["district"].id
        assert recorded.unit_id == tree.stations[0].unit_id and recorded.recorded_by and recorded.recorded_at.seconds
        assert (recorded.revoked, recorded.version) == (False, 1)

        # a retry with the key answers the first record and writes nothing new
        again = stub.RecordCommendation(first, metadata=admins["station0"], timeout=5).commendation
        assert again == recorded
        assert points_db["commendations"].count_documents({"volunteer_id": vid}) == 1
        # the key used for something else is refused by name
        with expect_error(INVALID, field="idempotency_key"):
            stub.RecordCommendation(_request(vid, idempotency_key="cmd-first", title="最美志愿者"),
                                    metadata=admins["station0"], timeout=5)

        # the institute records an older, higher one
        older = stub.RecordCommendation(_request(vid, year=LAST_YEAR - 1, level=L.COMMENDATION_LEVEL_CITY,
                                                 title="学雷锋志愿服务先进个人", issuer="市文明办",
                                                 awarded_on=f"{LAST_YEAR - 1}-03-05"),
                                        metadata=admins["institute"], timeout=5).commendation
        assert older.unit_id == tree.institute.unit_id
        newest_first = [recorded.commendation_id, older.commendation_id]
        assert [x.commendation_id for x in _listed(stub, world["mine_token"])] == newest_first
        assert [x.commendation_id for x in _listed(stub, world["mine_token"], vid, page_size=1)] == newest_first
        for admin in (admins["station0"], admins["institute"], admins["courtyard0"],
                      world["district"].as_center()):
            assert [x.commendation_id for x in _listed(stub, admin, vid)] == newest_first

        # revoked with a reason: the record stays, marked
        revoked = stub.RevokeCommendation(pb.RevokeCommendationRequest(
            commendation_id=recorded.commendation_id, reason="评选材料有误"), metadata=admins["station0"],
            timeout=5).commendation
        assert (revoked.revoked, revoked.revoke_reason, revoked.version) == (True, "评选材料有误", 2)
        assert revoked.revoked_by == recorded.recorded_by and revoked.revoked_at.seconds
        listed = _listed(stub, world["mine_token"])
        assert [(x.commendation_id, x.revoked) for x in listed] == [(recorded.commendation_id, True),
                                                                    (older.commendation_id, False)]
        assert points_db["commendations"].count_documents({"volunteer_id": vid}) == 2
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="已撤销"):
            stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id=recorded.commendation_id,
                                                                 reason="再撤一次"), metadata=admins["institute"],
                                    timeout=5)

        # the events, off the topic: two recorded (not three: the retry queued nothing), one revoked
        def commendation_events(settle: float = 0.0) -> list:
            return [(e, p) for e, p, _ in tap.events(world["district"].id, settle=settle)
                    if e.aggregate_type == "commendation"]

        assert wait_until(lambda: len(commendation_events()) >= 3, 20), "commendation events did not reach Kafka"
        found = commendation_events(settle=1.5)  # and no more arrive
        by_type = sorted((e.event_type.rsplit(".", 1)[1], e.aggregate_id, e.aggregate_version) for e, _ in found)
        assert by_type == sorted([("CommendationRecorded", recorded.commendation_id, 1),
                                  ("CommendationRecorded", older.commendation_id, 1),
                                  ("CommendationRevoked", recorded.commendation_id, 2)])
        payloads = {type(p).__name__: p for _, p in found if p.commendation.commendation_id == recorded.commendation_id}
        assert isinstance(payloads["CommendationRecorded"], events.CommendationRecorded)
        assert payloads["CommendationRecorded"].commendation == recorded
        assert payloads["CommendationRevoked"].commendation == revoked
        assert mine.name not in str([p for _, p in found])  # no personal data in events
    finally:
        tap.close()


def test_certificates_show_unrevoked_commendations_and_stop_once_revoked(stub, world, feed, points):
    holder, admins, tree, d = world["holder"], world["admins"], world["tree"], world["district"]
    vid = holder.volunteer_id
    # the station recorded ten hours of the volunteer's, and issues a certificate of them
    order = feed.order(f"ord_{uuid.uuid4().hex[:12]}", courtyard=tree.courtyards[1], handling=tree.stations[0])
    feed.send(feed.hours_confirmed(d.id, order, [(vid, 600, c.HOURS_SOURCE_VERIFIED)], tree.stations[0]))
    assert wait_until(lambda: stub.GetAccount(pb.GetAccountRequest(account_id=vid), metadata=admins["station0"],
                                            timeout=5).account.verified_minutes == 600, 30)
    number = stub.IssueCertificate(pb.IssueCertificateRequest(volunteer_id=vid, idempotency_key="cert-comm"),
                                   metadata=admins["station0"], timeout=10).certificate.facts.number
    assert list(stub.VerifyCertificate(pb.VerifyCertificateRequest(number=number), timeout=5).facts.commendations) \
        == []

    national = stub.RecordCommendation(_request(vid, level=L.COMMENDATION_LEVEL_NATIONAL, title="全国最美志愿者",
                                                issuer="中央文明办"), metadata=admins["institute"],
                                       timeout=5).commendation
    shown = pb.CertificateCommendation(year=LAST_YEAR, level=L.COMMENDATION_LEVEL_NATIONAL, level_label="国家级",
                                       title="全国最美志愿者", issuer="中央文明办")
    facts = stub.VerifyCertificate(pb.VerifyCertificateRequest(number=number), timeout=5).facts
    assert list(facts.commendations) == [shown]
    with urllib.request.urlopen(f"{points.http_base}/certificates/{number}", timeout=5) as reply:
        body = json.loads(reply.read().decode())
    assert body["commendations"] == [{"year": LAST_YEAR, "level": "COMMENDATION_LEVEL_NATIONAL",
                                      "levelLabel": "国家级", "title": "全国最美志愿者", "issuer": "中央文明办"}]
    with urllib.request.urlopen(f"{points.http_base}/certificates/{number}?format=html", timeout=5) as reply:
        page = reply.read().decode()
    assert "获得表彰" in page and "全国最美志愿者" in page and "中央文明办" in page and "国家级" in page
    assert holder.name not in page and vid not in page and holder.name not in json.dumps(body, ensure_ascii=False)
    # the holder's own copy and the issuer's list show it too
    own = stub.GetCertificate(pb.GetCertificateRequest(number=number), metadata=world["holder_token"], timeout=5)
    assert list(own.certificate.facts.commendations) == [shown] and "全国最美志愿者" in own.html
    listed = stub.ListCertificates(pb.ListCertificatesRequest(volunteer_id=vid), metadata=admins["station0"],
                                   timeout=5).certificates
    assert [list(f.commendations) for f in listed] == [[shown]]

    stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id=national.commendation_id,
                                                         reason="重复登记"), metadata=admins["institute"], timeout=5)
    assert list(stub.VerifyCertificate(pb.VerifyCertificateRequest(number=number), timeout=5).facts.commendations) \
        == []
    with urllib.request.urlopen(f"{points.http_base}/certificates/{number}?format=html", timeout=5) as reply:
        page = reply.read().decode()
    assert "全国最美志愿者" not in page and "获得表彰" not in page
    own = stub.GetCertificate(pb.GetCertificateRequest(number=number), metadata=world["holder_token"], timeout=5)
    assert list(own.certificate.facts.commendations) == [] and "全国最美志愿者" not in own.html


def test_another_station_the_volunteer_and_residents_are_refused(stub, world, points_db):
    mine, admins, tree, d = world["mine"], world["admins"], world["tree"], world["district"]
    vid = mine.volunteer_id
    recorded = stub.RecordCommendation(_request(vid), metadata=admins["station0"], timeout=5).commendation
    count = points_db["commendations"].count_documents({})
    _, resident = d.resident(tree.courtyards[0].unit_id)
    refused = [
        # another station's admin: the volunteer is outside its subtree
        lambda: stub.RecordCommendation(_request(vid), metadata=admins["station1"], timeout=5),
        lambda: stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id=vid), metadata=admins["station1"],
                                       timeout=5),
        lambda: stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id=recorded.commendation_id,
                                                                     reason="越权"), metadata=admins["station1"],
                                        timeout=5),
        # the courtyard below the recording station may read but not revoke the station's record
        lambda: stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id=recorded.commendation_id,
                                                                     reason="越权"), metadata=admins["courtyard0"],
                                        timeout=5),
        # the volunteer: records nothing, revokes nothing, sees no one else's
        lambda: stub.RecordCommendation(_request(vid), metadata=world["mine_token"], timeout=5),
        lambda: stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id=recorded.commendation_id,
                                                                     reason="自己撤"), metadata=world["mine_token"],
                                        timeout=5),
        lambda: stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id=world["holder"].volunteer_id),
                                       metadata=world["mine_token"], timeout=5),
        # another user's token: the other volunteer
        lambda: stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id=vid), metadata=world["holder_token"],
                                       timeout=5),
        # residents
        lambda: stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id=vid), metadata=bearer(resident),
                                       timeout=5),
        lambda: stub.RecordCommendation(_request(vid), metadata=bearer(resident), timeout=5),
    ]
    for call in refused:
        with expect_error(DENIED):
            call()
    for call in (
        lambda: stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id="comm_nothing", reason="没有"),
                                        metadata=admins["station0"], timeout=5),
        lambda: stub.RecordCommendation(_request("vol_nobody"), metadata=admins["station0"], timeout=5),
        lambda: stub.ListCommendations(pb.ListCommendationsRequest(volunteer_id="vol_nobody"),
                                       metadata=admins["station0"], timeout=5),
    ):
        with expect_error(NOT_FOUND):
            call()
    assert points_db["commendations"].count_documents({}) == count
    still = {x.commendation_id: x for x in _listed(stub, world["mine_token"])}[recorded.commendation_id]
    assert still == recorded  # the refused revocations changed nothing


def test_bad_input_names_the_field_and_writes_nothing(stub, world, points_db):
    admin, vid = world["admins"]["station0"], world["mine"].volunteer_id
    before = points_db["commendations"].count_documents({})
    this_year = dt.datetime.now(CHINA).year
    long_title = "非常优秀的志愿者" * 400
    cases = [
        ("volunteer_id", _request("")),
        ("year", _request(vid, year=1948, awarded_on="1948-10-01")),
        ("year", _request(vid, year=this_year + 1, awarded_on=f"{this_year + 1}-01-01")),
        ("level", _request(vid, level=L.COMMENDATION_LEVEL_UNSPECIFIED)),
        ("level", _request(vid, level=42)),
        ("title", _request(vid, title="")),
        ("title", _request(vid, title=long_title)),
        ("issuer", _request(vid, issuer="区" * 31)),
        ("awarded_on", _request(vid, awarded_on=f"{LAST_YEAR - 1}-12-31")),  # outside the year
        ("awarded_on", _request(vid, awarded_on="2025/12/05")),
        ("awarded_on", _request(vid, awarded_on=f"{LAST_YEAR}-02-30")),
        ("idempotency_key", _request(vid, idempotency_key="带空格 的键")),
    ]
    for field, request in cases:
        with expect_error(INVALID, field=field) as caught:
            stub.RecordCommendation(request, metadata=admin, timeout=5)
        assert len(caught.value.details()) < 300 and long_title[:40] not in caught.value.details()
    with expect_error(INVALID, field="reason"):
        stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id="comm_x", reason=""), metadata=admin,
                                timeout=5)
    with expect_error(INVALID, field="commendation_id"):
        stub.RevokeCommendation(pb.RevokeCommendationRequest(commendation_id="not an id!", reason="理由充分"),
                                metadata=admin, timeout=5)
    with expect_error(INVALID, field="volunteer_id"):  # an admin names the volunteer
        stub.ListCommendations(pb.ListCommendationsRequest(), metadata=admin, timeout=5)
    with expect_error(INVALID, field="page.page_token"):
        stub.ListCommendations(pb.ListCommendationsRequest(page=c.PageRequest(page_token="%%")),
                               metadata=world["mine_token"], timeout=5)
    with expect_error(INVALID, field="page.page_size"):
        stub.ListCommendations(pb.ListCommendationsRequest(page=c.PageRequest(page_size=500)),
                               metadata=world["mine_token"], timeout=5)
    assert points_db["commendations"].count_documents({}) == before
