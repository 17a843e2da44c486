"""Certifications that unlock skilled service (e.g. `first_aid` for 应急救护 items).

Granted from training's own CourseCompleted events (a session completion of a course whose
revision grants one): the certification id derives from the completion event's id, so a
re-delivered event grants nothing twice. Expire at `expires_at` (a certification past it never
qualifies, even before the expiry job marked it); the job emits CertificationExpired once per
certification. Revocable, with a reason, by admins of the granting unit.
"""

from __future__ import annotations

import builtins
import datetime as dt

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.clock import as_utc, clock
from services.common.consumer import ConsumedEvent
from services.common.errors import FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token
from services.common.validation import Validator
from services.common.readmodels import unit_ref_msg
from wenming.training.v1 import events_pb2, training_pb2 as pb

from . import metrics
from .dates import add_months
from .catalog import CERTIFICATION_CODE
from .directory import Directory
from .models import Certification

ACTIVE, EXPIRED, REVOKED = (pb.CERTIFICATION_STATUS_ACTIVE, pb.CERTIFICATION_STATUS_EXPIRED,
                            pb.CERTIFICATION_STATUS_REVOKED)


def effective_status(cert: Certification, now: dt.datetime) -> pb.CertificationStatus:
    """EXPIRED as soon as expires_at passed, whether or not the expiry job has run."""
    if cert.status == ACTIVE and cert.expires_at is not None and as_utc(cert.expires_at) <= now:
        return EXPIRED
    return cert.status


def certification_msg(cert: Certification) -> events_pb2.Certification:
    return events_pb2.Certification(
        certification_id=cert.id, volunteer_id=cert.volunteer_id, code=cert.code, name=cert.name,
        course_id=cert.course_id, granted_by=unit_ref_msg(cert.granted_by), granted_at=to_timestamp(cert.granted_at),
        expires_at=to_timestamp(cert.expires_at) if cert.expires_at else None)


def qualifying_filter(now: dt.datetime) -> dict:
    return {"status": ACTIVE, "$or": [{"expires_at": None}, {"expires_at": {"$gt": now}}]}


