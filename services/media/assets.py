"""Assets: who may see and change them, links to orders and activities, soft delete with an
audit trail, and what a download serves.

Who may read an asset (all inside its district):
- its uploader, and admins of any unit on the asset's unit path (or a service);
- anyone, once it is part of a published article or the replay of a live course;
- the parties of an order it is linked to (resident, volunteers, admins of the units the order
  passed), as ordering's events say — completion photos are proof of service for them.
Who may change it (link, delete): its uploader and those admins.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from dataclasses import dataclass

from services.common.auth import Principal, Role, require_district
from services.common.clock import clock
from services.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token
from services.common.validation import Validator
from wenming.media.v1 import events_pb2, media_pb2 as pb

from .blobs import BlobStore
from .metrics import BYTES_SERVED
from .models import Article, Asset, LiveCourse
from .units import UnitInfo, Units
from .work import WorkRefs

S = pb.AssetStatus
V = pb.AssetVariant
MAX_REASON = 200


def audit_entry(actor_id: str, action: str, note: str = "") -> dict:
    return {"at": clock.now(), "actor_id": actor_id, "action": action, "note": note}


def snapshot(asset: Asset) -> events_pb2.AssetSnapshot:
    return events_pb2.AssetSnapshot(
        asset_id=asset.id, kind=asset.kind, content_type=asset.content_type, size_bytes=asset.size,
        sha256=asset.sha256, unit=UnitInfo.of(asset).ref(), uploaded_by=asset.uploaded_by,
        linked_order_ids=list(asset.order_ids), linked_activity_ids=list(asset.activity_ids),
        width=asset.width, height=asset.height)


@dataclass(frozen=True)
class DownloadTarget:
    asset: Asset
    variant: int
    blob_id: str
    size: int
    content_type: str

    def byte_range(self, offset: int, length: int) -> tuple[int, int]:
        """[start, end) for an offset and a length (0: to the end); InvalidArgument outside the file."""
        v = Validator()
        if not 0 <= offset < max(self.size, 1):
            v.fail("offset", f"must be between 0 and {max(self.size - 1, 0)} (got {offset})")
        if length < 0:
            v.fail("length", f"must not be negative (got {length})")
        v.check()
        end = self.size if length == 0 else min(self.size, offset + length)
        return offset, end


class AssetLibrary:
    def __init__(self, blobs: BlobStore, units: Units, work: WorkRefs, events: EventSource):
        self.blobs = blobs
        self.units = units
        self.work = work
        self.events = events

    # ---- rules ----

    @staticmethod
    def may_manage(principal: Principal, asset: Asset) -> bool:
        return principal.district_id == asset.district_id and (
            principal.subject == asset.uploaded_by or principal.manages(asset.unit_path))

    def may_read(self, principal: Principal, asset: Asset) -> bool:
        if principal.district_id != asset.district_id:
            return False
        if self.may_manage(principal, asset):
            return True
        if asset.status != S.ASSET_STATUS_STORED:
            return False
        if self.is_public(asset):
            return True
        orders = (self.work.order(asset.district_id, order_id) for order_id in asset.order_ids)
        return any(order is not None and self.work.is_order_party(principal, order) for order in orders)

    @staticmethod
    def is_public(asset: Asset) -> bool:
        published = Article.collection().find_one(
            {"district_id": asset.district_id, "status": pb.ARTICLE_STATUS_PUBLISHED, "all_asset_ids": asset.id},
            {"_id": 1})
        if published is not None:
            return True
        return LiveCourse.collection().find_one(
            {"district_id": asset.district_id, "replay_asset_id": asset.id, "cancelled": False},
            {"_id": 1}) is not None

    @staticmethod
    def _own_scope(principal: Principal) -> dict:
        """What a caller sees without a more specific right: admins their subtree, others their uploads."""
        if principal.role == Role.ROLE_SERVICE:
            return {}
        if principal.is_admin:
            return {"unit_path": principal.unit_id}
        return {"uploaded_by": principal.subject}

    # ---- reads ----

    def load(self, principal: Principal, asset_id: str, field: str = "asset_id") -> Asset:
        v = Validator()
        asset_id = v.ident(field, asset_id)
        v.check()
        asset = Asset.objects(id=asset_id).first()
        if asset is None:
            raise NotFound("asset", asset_id)
        require_district(principal, asset.district_id)
        return asset

    def get(self, principal: Principal, asset_id: str) -> Asset:
        asset = self.load(principal, asset_id)
        if not self.may_read(principal, asset):
            raise PermissionDenied("that asset is not visible to you")
        return asset

    def usable(self, principal: Principal, asset_id: str, field: str, kind: int = 0) -> Asset:
        """An asset the caller may put into an article or a live course."""
        asset = self.load(principal, asset_id, field)
        if not self.may_read(principal, asset):
            raise PermissionDenied(f"{field}: that asset is not visible to you")
        if asset.status != S.ASSET_STATUS_STORED:
            raise FailedPrecondition(f"{field}: 文件 {asset_id} 已被删除，不能使用")
        if kind and asset.kind != kind:
            raise InvalidArgument.field(field, f"must be {pb.AssetKind.Name(kind)}, "
                                               f"not {pb.AssetKind.Name(asset.kind)}")
        return asset

    def download_target(self, principal: Principal, asset_id: str, variant: int) -> DownloadTarget:
        v = Validator()
        v.enum("variant", variant, pb.AssetVariant, required=False)
        v.check()
        asset = self.get(principal, asset_id)
        if asset.status != S.ASSET_STATUS_STORED:
            raise FailedPrecondition("这个文件已被删除，不能再下载")
        if variant == V.ASSET_VARIANT_THUMBNAIL:
            if not asset.thumb_blob_id:
                raise FailedPrecondition("only images have a thumbnail")
            return DownloadTarget(asset, variant, asset.thumb_blob_id, asset.thumb_size, "image/jpeg")
        return DownloadTarget(asset, V.ASSET_VARIANT_ORIGINAL, asset.blob_id, asset.size, asset.content_type)

    def stream(self, target: DownloadTarget, start: int, end: int, channel: str) -> Iterator[bytes]:
        served = BYTES_SERVED.labels(channel, pb.AssetVariant.Name(target.variant).removeprefix("ASSET_VARIANT_").lower())
        for piece in self.blobs.read(target.blob_id, start, end):
            yield piece
            served.inc(len(piece))

    def list(self, principal: Principal, req: pb.ListAssetsRequest) -> tuple[list[Asset], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        order_id = v.ident("linked_order_id", req.linked_order_id, required=False)
        activity_id = v.ident("linked_activity_id", req.linked_activity_id, required=False)
        if sum(map(bool, (unit_id, order_id, activity_id))) > 1:
            v.fail("unit_id", "set at most one of unit_id, linked_order_id, linked_activity_id")
        v.enum("kind", req.kind, pb.AssetKind, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        district = principal.district_id
        query: dict = {"district_id": district}
        if order_id:
            query["order_ids"] = order_id
            order = self.work.order(district, order_id)
            if order is None:
                query.update(self._own_scope(principal))
            elif not self.work.is_order_party(principal, order):
                raise PermissionDenied("that order is not yours to see")
        elif activity_id:
            query["activity_ids"] = activity_id
            activity = self.work.activity(district, activity_id)
            if activity is None or not self.work.manages_activity(principal, activity):
                query.update(self._own_scope(principal))
        elif unit_id:
            unit = self.units.get(district, unit_id)
            if not principal.manages(unit.path):
                raise PermissionDenied("that unit is outside your unit's subtree")
            query["unit_path"] = unit_id
        else:
            query.update(self._own_scope(principal))
        if req.kind:
            query["kind"] = req.kind
        if req.include_deleted:
            if not (principal.is_admin or principal.role == Role.ROLE_SERVICE):
                raise PermissionDenied("only admins see deleted assets")
        else:
            query["status"] = S.ASSET_STATUS_STORED
        if after:
            query["_id"] = {"$lt": after}
        found = [Asset.from_raw(r) for r in
                 Asset.collection().find(query, {"outbox": 0}).sort("_id", -1).limit(size + 1)]
        next_token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], next_token

    # ---- writes ----

    def insert(self, asset: Asset, deduplicated: bool) -> Asset:
        event = self.events.new(events_pb2.AssetStored(asset=snapshot(asset), deduplicated=deduplicated),
                                district_id=asset.district_id, aggregate_type="asset", aggregate_id=asset.id,
                                version=1, actor_id=asset.uploaded_by)
        asset.insert([event])
        self.blobs.mark_referenced([asset.blob_id, asset.thumb_blob_id])
        return asset

    def link(self, principal: Principal, req: pb.LinkAssetRequest) -> Asset:
        v = Validator()
        asset_id = v.ident("asset_id", req.asset_id)
        order_id = v.ident("order_id", req.order_id, required=False)
        activity_id = v.ident("activity_id", req.activity_id, required=False)
        if bool(order_id) == bool(activity_id):
            v.fail("order_id", "set exactly one of order_id, activity_id")
        v.check()
        asset = self.load(principal, asset_id)
        if not self.may_manage(principal, asset):
            raise PermissionDenied("only the uploader or an admin of its unit may link this asset")
        return self._link(asset, order_id, activity_id, principal.subject)

    def link_completion_photos(self, district_id: str, order_id: str, asset_ids: builtins.list[str], actor_id: str) -> None:
        """From ordering's OrderCompleted: the report's photos become proof of service of the order."""
        for asset in Asset.objects(id__in=asset_ids, district_id=district_id, status=S.ASSET_STATUS_STORED):
            self._link(asset, order_id, "", actor_id)

    def _link(self, asset: Asset, order_id: str, activity_id: str, actor_id: str) -> Asset:
        field, value = ("order_ids", order_id) if order_id else ("activity_ids", activity_id)
        for _ in range(3):
            if asset.status != S.ASSET_STATUS_STORED:
                raise FailedPrecondition("已删除的文件不能再关联")
            if value in getattr(asset, field):
                return asset
            event = self.events.new(events_pb2.AssetLinked(asset_id=asset.id, order_id=order_id,
                                                           activity_id=activity_id),
                                    district_id=asset.district_id, aggregate_type="asset", aggregate_id=asset.id,
                                    version=asset.version + 1, actor_id=actor_id)
            changed = Asset.change(
                {"_id": asset.id, "version": asset.version},
                {"$addToSet": {field: value},
                 "$push": {"audit": audit_entry(actor_id, "linked", f"{field[:-4]} {value}")}}, [event])
            if changed is not None:
                return changed
            asset = Asset.objects(id=asset.id).first()
        raise Aborted("the asset changed meanwhile; retry")

    def delete(self, principal: Principal, asset_id: str, reason: str) -> Asset:
        v = Validator()
        reason = v.text("reason", reason, max_len=MAX_REASON)
        v.check()
        asset = self.load(principal, asset_id)
        if not self.may_manage(principal, asset):
            raise PermissionDenied("only the uploader or an admin of its unit may delete this asset")
        if asset.status != S.ASSET_STATUS_STORED:
            raise FailedPrecondition("这个文件已经删除过了")
        event = self.events.new(events_pb2.AssetDeleted(asset_id=asset.id, reason=reason),
                                district_id=asset.district_id, aggregate_type="asset", aggregate_id=asset.id,
                                version=asset.version + 1, actor_id=principal.subject)
        changed = Asset.change(
            {"_id": asset.id, "version": asset.version, "status": S.ASSET_STATUS_STORED},
            {"$set": {"status": S.ASSET_STATUS_DELETED, "deleted_at": clock.now(), "delete_reason": reason},
             "$push": {"audit": audit_entry(principal.subject, "deleted", reason)}}, [event])
        if changed is None:
            raise Aborted("the asset changed meanwhile; reload and retry")
        return changed
