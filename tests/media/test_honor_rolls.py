"""善行义举榜 over real gRPC: a station admin compiles a roll (idempotency key), it goes through the
article review workflow (screening, 四眼原则, a rejection with its reason, an edit, approval), then
residents read it in the feed and the volunteer finds it on their own record. Names are masked and
never stored as typed; other units' admins, volunteers and residents are refused and leave nothing
written; a commendation is linked from points' events."""

from __future__ import annotations

import uuid

import grpc
import pytest

from tests.support.events import RelayPublisher
from tests.support.grpc_helpers import bearer, expect_error
from tests.support.waiting import wait_until
from wenming.media.v1 import events_pb2 as ev
from wenming.media.v1 import media_pb2 as pb
from wenming.points.v1 import events_pb2 as points_events
from wenming.points.v1 import points_pb2 as points_pb

A = pb.ArticleStatus
DEED = "连续三年每周为独居老人上门送餐，风雨无阻。"
RESIDENT_DEED = "深夜拾到钱包，原物归还失主。"


@pytest.fixture(scope="module")
def points(stack):
    """Publishes events on points' topic exactly as points' outbox relay does."""
    relay = RelayPublisher(stack.kafka, "points")

    def publish(payload, district_id: str, aggregate_id: str, version: int) -> None:
        relay.publish(payload, district_id=district_id, aggregate_type="commendation", aggregate_id=aggregate_id,
                      version=version)

    yield publish
    relay.close()


def rpc(media_client, method: str, request, token: str):
    return getattr(media_client.stub, method)(request, metadata=bearer(token), timeout=10)


def roll_request(unit_id: str, key: str, period: str = "2026年第四季度", entries=None) -> pb.CreateHonorRollRequest:
    return pb.CreateHonorRollRequest(unit_id=unit_id, period=period, summary="向身边的好人好事致敬",
                                     entries=entries or [], idempotency_key=key)


def honors(media_client, token: str, volunteer_id: str = "") -> list[pb.Honor]:
    return list(rpc(media_client, "ListHonors", pb.ListHonorsRequest(volunteer_id=volunteer_id), token).honors)


