"""OWASP API1 (BOLA): for every RPC that takes an object id, another user's token is refused;
unknown ids are NOT_FOUND, malformed ones INVALID_ARGUMENT, and no token is UNAUTHENTICATED."""

from __future__ import annotations

import datetime as dt

import grpc
import pytest

from tests.support.grpc_helpers import bearer, expect_error
from tests.support.registration import District
from wenming.media.v1 import media_pb2 as pb

from .helpers import fake_video, jpeg
from .test_live_courses import schedule_request, ts
from .test_publishing import content


@pytest.fixture(scope="module")
def objects(media_client, world):
    """A volunteer's photo, a station's draft article and its live course."""
    station_admin = world.admin(world.tree.stations[0])
    photo = media_client.upload(world.volunteer_token, jpeg(), "mine.jpg").asset
    article = media_client.stub.CreateArticle(pb.CreateArticleRequest(
        unit_id=world.tree.stations[0].unit_id, content=content()), metadata=bearer(station_admin), timeout=10).article
    media_client.stub.SubmitArticle(pb.SubmitArticleRequest(article_id=article.article_id),
                                    metadata=bearer(station_admin), timeout=10)
    course = media_client.stub.ScheduleLiveCourse(schedule_request(
        starts_at=ts(dt.timedelta(hours=3)), ends_at=ts(dt.timedelta(hours=4))), metadata=bearer(station_admin),
        timeout=10).live_course
    return photo, article, course


@pytest.fixture(scope="module")
def elsewhere(registration):
    """The center admin of another district: powerful, but not here."""
    district = District(registration.grpc_target, registration.env)
    yield district.center_admin_token
    district.close()


def calls(photo: pb.Asset, article: pb.Article, course: pb.LiveCourse):
    s = pb
    return {
        "GetAsset": s.GetAssetRequest(asset_id=photo.asset_id),
        "DownloadAsset": s.DownloadAssetRequest(asset_id=photo.asset_id),
        "LinkAsset": s.LinkAssetRequest(asset_id=photo.asset_id, activity_id="act_1"),
        "DeleteAsset": s.DeleteAssetRequest(asset_id=photo.asset_id, reason="越权删除"),
        "GetArticle": s.GetArticleRequest(article_id=article.article_id),
        "UpdateArticle": s.UpdateArticleRequest(article_id=article.article_id, expected_version=article.version,
                                                content=content()),
        "SubmitArticle": s.SubmitArticleRequest(article_id=article.article_id),
        "ReviewArticle": s.ReviewArticleRequest(article_id=article.article_id, decision=s.REVIEW_DECISION_APPROVE),
        "WithdrawArticle": s.WithdrawArticleRequest(article_id=article.article_id, reason="越权"),
        "UpdateHonorRoll": s.UpdateHonorRollRequest(
            article_id=article.article_id, expected_version=article.version, period="2026年第四季度",
            entries=[s.HonorRollEntry(resident_name="张三", deed="拾金不昧，归还失主。")]),
        "CancelLiveCourse": s.CancelLiveCourseRequest(live_course_id=course.live_course_id, reason="越权"),
        "AttachReplay": s.AttachReplayRequest(live_course_id=course.live_course_id, asset_id=photo.asset_id),
    }


def invoke(media_client, method: str, request, token: str):
    result = getattr(media_client.stub, method)(request, metadata=bearer(token), timeout=10)
    return list(result) if method == "DownloadAsset" else result


def test_another_users_token_is_refused_for_every_rpc_taking_an_object_id(media_client, world, objects, elsewhere):
    photo, article, course = objects
    other_station_admin = world.admin(world.tree.stations[1])
    for method, request in calls(photo, article, course).items():
        for who, token in (("other volunteer", world.other_volunteer_token), ("resident", world.resident_token),
                           ("other station's admin", other_station_admin), ("another district", elsewhere)):
            try:
                invoke(media_client, method, request, token)
            except grpc.RpcError as err:
                assert err.code() == grpc.StatusCode.PERMISSION_DENIED, f"{method} as {who}: {err.details()}"
            else:
                raise AssertionError(f"{method} as {who} was allowed")
    # live courses are visible to the whole district, but not beyond it
    for method, request in (("GetLiveCourse", pb.GetLiveCourseRequest(live_course_id=course.live_course_id)),
                            ("SignUpLiveCourse", pb.SignUpLiveCourseRequest(live_course_id=course.live_course_id)),
                            ("CancelLiveCourseSignUp",
                             pb.CancelLiveCourseSignUpRequest(live_course_id=course.live_course_id))):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            invoke(media_client, method, request, elsewhere)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        media_client.stub.ListAssets(pb.ListAssetsRequest(unit_id=world.tree.stations[0].unit_id),
                                     metadata=bearer(other_station_admin), timeout=10)
    # uploading into another unit: refused inside the district, unknown outside it
    station0 = world.tree.stations[0].unit_id
    for token in (world.other_volunteer_token, other_station_admin):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            media_client.upload(token, jpeg(), "x.jpg", unit_id=station0)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        media_client.upload(elsewhere, jpeg(), "x.jpg", unit_id=station0)
    # listing by an unknown order shows a user only their own uploads
    media_client.stub.LinkAsset(pb.LinkAssetRequest(asset_id=photo.asset_id, order_id="ord_unknown_1"),
                                metadata=bearer(world.volunteer_token), timeout=10)
    assert list(media_client.stub.ListAssets(pb.ListAssetsRequest(linked_order_id="ord_unknown_1"),
                                             metadata=bearer(world.other_volunteer_token), timeout=10).assets) == []
    for who in (world.other_volunteer_token, world.resident_token, other_station_admin, elsewhere):
        status, _, _ = media_client.http("GET", photo.content_path, who)
        assert status == 403
    # while the owner and the admins above it are served
    assert media_client.http("GET", photo.content_path, world.volunteer_token)[0] == 200
    assert media_client.http("GET", photo.content_path, world.admin(world.tree.stations[0]))[0] == 200


