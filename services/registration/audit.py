"""The district's audit record: every admin action of every service, kept here for the inspectors.

Each service records its admins' state-changing calls and publishes them on wenming.audit.v1.events
(services/common/audit.py); `store` keeps each action once (keyed by its action id, so a
re-delivered event changes nothing). Inspectors list them newest first, filtered by actor, object
and time window, page by page, or export them as CSV — their own district's only.
"""

from __future__ import annotations

import csv
import datetime as dt
import io

from google.protobuf.json_format import MessageToDict
from mongoengine.errors import NotUniqueError

from services.common.auth import Principal, Role, require_role
from services.common.clock import as_utc
from services.common.consumer import ConsumedEvent, Outcome
from services.common.events import PoisonEvent, to_timestamp
from services.common.ids import decode_page_token, encode_page_token
from services.common.validation import Validator
from wenming.audit.v1 import audit_pb2, events_pb2
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import registration_pb2 as pb

from .models import AuditRecord

RECORDED_TYPE = events_pb2.AdminActionRecorded.DESCRIPTOR.full_name
EXPORT_LIMIT = 10_000
CSV_COLUMNS = ("occurred_at", "district_id", "actor_id", "actor_role", "actor_unit_id", "service", "method",
               "object_ids", "code", "rows", "client_address", "peer", "trace_id", "action_id")


def store(event: ConsumedEvent) -> Outcome:
    """Handler of AdminActionRecorded: the action, stored once."""
    action = event.payload.action
    if not action.action_id or action.district_id != event.envelope.district_id:
        raise PoisonEvent("an admin action without an id, or outside its envelope's district")
    record = AuditRecord(
        id=action.action_id, district_id=action.district_id, actor_id=action.actor_id, actor_role=action.actor_role,
        actor_unit_id=action.actor_unit_id, service=action.service, method=action.method,
        object_ids=list(action.object_ids), occurred_at=action.occurred_at.ToDatetime(dt.UTC),
        client_address=action.client_address, peer=action.peer, trace_id=action.trace_id, code=action.code,
        rows=action.rows)
    try:
        record.save(force_insert=True)
    except NotUniqueError:
        return Outcome.DUPLICATE
    return Outcome.APPLIED


def action_msg(record: AuditRecord) -> audit_pb2.AdminAction:
    return audit_pb2.AdminAction(
        action_id=record.id, district_id=record.district_id, actor_id=record.actor_id, actor_role=record.actor_role,
        actor_unit_id=record.actor_unit_id, service=record.service, method=record.method,
        object_ids=list(record.object_ids), occurred_at=to_timestamp(as_utc(record.occurred_at)),
        client_address=record.client_address, peer=record.peer, trace_id=record.trace_id, code=record.code,
        rows=record.rows)


class AuditLog:
    def list(self, principal: Principal, req: pb.ListAuditRecordsRequest) -> tuple[list[AuditRecord], str]:
        v = Validator()
        size = v.page_size("page.page_size", req.page.page_size)
        query = self._query(principal, v, req.filter)
        after = decode_page_token(req.page.page_token)
        v.check()
        if after is not None:  # action ids are time-ordered (ULIDs): newest first is by id, descending
            query["_id"] = {"$lt": after}
        records = list(AuditRecord.objects(__raw__=query).order_by("-id").limit(size + 1))
        token = ""
        if len(records) > size:
            records = records[:size]
            token = encode_page_token(records[-1].id)
        return records, token

    def export(self, principal: Principal, req: pb.ExportAuditRecordsRequest) -> tuple[bytes, int, bool]:
        v = Validator()
        query = self._query(principal, v, req.filter)
        v.check()
        records = list(AuditRecord.objects(__raw__=query).order_by("-id").limit(EXPORT_LIMIT + 1))
        truncated = len(records) > EXPORT_LIMIT
        records = records[:EXPORT_LIMIT]
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(CSV_COLUMNS)
        for record in records:
            row = MessageToDict(action_msg(record), preserving_proto_field_name=True)
            row["actor_role"] = common_pb2.Role.Name(record.actor_role)
            row["object_ids"] = " ".join(record.object_ids)
            writer.writerow([_cell(row.get(column, "")) for column in CSV_COLUMNS])
        return ("\ufeff" + out.getvalue()).encode("utf-8"), len(records), truncated

    @staticmethod
    def _query(principal: Principal, v: Validator, audit_filter: pb.AuditFilter) -> dict:
        """The district's records matching the filter; inspectors only."""
        require_role(principal, Role.ROLE_INSPECTOR)
        query: dict = {"district_id": principal.district_id}
        if audit_filter.actor_id:
            query["actor_id"] = v.ident("filter.actor_id", audit_filter.actor_id)
        if audit_filter.object_id:
            query["object_ids"] = v.ident("filter.object_id", audit_filter.object_id)
        since = v.timestamp("filter.since", audit_filter, "since", required=False)
        until = v.timestamp("filter.until", audit_filter, "until", required=False)
        if since and until and since >= until:
            v.fail("filter.until", "must be after filter.since")
        window = {op: t for op, t in (("$gte", since), ("$lt", until)) if t}
        if window:
            query["occurred_at"] = window
        return query


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: no formula from a value starting with =, +, - or @."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
