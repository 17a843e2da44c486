"""Reviewed publishing: draft → pending → published / rejected → withdrawn; only reviewers
publish, a rejection keeps its reason, sensitive words are caught, residents see only what is
published, and the feed pages newest first per unit subtree."""

from __future__ import annotations

import re

import grpc

from tests.support.grpc_helpers import bearer, expect_error
from wenming.common.v1 import common_pb2 as c
from wenming.media.v1 import events_pb2 as ev
from wenming.media.v1 import media_pb2 as pb

from .helpers import fake_video, jpeg

A = pb.ArticleStatus
BODY = "本周六上午，幸福小院组织开展“理论宣讲进小院”活动，志愿者用群众听得懂的语言宣讲惠民政策。"


def rpc(media_client, method: str, request, token: str):
    return getattr(media_client.stub, method)(request, metadata=bearer(token), timeout=10)


def content(**changes) -> pb.ArticleContent:
    fields = dict(kind=pb.ARTICLE_KIND_ACTIVITY_REPORT, title="理论宣讲进小院", summary="小院讲堂开讲啦", body=BODY)
    fields.update(changes)
    return pb.ArticleContent(**fields)


def draft(media_client, token: str, unit_id: str = "", **changes) -> pb.Article:
    return rpc(media_client, "CreateArticle", pb.CreateArticleRequest(unit_id=unit_id, content=content(**changes)),
               token).article


def review(media_client, article_id: str, token: str, decision=pb.REVIEW_DECISION_APPROVE, reason: str = ""):
    return rpc(media_client, "ReviewArticle", pb.ReviewArticleRequest(article_id=article_id, decision=decision,
                                                                      reason=reason), token).article


def publish(media_client, author: str, reviewer: str, unit_id: str, **changes) -> pb.Article:
    article = draft(media_client, author, unit_id, **changes)
    rpc(media_client, "SubmitArticle", pb.SubmitArticleRequest(article_id=article.article_id), author)
    return review(media_client, article.article_id, reviewer)


def test_the_review_workflow_end_to_end(media_client, world, media_events):
    station, institute = world.tree.stations[0], world.tree.institute
    author, reviewer = world.admin(station), world.admin(institute)
    cover = media_client.upload(author, jpeg(800, 600), "cover.jpg", unit_id=station.unit_id).asset
    photo = media_client.upload(world.volunteer_token, jpeg(640, 480, (90, 90, 200)), "现场.jpg").asset
    article = draft(media_client, author, station.unit_id, cover_asset_id=cover.asset_id,
                    asset_ids=[photo.asset_id], linked_activity_id="act_demo_1")
    assert article.status == A.ARTICLE_STATUS_DRAFT and article.unit.unit_id == station.unit_id
    assert article.author_name.endswith("管理员") and article.version == 1
    get = pb.GetArticleRequest(article_id=article.article_id)
    submit = pb.SubmitArticleRequest(article_id=article.article_id)

    # a draft is the author's and the unit admins' business only; residents see only published items
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "GetArticle", get, world.resident_token)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="草稿"):
        review(media_client, article.article_id, reviewer)
    assert rpc(media_client, "SubmitArticle", submit, author).article.status == A.ARTICLE_STATUS_PENDING_REVIEW

    # only reviewers publish: admins of the unit or above, never the author
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="四眼原则"):
        review(media_client, article.article_id, author)
    for outsider in (world.admin(world.tree.stations[1]), world.volunteer_token, world.resident_token,
                     world.admin(world.tree.courtyards[0])):
        with expect_error(grpc.StatusCode.PERMISSION_DENIED):
            review(media_client, article.article_id, outsider)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="reason"):
        review(media_client, article.article_id, reviewer, pb.REVIEW_DECISION_REJECT)
    rejected = review(media_client, article.article_id, reviewer, pb.REVIEW_DECISION_REJECT, "封面照片不清晰，请更换")
    assert rejected.status == A.ARTICLE_STATUS_REJECTED and rejected.reject_reason == "封面照片不清晰，请更换"
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):
        review(media_client, article.article_id, reviewer)

    # the author edits (optimistic version) and resubmits; the reason stays on record
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="版本"):
        rpc(media_client, "UpdateArticle", pb.UpdateArticleRequest(article_id=article.article_id, expected_version=1,
                                                                    content=content()), author)
    edited = rpc(media_client, "UpdateArticle", pb.UpdateArticleRequest(
        article_id=article.article_id, expected_version=rejected.version,
        content=content(cover_asset_id=cover.asset_id, title="理论宣讲进小院（修订）")), author).article
    assert edited.status == A.ARTICLE_STATUS_DRAFT and edited.reject_reason == "封面照片不清晰，请更换"
    rpc(media_client, "SubmitArticle", submit, author)
    published = review(media_client, article.article_id, reviewer)
    assert published.status == A.ARTICLE_STATUS_PUBLISHED and published.reviewed_by and published.published_at.seconds
    assert [h.status for h in published.history] == [
        A.ARTICLE_STATUS_DRAFT, A.ARTICLE_STATUS_PENDING_REVIEW, A.ARTICLE_STATUS_REJECTED, A.ARTICLE_STATUS_DRAFT,
        A.ARTICLE_STATUS_PENDING_REVIEW, A.ARTICLE_STATUS_PUBLISHED]
    assert published.history[2].note == "封面照片不清晰，请更换"

    # published: residents read it, its cover and the feed of their courtyard (with the units above)
    assert rpc(media_client, "GetArticle", get, world.resident_token).article.title == "理论宣讲进小院（修订）"
    status, _, _ = media_client.http("GET", cover.content_path, world.resident_token)
    assert status == 200
    feed = rpc(media_client, "ListPublished", pb.ListPublishedRequest(unit_id=world.tree.courtyards[0].unit_id,
                                                                      include_ancestors=True), world.resident_token)
    assert article.article_id in [a.article_id for a in feed.articles] and not feed.articles[0].body

    # withdrawn: gone from residents' view again, cover included
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="reason"):
        rpc(media_client, "WithdrawArticle", pb.WithdrawArticleRequest(article_id=article.article_id), author)
    withdrawn = rpc(media_client, "WithdrawArticle", pb.WithdrawArticleRequest(
        article_id=article.article_id, reason="活动信息有误"), author).article
    assert withdrawn.status == A.ARTICLE_STATUS_WITHDRAWN and withdrawn.withdraw_reason == "活动信息有误"
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "GetArticle", get, world.resident_token)
    assert media_client.http("GET", cover.content_path, world.resident_token)[0] == 403
    feed = rpc(media_client, "ListPublished", pb.ListPublishedRequest(), world.resident_token)
    assert article.article_id not in [a.article_id for a in feed.articles]

    events = [(e, p) for e, p, _ in media_events.events(world.district.id, at_least=9, timeout=20, settle=1.0)
              if e.aggregate_id == article.article_id]
    assert [type(p).__name__ for _, p in events] == [
        "ArticleDrafted", "ArticleSubmitted", "ArticleRejected", "ArticleUpdated", "ArticleSubmitted",
        "ArticlePublished", "ArticleWithdrawn"]
    assert [e.aggregate_version for e, _ in events] == list(range(1, 8))
    published_event = events[5][1]
    assert isinstance(published_event, ev.ArticlePublished) and published_event.article.unit.unit_id == station.unit_id
    assert published_event.article.cover_asset_id == cover.asset_id and BODY not in str(published_event)


