"""Stored documents → API messages."""

from __future__ import annotations

import datetime as dt

from services.common.auth import Principal
from services.common.events import to_timestamp
from wenming.media.v1 import media_pb2 as pb

from .live_courses import status_of
from .models import Article, Asset, LiveCourse
from .screening import PolicyView
from .units import UnitInfo


def content_path(asset_id: str) -> str:
    return f"/v1/assets/{asset_id}/content"


def thumbnail_path(asset_id: str) -> str:
    return f"/v1/assets/{asset_id}/thumbnail"


def asset_msg(asset: Asset, with_audit: bool) -> pb.Asset:
    msg = pb.Asset(
        asset_id=asset.id, district_id=asset.district_id, kind=asset.kind, content_type=asset.content_type,
        size_bytes=asset.size, sha256=asset.sha256, file_name=asset.file_name, unit=UnitInfo.of(asset).ref(),
        uploaded_by=asset.uploaded_by, width=asset.width, height=asset.height,
        has_thumbnail=bool(asset.thumb_blob_id), thumbnail_size_bytes=asset.thumb_size,
        linked_order_ids=list(asset.order_ids), linked_activity_ids=list(asset.activity_ids), status=asset.status,
        version=asset.version, created_at=to_timestamp(asset.created_at), delete_reason=asset.delete_reason,
        content_path=content_path(asset.id), thumbnail_path=thumbnail_path(asset.id) if asset.thumb_blob_id else "",
    )
    if asset.deleted_at:
        msg.deleted_at.CopyFrom(to_timestamp(asset.deleted_at))
    if with_audit:
        msg.audit.extend(pb.AssetAuditEntry(at=to_timestamp(e["at"]), actor_id=e["actor_id"], action=e["action"],
                                            note=e.get("note", "")) for e in asset.audit)
    return msg


def article_msg(article: Article, *, full: bool = True) -> pb.Article:
    """`full` False for lists: no body, no history."""
    msg = pb.Article(
        article_id=article.id, district_id=article.district_id, unit=UnitInfo.of(article).ref(), kind=article.kind,
        title=article.title, summary=article.summary, body=article.body if full else "",
        cover_asset_id=article.cover_asset_id, asset_ids=list(article.asset_ids),
        linked_order_id=article.linked_order_id, linked_activity_id=article.linked_activity_id,
        status=article.status, author_id=article.author_id, author_name=article.author_name,
        flagged_words=list(article.flagged_words), reject_reason=article.reject_reason,
        withdraw_reason=article.withdraw_reason, reviewed_by=article.reviewed_by, version=article.version,
        created_at=to_timestamp(article.created_at), updated_at=to_timestamp(article.updated_at),
        period=article.period,
    )
    for name in ("submitted_at", "published_at", "withdrawn_at"):
        if getattr(article, name):
            getattr(msg, name).CopyFrom(to_timestamp(getattr(article, name)))
    if full:
        msg.history.extend(pb.ArticleHistoryEntry(at=to_timestamp(h["at"]), actor_id=h["actor_id"],
                                                  status=h["status"], note=h.get("note", ""))
                           for h in article.history)
        msg.honor_entries.extend(honor_entry_msg(e) for e in article.honor_entries)
    return msg


def honor_entry_msg(entry: dict) -> pb.HonorRollEntry:
    """As published: the masked name, never a typed one."""
    return pb.HonorRollEntry(volunteer_id=entry["volunteer_id"], shown_name=entry["shown_name"], deed=entry["deed"],
                             commendation_id=entry["commendation_id"],
                             commendation_title=entry["commendation_title"])


def honor_msg(article: Article, entry: dict) -> pb.Honor:
    msg = pb.Honor(article_id=article.id, title=article.title, period=article.period,
                   unit=UnitInfo.of(article).ref(), deed=entry["deed"],
                   commendation_title=entry["commendation_title"])
    if article.published_at:
        msg.published_at.CopyFrom(to_timestamp(article.published_at))
    return msg


def live_course_msg(course: LiveCourse, principal: Principal, now: dt.datetime) -> pb.LiveCourse:
    return pb.LiveCourse(
        live_course_id=course.id, district_id=course.district_id, unit=UnitInfo.of(course).ref(), title=course.title,
        description=course.description, lecturer=course.lecturer, starts_at=to_timestamp(course.starts_at),
        ends_at=to_timestamp(course.ends_at), stream_url=course.stream_url, capacity=course.capacity,
        signup_count=course.signup_count, signed_up=principal.subject in course.signed_up,
        status=status_of(course, now), replay_asset_id=course.replay_asset_id, cancel_reason=course.cancel_reason,
        version=course.version, created_at=to_timestamp(course.created_at),
    )


def policy_msg(policy: PolicyView) -> pb.ScreeningPolicy:
    msg = pb.ScreeningPolicy(district_id=policy.district_id, mode=policy.mode, words=list(policy.words),
                             is_default=policy.is_default, version=policy.version, updated_by=policy.updated_by)
    if policy.updated_at:
        msg.updated_at.CopyFrom(to_timestamp(policy.updated_at))
    return msg
