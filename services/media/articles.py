"""Publishing (信息发布 / 成果展示): news, notices and activity reports of a unit.

    DRAFT ──submit──▶ PENDING_REVIEW ──approve──▶ PUBLISHED ──withdraw──▶ WITHDRAWN
      ▲                   │
      └──edit── REJECTED ◀┘ reject (with a reason, kept in the history)

Authors are admins of the unit (or above) and volunteers of the unit (not notices). Reviewers
are admins of the unit or above, never the article's own author (四眼原则). Submitting screens
the text for the district's sensitive words. Only published articles are visible beyond their
author and the unit's admins; the feed shows them newest first.
"""

from __future__ import annotations

import builtins
from dataclasses import asdict, dataclass

from services.common.auth import Principal, Role, require_district
from services.common.clock import clock
from services.common.errors import Aborted, FailedPrecondition, NotFound, PermissionDenied
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.validation import Validator, valid_id
from wenming.media.v1 import events_pb2, media_pb2 as pb

from .assets import AssetLibrary
from .metrics import SCREENING_HITS
from .models import Article
from .screening import Screening
from .units import UnitInfo, Units, subtree_filter

A = pb.ArticleStatus
MAX_TITLE, MAX_SUMMARY, MAX_BODY, MAX_ASSETS, MAX_REASON = 100, 300, 20_000, 30, 200
NOTICE_BY_ADMINS = "通知公告只能由单位管理员发布"
EDITABLE = (A.ARTICLE_STATUS_DRAFT, A.ARTICLE_STATUS_REJECTED)
# an honour roll's body is made from its entries: it is written with CreateHonorRoll / UpdateHonorRoll
WRITTEN_AS_ARTICLES = (pb.ARTICLE_KIND_NEWS, pb.ARTICLE_KIND_NOTICE, pb.ARTICLE_KIND_ACTIVITY_REPORT)
STATUS_ZH = {A.ARTICLE_STATUS_DRAFT: "草稿", A.ARTICLE_STATUS_PENDING_REVIEW: "待审核",
             A.ARTICLE_STATUS_PUBLISHED: "已发布", A.ARTICLE_STATUS_REJECTED: "已退回",
             A.ARTICLE_STATUS_WITHDRAWN: "已撤回"}


@dataclass(frozen=True)
class Content:
    kind: int
    title: str
    summary: str
    body: str
    cover_asset_id: str
    asset_ids: list[str]
    linked_order_id: str
    linked_activity_id: str

    def fields(self) -> dict:
        all_ids = ([self.cover_asset_id] if self.cover_asset_id else []) + self.asset_ids
        return {**asdict(self), "all_asset_ids": list(dict.fromkeys(all_ids))}


def snapshot(article: Article) -> events_pb2.ArticleSnapshot:
    return events_pb2.ArticleSnapshot(
        article_id=article.id, unit=UnitInfo.of(article).ref(), kind=article.kind, title=article.title,
        status=article.status, author_id=article.author_id, cover_asset_id=article.cover_asset_id,
        asset_ids=list(article.asset_ids), linked_order_id=article.linked_order_id,
        linked_activity_id=article.linked_activity_id, period=article.period,
        honored_volunteer_ids=list(article.honor_volunteer_ids))


def history_entry(actor_id: str, status: int, note: str = "") -> dict:
    return {"at": clock.now(), "actor_id": actor_id, "status": status, "note": note}