def test_who_may_write_what(media_client, world, media_db):
    courtyard = world.tree.courtyards[0]
    report = draft(media_client, world.volunteer_token, courtyard.unit_id)
    assert report.status == A.ARTICLE_STATUS_DRAFT and report.author_id == world.volunteer_id
    before = media_db.articles.count_documents({"district_id": world.district.id})
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="通知公告"):
        draft(media_client, world.volunteer_token, courtyard.unit_id, kind=pb.ARTICLE_KIND_NOTICE)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):  # a volunteer of another station
        draft(media_client, world.other_volunteer_token, courtyard.unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        draft(media_client, world.resident_token, courtyard.unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):  # a courtyard admin cannot write for the station
        draft(media_client, world.admin(courtyard), world.tree.stations[0].unit_id)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED, contains="居民"):
        rpc(media_client, "ListArticles", pb.ListArticlesRequest(), world.resident_token)
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "ListArticles", pb.ListArticlesRequest(unit_id=world.tree.stations[1].unit_id),
            world.admin(world.tree.stations[0]))
    assert media_db.articles.count_documents({"district_id": world.district.id}) == before
    # the volunteer lists their own; the station admin sees it in the unit's list
    mine = rpc(media_client, "ListArticles", pb.ListArticlesRequest(), world.volunteer_token).articles
    assert [a.article_id for a in mine] == [report.article_id]
    station_list = rpc(media_client, "ListArticles", pb.ListArticlesRequest(status=A.ARTICLE_STATUS_DRAFT),
                       world.admin(world.tree.stations[0])).articles
    assert report.article_id in [a.article_id for a in station_list]


def test_bad_article_input_names_the_field_and_writes_nothing(media_client, world, media_db):
    author = world.admin(world.tree.stations[0])
    video = media_client.upload(author, fake_video(4096), "clip.mp4").asset
    before = media_db.articles.count_documents({"district_id": world.district.id})
    for changes, field in [({"title": ""}, "content.title"), ({"title": "长" * 101}, "content.title"),
                           ({"body": "字" * 20_001}, "content.body"), ({"kind": 0}, "content.kind"),
                           ({"kind": 99}, "content.kind"), ({"asset_ids": ["a b"]}, "content.asset_ids[0]"),
                           ({"cover_asset_id": video.asset_id}, "content.cover_asset_id")]:
        with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field=field):
            draft(media_client, author, **changes)
    with expect_error(grpc.StatusCode.NOT_FOUND):
        draft(media_client, author, cover_asset_id="ast_missing")
    with expect_error(grpc.StatusCode.NOT_FOUND):
        draft(media_client, author, "unit_nowhere")
    # an asset the author may not see cannot be attached
    private = media_client.upload(world.other_volunteer_token, jpeg(10, 10), "私人.jpg").asset
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        draft(media_client, world.volunteer_token, asset_ids=[private.asset_id])
    assert media_db.articles.count_documents({"district_id": world.district.id}) == before