def test_unknown_malformed_and_missing_ids_and_tokens(media_client, world):
    token = world.volunteer_token
    for method, request in (("GetAsset", pb.GetAssetRequest(asset_id="ast_missing")),
                            ("DownloadAsset", pb.DownloadAssetRequest(asset_id="ast_missing")),
                            ("GetArticle", pb.GetArticleRequest(article_id="art_missing")),
                            ("GetLiveCourse", pb.GetLiveCourseRequest(live_course_id="live_missing"))):
        with expect_error(grpc.StatusCode.NOT_FOUND):
            invoke(media_client, method, request, token)
    for method, request, field in (("GetAsset", pb.GetAssetRequest(asset_id="../etc"), "asset_id"),
                                   ("GetArticle", pb.GetArticleRequest(article_id=""), "article_id"),
                                   ("SignUpLiveCourse", pb.SignUpLiveCourseRequest(live_course_id="a b"),
                                    "live_course_id")):
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            invoke(media_client, method, request, token)
    with expect_error(grpc.StatusCode.UNAUTHENTICATED):
        media_client.stub.GetAsset(pb.GetAssetRequest(asset_id="ast_missing"), timeout=10)
    assert media_client.http("GET", "/v1/assets/ast_missing/content", token)[0] == 404
    assert media_client.http("GET", "/v1/assets/ast_missing/content", None)[0] == 401
    assert media_client.http("GET", "/v1/assets/ast_missing/content", "not-a-token")[0] == 401


def test_soft_delete_keeps_the_asset_with_its_audit_trail(media_client, world, media_events):
    owner = world.volunteer_token
    data = fake_video(200_000)
    asset = media_client.upload(owner, data, "误传.mp4").asset
    deleted = media_client.stub.DeleteAsset(pb.DeleteAssetRequest(asset_id=asset.asset_id, reason="上传错了"),
                                            metadata=bearer(owner), timeout=10).asset
    assert deleted.status == pb.ASSET_STATUS_DELETED and deleted.delete_reason == "上传错了"
    assert [(e.action, e.note) for e in deleted.audit] == [("stored", ""), ("deleted", "上传错了")]
    assert all(e.actor_id for e in deleted.audit)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        media_client.download(owner, asset.asset_id)
    assert media_client.http("GET", asset.content_path, owner)[0] == 409
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        media_client.stub.DeleteAsset(pb.DeleteAssetRequest(asset_id=asset.asset_id, reason="再删"),
                                      metadata=bearer(owner), timeout=10)
    mine = media_client.stub.ListAssets(pb.ListAssetsRequest(), metadata=bearer(owner), timeout=10).assets
    assert asset.asset_id not in [a.asset_id for a in mine]
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        media_client.stub.ListAssets(pb.ListAssetsRequest(include_deleted=True), metadata=bearer(owner), timeout=10)
    audit_view = media_client.stub.ListAssets(pb.ListAssetsRequest(include_deleted=True),
                                              metadata=bearer(world.admin(world.tree.courtyards[0])), timeout=10)
    listed = [a for a in audit_view.assets if a.asset_id == asset.asset_id]
    assert listed and listed[0].status == pb.ASSET_STATUS_DELETED and len(listed[0].audit) == 2

    events = [(e, p) for e, p, _ in media_events.events(world.district.id, at_least=2, timeout=20)
              if e.aggregate_id == asset.asset_id]
    assert [type(p).__name__ for _, p in events] == ["AssetStored", "AssetDeleted"]
    stored = events[0][1]
    assert stored.asset.size_bytes == len(data) and stored.asset.kind == pb.ASSET_KIND_VIDEO
    assert "误传" not in str(stored)  # file names (possibly personal) stay out of events
    assert [e.aggregate_version for e, _ in events] == [1, 2]
