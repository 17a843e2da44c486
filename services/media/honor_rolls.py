"""善行义举榜 (good-deeds honour roll): an article of kind HONOR_ROLL whose content is a list of
people and their deeds. This desk writes the content (create with an idempotency key, edit);
everything after that — submit with screening, review by another admin of the unit or above,
publication in the feed, withdrawal — is the article workflow of articles.py, unchanged.

The rules (who compiles, who may be named, masking, the body the entries make) are
honor_roll_rules.py. Volunteers come from media's copy of registration's volunteers,
commendations from its copy of points' (commendations.py): neither service is called.
"""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.clock import clock
from services.common.errors import FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.ids import decode_page_token, encode_page_token, keyed_id
from services.common.listing import key
from services.common.readmodels import RegistrationReadModels
from services.common.validation import Validator
from wenming.media.v1 import events_pb2, media_pb2 as pb

from . import honor_roll_rules as rules
from .articles import EDITABLE, Publishing, history_entry, snapshot
from .commendations import CommendationRefs
from .models import Article
from .units import UnitInfo, Units

A = pb.ArticleStatus


class HonorRolls:
    def __init__(self, publishing: Publishing, units: Units, registry: RegistrationReadModels,
                 commendations: CommendationRefs):
        self.publishing = publishing
        self.units = units
        self.registry = registry
        self.commendations = commendations

    def _content(self, district_id: str, unit: UnitInfo, asked: rules.RollInput) -> dict:
        entries = rules.resolve_entries(asked, unit.unit_id, lambda i: self.registry.volunteer(district_id, i),
                                        lambda i: self.commendations.get(district_id, i))
        return {"kind": pb.ARTICLE_KIND_HONOR_ROLL, "period": asked.period,
                "title": asked.title or rules.default_title(unit.name, asked.period), "summary": asked.summary,
                "body": rules.body_of(entries), "honor_entries": entries,
                "honor_volunteer_ids": [e["volunteer_id"] for e in entries if e["volunteer_id"]]}

    def create(self, principal: Principal, req: pb.CreateHonorRollRequest) -> Article:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        asked = rules.validate(v, req.period, req.title, req.summary, list(req.entries))
        idempotency_key = v.idempotency_key(req.idempotency_key)
        v.check()
        unit = self.units.of_caller_or(principal, unit_id, "unit_id")
        rules.require_compiler(principal, unit.level, unit.path)
        article_id = keyed_id("art", key(principal.district_id, principal.subject, "honor_roll", idempotency_key))
        digest = rules.request_digest(unit.unit_id, asked)
        if (replayed := self._replayed(article_id, digest)) is not None:
            return replayed
        now = clock.now()
        article = Article(id=article_id, district_id=principal.district_id, **unit.fields(),
                          **self._content(principal.district_id, unit, asked), request_digest=digest,
                          status=A.ARTICLE_STATUS_DRAFT, author_id=principal.subject,
                          author_name=principal.display_name,
                          history=[history_entry(principal.subject, A.ARTICLE_STATUS_DRAFT)],
                          created_at=now, updated_at=now)
        event = self.publishing.events.new(
            events_pb2.ArticleDrafted(article=snapshot(article)), district_id=article.district_id,
            aggregate_type="article", aggregate_id=article.id, version=1, actor_id=principal.subject)
        try:
            article.insert([event])
        except DuplicateKeyError:  # a concurrent retry with the key won
            if (replayed := self._replayed(article_id, digest)) is None:
                raise
            return replayed
        return article

    @staticmethod
    def _replayed(article_id: str, digest: str) -> Article | None:
        raw = Article.collection().find_one({"_id": article_id}, {"outbox": 0})
        if raw is None:
            return None
        if raw.get("request_digest") != digest:
            raise InvalidArgument.field("idempotency_key", "已用于另一份善行义举榜")
        return Article.from_raw(raw)

    def update(self, principal: Principal, req: pb.UpdateHonorRollRequest) -> Article:
        v = Validator()
        v.ident("article_id", req.article_id)
        if req.expected_version < 1:
            v.fail("expected_version", "must be set to the version the edit is based on")
        asked = rules.validate(v, req.period, req.title, req.summary, list(req.entries))
        v.check()
        article = self.publishing.load_for_editor(principal, req.article_id, EDITABLE, "修改")
        if article.kind != pb.ARTICLE_KIND_HONOR_ROLL:
            raise FailedPrecondition("这不是善行义举榜，请用 UpdateArticle 修改")
        unit = UnitInfo.of(article)
        rules.require_compiler(principal, unit.level, unit.path)
        if article.version != req.expected_version:
            raise FailedPrecondition(f"榜单已被修改（当前版本 {article.version}），请刷新后再编辑")
        return self.publishing.transition(article, principal.subject, A.ARTICLE_STATUS_DRAFT,
                                           {**self._content(article.district_id, unit, asked), "flagged_words": []},
                                           events_pb2.ArticleUpdated)

    def honors(self, principal: Principal, req: pb.ListHonorsRequest) -> tuple[list[tuple[Article, dict]], str]:
        """The published rolls naming a volunteer, newest first (keyset paged like the feed)."""
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id, "status": A.ARTICLE_STATUS_PUBLISHED}
        if not volunteer_id or volunteer_id == principal.subject:
            if principal.role != Role.ROLE_VOLUNTEER:
                raise InvalidArgument.field("volunteer_id", "must be set (only volunteers have their own honours)")
            volunteer_id = principal.subject
        elif principal.is_admin:
            query["unit_path"] = principal.unit_id  # the rolls of the admin's subtree
        else:
            raise PermissionDenied("只能查看自己的善行义举记录")
        query["honor_volunteer_ids"] = volunteer_id
        if after:
            query["feed_key"] = {"$lt": after}
        found = [Article.from_raw(r) for r in Article.collection().find(query, {"outbox": 0, "history": 0})
                 .sort("feed_key", -1).limit(size + 1)]
        next_token = encode_page_token(found[size - 1].feed_key) if len(found) > size else ""
        return [(a, e) for a in found[:size] for e in rules.honors_of(volunteer_id, a.honor_entries)], next_token