def test_sensitive_words_block_by_default_and_flag_when_the_district_says_so(media_client, world):
    center, author = world.district.center_admin_token, world.admin(world.tree.stations[0])
    policy = rpc(media_client, "GetScreeningPolicy", pb.GetScreeningPolicyRequest(), author).policy
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "GetScreeningPolicy", pb.GetScreeningPolicyRequest(), world.volunteer_token)
    assert policy.is_default and policy.mode == pb.SCREENING_MODE_BLOCK and "赌博" in policy.words
    article = draft(media_client, author, body=BODY + "文末：周末有人组织 赌*博，请大家远离。")
    submit = pb.SubmitArticleRequest(article_id=article.article_id)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION, contains="敏感词：赌博"):
        rpc(media_client, "SubmitArticle", submit, author)

    change = pb.SetScreeningPolicyRequest(mode=pb.SCREENING_MODE_FLAG, words=["赌博", "广场舞扰民", "赌博 "])
    with expect_error(grpc.StatusCode.PERMISSION_DENIED):
        rpc(media_client, "SetScreeningPolicy", change, author)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="words"):
        rpc(media_client, "SetScreeningPolicy", pb.SetScreeningPolicyRequest(mode=pb.SCREENING_MODE_FLAG), center)
    with expect_error(grpc.StatusCode.INVALID_ARGUMENT, field="words[1]"):
        rpc(media_client, "SetScreeningPolicy", pb.SetScreeningPolicyRequest(
            mode=pb.SCREENING_MODE_FLAG, words=["赌博", "词" * 31]), center)
    updated = rpc(media_client, "SetScreeningPolicy", change, center).policy
    assert (updated.mode, list(updated.words), updated.version, updated.is_default) == \
        (pb.SCREENING_MODE_FLAG, ["赌博", "广场舞扰民"], 1, False)
    with expect_error(grpc.StatusCode.FAILED_PRECONDITION):  # someone else's change is not overwritten blindly
        rpc(media_client, "SetScreeningPolicy", change, center)

    flagged = rpc(media_client, "SubmitArticle", submit, author).article
    assert flagged.status == A.ARTICLE_STATUS_PENDING_REVIEW and list(flagged.flagged_words) == ["赌博"]
    queue = rpc(media_client, "ListArticles", pb.ListArticlesRequest(status=A.ARTICLE_STATUS_PENDING_REVIEW),
                world.admin(world.tree.institute)).articles
    assert [list(a.flagged_words) for a in queue if a.article_id == article.article_id] == [["赌博"]]
    metrics = media_client.metrics()
    assert re.search(r'^media_sensitive_word_hits_total\{mode="block"\} [1-9]', metrics, re.M)
    assert re.search(r'^media_sensitive_word_hits_total\{mode="flag"\} [1-9]', metrics, re.M)
    pending = re.search(rf'^media_review_queue_length{{district_id="{world.district.id}"}} (\d+)', metrics, re.M)
    assert pending and int(pending.group(1)) >= 1


def test_the_feed_pages_newest_first_per_subtree(media_client, world):
    tree, reviewer = world.tree, world.district.center_admin_token
    first = publish(media_client, world.admin(tree.stations[0]), reviewer, tree.stations[0].unit_id, title="第一篇")
    second = publish(media_client, world.admin(tree.stations[0]), reviewer, tree.stations[0].unit_id, title="第二篇",
                     kind=pb.ARTICLE_KIND_NOTICE)
    elsewhere = publish(media_client, world.admin(tree.stations[1]), reviewer, tree.stations[1].unit_id, title="别处")
    at_center = publish(media_client, world.admin(tree.institute), reviewer, tree.institute.unit_id, title="所里通知",
                        kind=pb.ARTICLE_KIND_NOTICE)

    seen, token = [], ""
    while True:
        page = rpc(media_client, "ListPublished", pb.ListPublishedRequest(
            unit_id=tree.stations[0].unit_id, page=c.PageRequest(page_size=1, page_token=token)), world.resident_token)
        seen += [a.article_id for a in page.articles]
        token = page.page.next_page_token
        if not token:
            break
    assert seen[:2] == [second.article_id, first.article_id] and elsewhere.article_id not in seen
    assert at_center.article_id not in seen

    with_above = [a.article_id for a in rpc(media_client, "ListPublished", pb.ListPublishedRequest(
        unit_id=tree.courtyards[0].unit_id, include_ancestors=True, page=c.PageRequest(page_size=100)),
        world.resident_token).articles]
    assert {first.article_id, second.article_id, at_center.article_id} <= set(with_above)
    assert elsewhere.article_id not in with_above
    notices = rpc(media_client, "ListPublished", pb.ListPublishedRequest(kind=pb.ARTICLE_KIND_NOTICE,
                                                                         page=c.PageRequest(page_size=100)),
                  world.other_resident_token).articles
    assert {a.article_id for a in notices} >= {second.article_id, at_center.article_id}
    assert all(a.kind == pb.ARTICLE_KIND_NOTICE for a in notices)