class Publishing:
    def __init__(self, units: Units, assets: AssetLibrary, screening: Screening, events: EventSource):
        self.units = units
        self.assets = assets
        self.screening = screening
        self.events = events

    # ---- helpers ----

    def _content(self, principal: Principal, content: pb.ArticleContent) -> Content:
        v = Validator()
        v.enum("content.kind", content.kind, pb.ArticleKind, allowed=WRITTEN_AS_ARTICLES)
        title = v.text("content.title", content.title, max_len=MAX_TITLE)
        summary = v.text("content.summary", content.summary, max_len=MAX_SUMMARY, required=False)
        body = v.text("content.body", content.body, max_len=MAX_BODY, multiline=True)
        cover = v.ident("content.cover_asset_id", content.cover_asset_id, required=False)
        asset_ids = v.ids("content.asset_ids", list(content.asset_ids), max_count=MAX_ASSETS)
        order_id = v.ident("content.linked_order_id", content.linked_order_id, required=False)
        activity_id = v.ident("content.linked_activity_id", content.linked_activity_id, required=False)
        v.check()
        if cover:
            self.assets.usable(principal, cover, "content.cover_asset_id", kind=pb.ASSET_KIND_IMAGE)
        for i, asset_id in enumerate(asset_ids):
            self.assets.usable(principal, asset_id, f"content.asset_ids[{i}]")
        return Content(content.kind, title, summary, body, cover, asset_ids, order_id, activity_id)

    @staticmethod
    def _require_author(principal: Principal, unit: UnitInfo, kind: int) -> None:
        if principal.is_admin and principal.manages(unit.path):
            return
        if principal.role == Role.ROLE_VOLUNTEER and unit.unit_id in principal.unit_path:
            if kind == pb.ARTICLE_KIND_NOTICE:
                raise PermissionDenied(NOTICE_BY_ADMINS)
            return
        raise PermissionDenied("only admins of the unit and its volunteers write its articles")

    @staticmethod
    def _is_editor(principal: Principal, article: Article) -> bool:
        return principal.subject == article.author_id or (principal.is_admin and principal.manages(article.unit_path))

    def _load(self, principal: Principal, article_id: str) -> Article:
        article_id = valid_id("article_id", article_id)
        article = Article.objects(id=article_id).first()
        if article is None:
            raise NotFound("article", article_id)
        require_district(principal, article.district_id)
        return article

    def load_for_editor(self, principal: Principal, article_id: str, allowed: tuple[int, ...], action: str) -> Article:
        article = self._load(principal, article_id)
        if not self._is_editor(principal, article):
            raise PermissionDenied("only the author or an admin of the article's unit may do this")
        if article.status not in allowed:
            raise FailedPrecondition(f"稿件当前为「{STATUS_ZH[article.status]}」，不能{action}")
        return article

    def transition(self, article: Article, actor_id: str, status: int, changes: dict, event_type, note: str = "",
                    **event_fields) -> Article:
        """One conditional write: the new status (guarded by version and old status), its history
        entry and its event."""
        now = clock.now()
        changes = {**changes, "status": status, "updated_at": now}
        preview = Article.from_raw({**article.to_mongo().to_dict(), **changes})
        event = self.events.new(event_type(article=snapshot(preview), **event_fields),
                                district_id=article.district_id, aggregate_type="article", aggregate_id=article.id,
                                version=article.version + 1, actor_id=actor_id)
        changed = Article.change({"_id": article.id, "version": article.version, "status": article.status},
                                 {"$set": changes, "$push": {"history": history_entry(actor_id, status, note)}},
                                 [event])
        if changed is None:
            raise Aborted("the article changed meanwhile; reload and retry")
        return changed

    # ---- commands ----

    def create(self, principal: Principal, req: pb.CreateArticleRequest) -> Article:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        v.check()
        content = self._content(principal, req.content)
        unit = self.units.of_caller_or(principal, unit_id, "unit_id")
        self._require_author(principal, unit, content.kind)
        now = clock.now()
        article = Article(id=new_id("art"), district_id=principal.district_id, **unit.fields(), **content.fields(),
                          status=A.ARTICLE_STATUS_DRAFT, author_id=principal.subject,
                          author_name=principal.display_name,
                          history=[history_entry(principal.subject, A.ARTICLE_STATUS_DRAFT)],
                          created_at=now, updated_at=now)
        event = self.events.new(events_pb2.ArticleDrafted(article=snapshot(article)), district_id=article.district_id,
                                aggregate_type="article", aggregate_id=article.id, version=1,
                                actor_id=principal.subject)
        article.insert([event])
        return article

    def update(self, principal: Principal, req: pb.UpdateArticleRequest) -> Article:
        v = Validator()
        v.ident("article_id", req.article_id)
        if req.expected_version < 1:
            v.fail("expected_version", "must be set to the version the edit is based on")
        v.check()
        content = self._content(principal, req.content)
        article = self.load_for_editor(principal, req.article_id, EDITABLE, "修改")
        if article.kind == pb.ARTICLE_KIND_HONOR_ROLL:
            raise FailedPrecondition("善行义举榜请在榜单编辑中修改（UpdateHonorRoll）")
        if content.kind == pb.ARTICLE_KIND_NOTICE and not principal.is_admin:
            raise PermissionDenied(NOTICE_BY_ADMINS)
        if article.version != req.expected_version:
            raise FailedPrecondition(f"稿件已被修改（当前版本 {article.version}），请刷新后再编辑")
        return self.transition(article, principal.subject, A.ARTICLE_STATUS_DRAFT,
                                {**content.fields(), "flagged_words": []}, events_pb2.ArticleUpdated)

    def submit(self, principal: Principal, article_id: str) -> Article:
        article = self.load_for_editor(principal, article_id, EDITABLE, "提交审核")
        policy = self.screening.policy(article.district_id)
        found = policy.find("\n".join((article.title, article.summary, article.body)))
        if found:
            mode = pb.ScreeningMode.Name(policy.mode).removeprefix("SCREENING_MODE_").lower()
            SCREENING_HITS.labels(mode).inc()
            if policy.mode == pb.SCREENING_MODE_BLOCK:
                raise FailedPrecondition(f"内容含有敏感词：{'、'.join(found)}。请修改后再提交")
        return self.transition(article, principal.subject, A.ARTICLE_STATUS_PENDING_REVIEW,
                                {"submitted_at": clock.now(), "flagged_words": found}, events_pb2.ArticleSubmitted,
                                flagged_words=found)

    def review(self, principal: Principal, req: pb.ReviewArticleRequest) -> Article:
        v = Validator()
        v.ident("article_id", req.article_id)
        v.enum("decision", req.decision, pb.ReviewDecision)
        reason = v.text("reason", req.reason, max_len=MAX_REASON,
                        required=req.decision == pb.REVIEW_DECISION_REJECT)
        v.check()
        article = self._load(principal, req.article_id)
        if not (principal.is_admin and principal.manages(article.unit_path)):
            raise PermissionDenied("only admins of the article's unit or above review it")
        if principal.subject == article.author_id:
            raise PermissionDenied("四眼原则：不能审核自己撰写的稿件，请由同级或上级的其他管理员审核")
        if article.status != A.ARTICLE_STATUS_PENDING_REVIEW:
            raise FailedPrecondition(f"稿件当前为「{STATUS_ZH[article.status]}」，不在待审核状态")
        now = clock.now()
        if req.decision == pb.REVIEW_DECISION_APPROVE:
            feed_key = f"{int(now.timestamp() * 1000):013d}:{article.id}"
            return self.transition(article, principal.subject, A.ARTICLE_STATUS_PUBLISHED,
                                    {"published_at": now, "reviewed_by": principal.subject, "feed_key": feed_key},
                                    events_pb2.ArticlePublished, reason, reviewed_by=principal.subject,
                                    published_at=to_timestamp(now))
        return self.transition(article, principal.subject, A.ARTICLE_STATUS_REJECTED,
                                {"reject_reason": reason, "reviewed_by": principal.subject},
                                events_pb2.ArticleRejected, reason, reviewed_by=principal.subject, reason=reason)

    def withdraw(self, principal: Principal, article_id: str, reason: str) -> Article:
        v = Validator()
        reason = v.text("reason", reason, max_len=MAX_REASON)
        v.check()
        article = self.load_for_editor(principal, article_id, (A.ARTICLE_STATUS_PUBLISHED,), "撤回")
        return self.transition(article, principal.subject, A.ARTICLE_STATUS_WITHDRAWN,
                                {"withdrawn_at": clock.now(), "withdraw_reason": reason},
                                events_pb2.ArticleWithdrawn, reason, withdrawn_by=principal.subject, reason=reason)

    # ---- reads ----

    def get(self, principal: Principal, article_id: str) -> Article:
        article = self._load(principal, article_id)
        if article.status != A.ARTICLE_STATUS_PUBLISHED and not self._is_editor(principal, article):
            raise PermissionDenied("这篇稿件尚未发布，只有作者和所属单位的管理员可以查看")
        return article

    def list(self, principal: Principal, req: pb.ListArticlesRequest) -> tuple[list[Article], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        v.enum("status", req.status, pb.ArticleStatus, required=False)
        v.enum("kind", req.kind, pb.ArticleKind, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        if principal.role == Role.ROLE_RESIDENT:
            raise PermissionDenied("居民只能查看已发布的内容")
        query: dict = {"district_id": principal.district_id}
        if unit_id:
            unit = self.units.get(principal.district_id, unit_id)
            if not principal.manages(unit.path) and not req.mine:
                raise PermissionDenied("that unit is outside your unit's subtree")
            query["unit_path"] = unit.unit_id
        elif principal.is_admin and not req.mine:
            query["unit_path"] = principal.unit_id
        if req.mine or not (principal.is_admin or principal.role == Role.ROLE_SERVICE):
            query["author_id"] = principal.subject
        if req.status:
            query["status"] = req.status
        if req.kind:
            query["kind"] = req.kind
        if after:
            query["_id"] = {"$lt": after}
        found = [Article.from_raw(r) for r in
                 Article.collection().find(query, {"outbox": 0, "body": 0}).sort("_id", -1).limit(size + 1)]
        next_token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], next_token

    def feed(self, principal: Principal, req: pb.ListPublishedRequest) -> tuple[builtins.list[Article], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        v.enum("kind", req.kind, pb.ArticleKind, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id, "status": A.ARTICLE_STATUS_PUBLISHED}
        if unit_id:
            root = self.units.of_caller_or(principal, unit_id, "unit_id")
            query.update(subtree_filter(root, req.include_ancestors))
        if req.kind:
            query["kind"] = req.kind
        if after:
            query["feed_key"] = {"$lt": after}
        found = [Article.from_raw(r) for r in
                 Article.collection().find(query, {"outbox": 0, "body": 0, "history": 0})
                 .sort("feed_key", -1).limit(size + 1)]
        next_token = encode_page_token(found[size - 1].feed_key) if len(found) > size else ""
        return found[:size], next_token