def test_an_honour_roll_from_compilation_to_publication(media_client, world, media_db, media_events, points):
    station, other_station, institute = world.tree.stations[0], world.tree.stations[1], world.tree.institute
    author, reviewer = world.admin(station), world.admin(institute)
    district_id = world.district.id

    # points recorded a commendation of the volunteer; media keeps it from the event
    commendation_id = f"comm_{uuid.uuid4().hex[:12]}"
    points(points_events.CommendationRecorded(commendation=points_pb.Commendation(
        commendation_id=commendation_id, district_id=district_id, volunteer_id=world.volunteer_id, year=2026,
        level=points_pb.COMMENDATION_LEVEL_DISTRICT, title="优秀志愿者", issuer="区文明办", awarded_on="2026-10-01")),
        district_id, commendation_id, 1)
    wait_until(lambda: media_db.commendation_refs.find_one({"_id": commendation_id}) is not None,
               what="media's copy of the commendation")
    wait_until(lambda: media_db.registry_volunteers.find_one({"_id": world.volunteer_id}) is not None,
               what="media's copy of the volunteer")

    entries = [pb.HonorRollEntry(volunteer_id=world.volunteer_id, deed=DEED, commendation_id=commendation_id),
               pb.HonorRollEntry(resident_name="张小明", deed=RESIDENT_DEED)]
    key = f"roll-{uuid.uuid4().hex[:8]}"
    before = media_db.articles.count_documents({"district_id": district_id})

    # refusals leave nothing written
    for outsider in (world.admin(other_station), world.admin(world.tree.courtyards[0]), world.volunteer_token,
                     world.resident_token):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, key, entries=entries), outsider)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="实践站"):  # courtyards do not compile rolls
        rpc(media_client, "CreateHonorRoll", roll_request(world.tree.courtyards[0].unit_id, key, entries=entries),
            author)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
        rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, "", entries=entries), author)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="entries[1].deed"):
        rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, key, entries=[
            entries[0], pb.HonorRollEntry(resident_name="张小明", deed="好")]), author)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="entries[0].volunteer_id"):  # another station's
        rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, key, entries=[
            pb.HonorRollEntry(volunteer_id=world.other_volunteer_id, deed=DEED)]), author)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="content.kind"):  # not through CreateArticle
        rpc(media_client, "CreateArticle", pb.CreateArticleRequest(unit_id=station.unit_id, content=pb.ArticleContent(
            kind=pb.ARTICLE_KIND_HONOR_ROLL, title="善行义举榜", body=DEED)), author)
    assert media_db.articles.count_documents({"district_id": district_id}) == before

    # compiled: names masked, the typed resident name kept nowhere; a retry gets the same roll
    roll = rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, key, entries=entries), author).article
    assert roll.kind == pb.ARTICLE_KIND_HONOR_ROLL and roll.status == A.ARTICLE_STATUS_DRAFT
    assert roll.title == f"{station.name}善行义举榜（2026年第四季度）" and roll.period == "2026年第四季度"
    assert [(e.shown_name, e.volunteer_id, e.commendation_title) for e in roll.honor_entries] == [
        ("测***者", world.volunteer_id, "2026年区县级优秀志愿者"), ("张*明", "", "")]
    assert not any(e.resident_name for e in roll.honor_entries)
    assert "张小明" not in str(media_db.articles.find_one({"_id": roll.article_id}))
    again = rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, key, entries=entries), author).article
    assert again.article_id == roll.article_id and again.version == roll.version
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="idempotency_key"):
        rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, key, "2026年第三季度", entries), author)
    assert media_db.articles.count_documents({"district_id": district_id}) == before + 1

    # nothing is public before approval
    get = pb.GetArticleRequest(article_id=roll.article_id)
    submit = pb.SubmitArticleRequest(article_id=roll.article_id)
    feed_request = pb.ListPublishedRequest(unit_id=world.tree.courtyards[0].unit_id, include_ancestors=True,
                                           kind=pb.ARTICLE_KIND_HONOR_ROLL)

    def in_feed() -> bool:
        return roll.article_id in [a.article_id for a in
                                   rpc(media_client, "ListPublished", feed_request, world.resident_token).articles]

    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "GetArticle", get, world.resident_token)
    assert not in_feed() and honors(media_client, world.volunteer_token) == []

    # the article workflow: submit, the author may not review it, another unit's admin neither
    assert rpc(media_client, "SubmitArticle", submit, author).article.status == A.ARTICLE_STATUS_PENDING_REVIEW
    review = pb.ReviewArticleRequest(article_id=roll.article_id, decision=pb.REVIEW_DECISION_APPROVE)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="四眼原则"):
        rpc(media_client, "ReviewArticle", review, author)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "ReviewArticle", review, world.admin(other_station))
    rejected = rpc(media_client, "ReviewArticle", pb.ReviewArticleRequest(
        article_id=roll.article_id, decision=pb.REVIEW_DECISION_REJECT, reason="第二位的事迹请写明时间地点"),
        reviewer).article
    assert rejected.status == A.ARTICLE_STATUS_REJECTED and rejected.reject_reason == "第二位的事迹请写明时间地点"
    assert not in_feed()

    # the author fixes it: through UpdateHonorRoll only, on the version they read
    fixed_entries = [entries[0], pb.HonorRollEntry(resident_name=roll.honor_entries[1].shown_name,
                                                   deed="11月3日深夜在幸福小院门口拾到钱包，原物归还失主。")]
    update = pb.UpdateHonorRollRequest(article_id=roll.article_id, expected_version=rejected.version,
                                       period="2026年第四季度", entries=fixed_entries)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        rpc(media_client, "UpdateArticle", pb.UpdateArticleRequest(
            article_id=roll.article_id, expected_version=rejected.version,
            content=pb.ArticleContent(kind=pb.ARTICLE_KIND_NEWS, title="改成新闻", body=DEED)), author)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "UpdateHonorRoll", update, world.admin(other_station))
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="版本"):
        rpc(media_client, "UpdateHonorRoll", pb.UpdateHonorRollRequest(
            article_id=roll.article_id, expected_version=1, period="2026年第四季度", entries=fixed_entries), author)
    edited = rpc(media_client, "UpdateHonorRoll", update, author).article
    assert edited.status == A.ARTICLE_STATUS_DRAFT and edited.honor_entries[1].shown_name == "张*明"
    assert edited.reject_reason == "第二位的事迹请写明时间地点"
    rpc(media_client, "SubmitArticle", submit, author)
    published = rpc(media_client, "ReviewArticle", review, reviewer).article
    assert published.status == A.ARTICLE_STATUS_PUBLISHED

    # residents read it where published content appears; the volunteer finds it on their record
    assert in_feed()
    read = rpc(media_client, "GetArticle", get, world.resident_token).article
    assert [e.shown_name for e in read.honor_entries] == ["测***者", "张*明"] and "1. 测***者（志愿者）" in read.body
    mine = honors(media_client, world.volunteer_token)
    assert [(h.article_id, h.deed, h.commendation_title, h.period) for h in mine] == [
        (roll.article_id, DEED, "2026年区县级优秀志愿者", "2026年第四季度")]
    assert [h.article_id for h in honors(media_client, reviewer, world.volunteer_id)] == [roll.article_id]
    assert honors(media_client, world.admin(other_station), world.volunteer_id) == []  # not their subtree's roll
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        honors(media_client, world.other_volunteer_token, world.volunteer_id)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="volunteer_id"):
        honors(media_client, world.resident_token)

    events = [(e, p) for e, p, _ in media_events.events(district_id, at_least=6, timeout=20, settle=1.0)
              if e.aggregate_id == roll.article_id]
    assert [type(p).__name__ for _, p in events] == [
        "ArticleDrafted", "ArticleSubmitted", "ArticleRejected", "ArticleUpdated", "ArticleSubmitted",
        "ArticlePublished"]
    published_event = events[-1][1]
    assert isinstance(published_event, ev.ArticlePublished)
    assert list(published_event.article.honored_volunteer_ids) == [world.volunteer_id]
    assert published_event.article.kind == pb.ARTICLE_KIND_HONOR_ROLL
    assert DEED not in str(published_event) and "张" not in str(published_event)