class CertificationRegistry:
    def __init__(self, directory: Directory, events: EventSource):
        self.directory = directory
        self.events = events

    def _event(self, payload, cert: Certification, version: int, actor: str) -> dict:
        return self.events.new(payload, district_id=cert.district_id, aggregate_type="certification",
                               aggregate_id=cert.id, version=version, actor_id=actor, occurred_at=clock.now())

    # ---- granting (from CourseCompleted) ----

    def grant_for(self, event: ConsumedEvent) -> bool:
        """Grants the certification a completion earns; False when it was granted already."""
        completed = event.payload_as(events_pb2.CourseCompleted)
        spec = completed.certification
        granted_at = completed.completed_at.ToDatetime(tzinfo=dt.UTC)
        ref = completed.recorded_by
        cert = Certification(
            id="crt_" + event.event_id.removeprefix("evt_"), district_id=event.envelope.district_id,
            volunteer_id=completed.volunteer_id, code=spec.code, name=spec.name, course_id=completed.course_id,
            session_id=completed.session_id,
            granted_by={"unit_id": ref.unit_id, "level": ref.level, "name": ref.name, "path": list(ref.path)},
            granted_at=granted_at, expires_at=add_months(granted_at, spec.valid_months) if spec.valid_months else None,
            status=ACTIVE)
        try:
            cert.insert([self._event(events_pb2.CertificationGranted(certification=certification_msg(cert)), cert, 1,
                                     event.envelope.actor_id)])
        except DuplicateKeyError:
            return False
        metrics.CERTIFICATIONS.labels("granted").inc()
        return True

    # ---- expiry job ----

    def expire_due(self, batch: int = 500) -> int:
        """Marks certifications past expires_at EXPIRED, one CertificationExpired each. A second
        run (or replica) finds them no longer ACTIVE and changes nothing."""
        expired = 0
        due = Certification.collection().find({"status": ACTIVE, "expires_at": {"$lte": clock.now()}},
                                              {"outbox": 0}).limit(batch)
        for raw in list(due):
            cert = Certification.from_raw(raw)
            after = Certification.from_raw({**raw, "status": EXPIRED})
            event = self._event(events_pb2.CertificationExpired(certification=certification_msg(after)), cert,
                                cert.version + 1, "")
            if Certification.change({"_id": cert.id, "status": ACTIVE, "version": cert.version},
                                    {"$set": {"status": EXPIRED, "ended_at": cert.expires_at}}, [event]):
                expired += 1
        metrics.CERTIFICATIONS.labels("expired").inc(expired)
        return expired

    # ---- reads ----

    def _load(self, principal: Principal, certification_id: str) -> Certification:
        v = Validator()
        certification_id = v.ident("certification_id", certification_id)
        v.check()
        cert = Certification.objects(id=certification_id, district_id=principal.district_id).exclude("outbox").first()
        if cert is None:
            raise NotFound("certification", certification_id)
        return cert

    def get(self, principal: Principal, certification_id: str) -> Certification:
        cert = self._load(principal, certification_id)
        if principal.manages(cert.granted_by["path"]):
            return cert
        holder = self.directory.models.volunteer(cert.district_id, cert.volunteer_id)
        if holder is None:
            raise PermissionDenied("only the holder or an admin of their unit or of the granting unit may see this")
        self.directory.require_self_or_admin(principal, holder)
        return cert

    def list(self, principal: Principal, req: pb.ListCertificationsRequest) -> tuple[list[Certification], str]:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id, required=False)
        unit_id = v.ident("unit_id", req.unit_id, required=False)
        if volunteer_id and unit_id:
            v.fail("unit_id", "give either volunteer_id or unit_id, not both")
        code = v.regex("code", req.code, CERTIFICATION_CODE, "is not a certification code", required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        query: dict = {"district_id": principal.district_id}
        if volunteer_id or (not unit_id and principal.role == Role.ROLE_VOLUNTEER):
            volunteer = self.directory.volunteer(principal.district_id, volunteer_id or principal.subject)
            self.directory.require_self_or_admin(principal, volunteer)
            query["volunteer_id"] = volunteer["_id"]
        else:
            if not (unit_id or principal.unit_id):
                raise InvalidArgument.field("unit_id", "must be set (your token names no unit)")
            unit = self.directory.unit(principal.district_id, unit_id or principal.unit_id)
            self.directory.require_admin_of_unit(principal, unit)
            holders = self.directory.volunteer_ids_in(principal.district_id, unit)
            if holders is not None:
                query["volunteer_id"] = {"$in": holders}
        if code:
            query["code"] = code
        if req.qualifying_only:
            query.update(qualifying_filter(clock.now()))
        if after:
            query["_id"] = {"$gt": after}
        found = [Certification.from_raw(r) for r in Certification.collection().find(query, {"outbox": 0})
                 .sort("_id", 1).limit(size + 1)]
        token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        return found[:size], token

    def of_volunteer(self, district_id: str, volunteer_id: str) -> builtins.list[Certification]:
        return list(Certification.objects(district_id=district_id, volunteer_id=volunteer_id).exclude("outbox")
                    .order_by("-granted_at"))

    # ---- revocation ----

    def revoke(self, principal: Principal, certification_id: str, reason: str) -> Certification:
        v = Validator()
        certification_id = v.ident("certification_id", certification_id)
        reason = v.text("reason", reason, max_len=200)
        v.check()
        cert = self._load(principal, certification_id)
        self.directory.require_admin_of_unit(principal, {**cert.granted_by, "district_id": cert.district_id},
                                             "certification's granting unit")
        status = effective_status(cert, clock.now())
        if status != ACTIVE:
            raise FailedPrecondition(f"the certification is {pb.CertificationStatus.Name(status).split('_')[-1]} "
                                     "already")
        now = clock.now()
        after = Certification.from_raw({**cert.to_mongo().to_dict(), "status": REVOKED})
        event = self._event(events_pb2.CertificationRevoked(certification=certification_msg(after), reason=reason),
                            cert, cert.version + 1, principal.subject)
        revoked = Certification.change({"_id": cert.id, "status": ACTIVE, "version": cert.version},
                                       {"$set": {"status": REVOKED, "revoke_reason": reason, "ended_at": now}}, [event])
        if revoked is None:
            raise FailedPrecondition("the certification changed meanwhile; reload and retry")
        metrics.CERTIFICATIONS.labels("revoked").inc()
        return revoked
