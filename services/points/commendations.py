"""表彰/嘉许: volunteers' annual commendations — recorded by an admin whose subtree holds the
volunteer, listed for the volunteer and the admins above them, revoked (never deleted) by an admin
of the recording unit or above, and shown on the volunteer's certificates while not revoked.

Each is one document (`commendations`) carrying its events (CommendationRecorded,
CommendationRevoked). The rules are commendation_rules.py; this desk validates, loads, applies
them and commits one write.
"""

from __future__ import annotations

from prometheus_client import Counter

from services.common.auth import Principal, Role
from services.common.clock import CHINA, clock
from services.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import key
from services.common.outbox import insert_once_with_events, update_with_events
from services.common.validation import Validator
from wenming.points.v1 import events_pb2
from wenming.points.v1 import points_pb2 as pb

from . import commendation_rules as rules
from .directory import Directory
from .models import Commendation

RECORDED = Counter("points_commendations_recorded_total", "Commendations (表彰) recorded by admins, by level",
                   ["commendation_level"])
REVOKED = Counter("points_commendations_revoked_total", "Commendations (表彰) revoked by admins")
_CURSOR_SEPARATOR = "|"


def volunteer_key(district_id: str, volunteer_id: str) -> str:
    return key(district_id, "commendations", volunteer_id)


class Commendations:
    def __init__(self, directory: Directory, events: EventSource):
        self.directory = directory
        self.events = events
        self.collection = Commendation.collection()

    # ---- writes ----

    def record(self, principal: Principal, req: pb.RecordCommendationRequest) -> dict:
        v = Validator()
        asked, idempotency_key = rules.validate(v, req, clock.now().astimezone(CHINA).date())
        v.check()
        if principal.role != Role.ROLE_UNIT_ADMIN:
            raise PermissionDenied("表彰由志愿者所在单位（或其上级）的管理员登记")
        district = principal.district_id
        holder = self.directory.holder(district, asked.volunteer_id)
        if holder is None or holder.kind != pb.ACCOUNT_KIND_VOLUNTEER:
            raise NotFound("volunteer", asked.volunteer_id)
        rules.require_recorder(principal, holder.unit_paths)
        request_key = key(district, principal.subject, idempotency_key)

        def new_commendation() -> tuple[dict, list[dict]]:
            unit = self.directory.unit(district, principal.unit_id)
            document = {
                "_id": new_id("comm"), "district_id": district,
                "volunteer_key": volunteer_key(district, asked.volunteer_id), "request_key": request_key,
                **asked.stored(), "unit_id": unit["_id"], "unit_path": list(unit["path"]),
                "recorded_by": principal.subject, "recorded_at": clock.now_as_stored(),
                "idempotency_key": idempotency_key,
                "revoked": False, "revoke_reason": "", "revoked_by": "",
            }
            event = self.events.new(events_pb2.CommendationRecorded(commendation=commendation_msg(
                {**document, "version": 1})), district_id=district, aggregate_type="commendation",
                aggregate_id=document["_id"], version=1, actor_id=principal.subject)
            return document, [event]

        stored, inserted = insert_once_with_events(self.collection, {"request_key": request_key}, new_commendation)
        if not inserted:
            return _replayed(stored, asked)
        RECORDED.labels(pb.CommendationLevel.Name(asked.level)).inc()
        return stored

    def revoke(self, principal: Principal, req: pb.RevokeCommendationRequest) -> dict:
        v = Validator()
        commendation_id, reason = rules.validate_revocation(v, req.commendation_id, req.reason)
        v.check()
        if principal.role != Role.ROLE_UNIT_ADMIN:
            raise PermissionDenied("表彰由登记单位（或其上级）的管理员撤销")
        current = Commendation.raw_in_district(principal.district_id, commendation_id, "commendation")
        changes = rules.revoke(current, principal, reason, clock.now_as_stored())
        after = {**current, **changes, "version": current["version"] + 1}
        event = self.events.new(events_pb2.CommendationRevoked(commendation=commendation_msg(after)),
                                district_id=principal.district_id, aggregate_type="commendation",
                                aggregate_id=commendation_id, version=after["version"], actor_id=principal.subject)
        updated = update_with_events(self.collection, {"_id": commendation_id, "version": current["version"],
                                                       "revoked": False}, {"$set": changes}, [event])
        if updated is None:
            if self.collection.find_one({"_id": commendation_id, "revoked": True}, {"_id": 1}):
                raise FailedPrecondition("该表彰已撤销")
            raise Aborted("该表彰刚被修改，请重试")
        REVOKED.inc()
        return updated

    # ---- reads ----

    def list_for(self, principal: Principal, req: pb.ListCommendationsRequest) -> tuple[list[dict], str]:
        """A volunteer's commendations, newest first, revoked ones included (marked): the
        volunteer's own, or for admins of a unit holding the volunteer."""
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        v.check()
        cursor = _cursor(req.page.page_token)
        volunteer_id = self.directory.volunteer_asked_for(principal, volunteer_id, "表彰")
        found = rules.newest_first(self.of_volunteer(principal.district_id, volunteer_id))
        if cursor is not None:
            found = [c for c in found if rules.sort_key(c) < cursor]
        token = encode_page_token(_CURSOR_SEPARATOR.join(rules.sort_key(found[size - 1]))) if len(found) > size \
            else ""
        return found[:size], token

    def of_volunteer(self, district_id: str, volunteer_id: str) -> list[dict]:
        """Every commendation of a volunteer (a handful: one indexed key, sorted here)."""
        return list(self.collection.find({"volunteer_key": volunteer_key(district_id, volunteer_id)}, {"outbox": 0}))

    def on_certificate(self, district_id: str, volunteer_id: str) -> list[dict]:
        """What a certificate of the volunteer shows: the commendations not revoked, as they stand."""
        return rules.certificate_lines(self.of_volunteer(district_id, volunteer_id))


def _cursor(token: str) -> tuple[str, str] | None:
    last = decode_page_token(token)
    if last is None:
        return None
    awarded_on, separator, commendation_id = last.partition(_CURSOR_SEPARATOR)
    if not separator or not commendation_id:
        raise InvalidArgument.field("page.page_token", "is not a token returned by this API")
    return awarded_on, commendation_id


def _replayed(existing: dict, asked: rules.CommendationInput) -> dict:
    if not rules.same_request(existing, asked):
        raise InvalidArgument.field("idempotency_key", "was already used for a different request")
    return existing


def commendation_msg(doc: dict) -> pb.Commendation:
    return pb.Commendation(
        commendation_id=doc["_id"], district_id=doc["district_id"], volunteer_id=doc["volunteer_id"],
        year=doc["year"], level=doc["level"], title=doc["title"], issuer=doc["issuer"],
        awarded_on=doc["awarded_on"], unit_id=doc["unit_id"], recorded_by=doc["recorded_by"],
        recorded_at=to_timestamp(doc["recorded_at"]), revoked=doc["revoked"], revoke_reason=doc["revoke_reason"],
        revoked_by=doc["revoked_by"], revoked_at=to_timestamp(doc.get("revoked_at")), version=doc["version"])