def test_a_roll_is_screened_and_a_revoked_commendation_is_refused(media_client, world, media_db, points):
    station, author = world.tree.stations[0], world.admin(world.tree.stations[0])
    policy = rpc(media_client, "GetScreeningPolicy", pb.GetScreeningPolicyRequest(),
                 world.district.center_admin_token).policy
    word = policy.words[0]
    roll = rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, f"roll-{uuid.uuid4().hex[:8]}", entries=[
        pb.HonorRollEntry(resident_name="李四", deed=f"劝阻邻里{word}，化解矛盾。")]), author).article
    submit = pb.SubmitArticleRequest(article_id=roll.article_id)
    if policy.mode == pb.SCREENING_MODE_BLOCK:
        with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="敏感词"):
            rpc(media_client, "SubmitArticle", submit, author)
    else:
        assert word in rpc(media_client, "SubmitArticle", submit, author).article.flagged_words

    commendation_id = f"comm_{uuid.uuid4().hex[:12]}"
    revoked = points_pb.Commendation(commendation_id=commendation_id, district_id=world.district.id,
                                     volunteer_id=world.volunteer_id, year=2025, title="优秀志愿者",
                                     level=points_pb.COMMENDATION_LEVEL_CITY, revoked=True)
    points(points_events.CommendationRevoked(commendation=revoked), world.district.id, commendation_id, 2)
    wait_until(lambda: media_db.commendation_refs.find_one({"_id": commendation_id}) is not None,
               what="media's copy of the revoked commendation")
    before = media_db.articles.count_documents({"district_id": world.district.id})
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="已撤销"):
        rpc(media_client, "CreateHonorRoll", roll_request(station.unit_id, f"roll-{uuid.uuid4().hex[:8]}", entries=[
            pb.HonorRollEntry(volunteer_id=world.volunteer_id, deed=DEED, commendation_id=commendation_id)]), author)
    assert media_db.articles.count_documents({"district_id": world.district.id}) == before
