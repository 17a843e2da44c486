"""What the interceptor does per call besides auth: the caller's address, the inspector's
read-only rule and the audit record (docs/architecture.md, Audit).

The contract says what each RPC does to stored state (`wenming.common.v1.method_effect`): READ,
OWN_ACCOUNT (the caller's own password or session), or — unmarked — a change of shared state.
From that, in every service alike:

- an inspector may call READ and OWN_ACCOUNT methods only; anything else is PERMISSION_DENIED
  before the service sees the request;
- every call an admin (or inspector) makes of a method that is not READ is recorded once it has
  ended: who (account, role, unit), which RPC, the ids it named or created, when, from where (the
  person's address as the gateway passed it, and the network peer) and the trace id — never a
  request body or personal data. The record is one insert into the service's own `audit`
  collection carrying its event (the in-document outbox), so it is durable before the answer
  leaves; the relay publishes it on wenming.audit.v1.events and registration keeps the district's
  whole record for the inspectors (services/registration/audit.py).

Known limit: the record is written after the call's own writes, so a process killed between the
two loses that one record; the call's own events and state are unaffected.
"""

from __future__ import annotations

import contextvars
import logging
import re
from dataclasses import dataclass, field
from collections.abc import Iterable
from typing import cast

import grpc
from google.protobuf import descriptor_pool, message
from prometheus_client import Counter
from pymongo.collection import Collection

from wenming.audit.v1 import audit_pb2, events_pb2
from wenming.common.v1 import common_pb2

from . import tracing
from .auth import Principal, Role
from .errors import PermissionDenied
from .clock import clock
from .events import EventSource, to_timestamp
from .ids import new_id
from .outbox import insert_with_events
from .service_config import method_effect_of
from .mongo import RawDoc

log = logging.getLogger(__name__)

AUDIT = EventSource("audit")  # AUDIT.topic: named when asked, under the release's Kafka prefix
CLIENT_ADDRESS_HEADER = "x-client-address"  # set by the gateway (services/gateway/api.py)
MAX_OBJECT_IDS = 20
# the ids this system hands out: <prefix>_<ULID>; anything else (district ids aside) is not an id
# of an object and may be personal data (a field called national_id, say)
_OBJECT_ID = re.compile(r"^[a-z]{2,8}_[0-9A-HJKMNP-TV-Z]{26}$")
_ADDRESS = re.compile(r"^[0-9A-Fa-f:.\[\]%a-z-]{1,64}$")
READ, OWN_ACCOUNT = common_pb2.METHOD_EFFECT_READ, common_pb2.METHOD_EFFECT_OWN_ACCOUNT

RECORDED = Counter("audit_records_written_total", "Admin actions recorded in the audit record")
NOT_RECORDED = Counter("audit_record_failures_total", "Admin actions whose audit record could not be written")

client_address_var: contextvars.ContextVar[str] = contextvars.ContextVar("client_address", default="")

_effects: dict[str, int] = {}


def client_address() -> str:
    """The address of the person behind the current call (for rate limits and the record)."""
    return client_address_var.get()


def method_effect(full_method: str) -> int:
    """The contract's method_effect of "/package.Service/Method" (0 when unmarked or unknown)."""
    effect = _effects.get(full_method)
    if effect is None:
        try:
            effect = method_effect_of(
                descriptor_pool.Default().FindMethodByName(full_method.lstrip("/").replace("/", ".")))
        except KeyError:
            effect = common_pb2.METHOD_EFFECT_UNSPECIFIED
        _effects[full_method] = effect
    return effect


def object_ids(*messages: object) -> list[str]:
    """The object ids in the top-level fields (`*_id`, `*_ids`) of each message and of the
    messages directly inside it, in order, without repeats; what is not a message (a stream) is passed over."""
    found: list[str] = []

    def visit(msg: message.Message, depth: int) -> None:
        for fd, value in msg.ListFields():
            if fd.type == fd.TYPE_MESSAGE and depth == 0:
                for inner in (value if fd.is_repeated else [value]):
                    visit(inner, 1)
            elif fd.type == fd.TYPE_STRING and (fd.name.endswith("_id") or fd.name.endswith("_ids")):
                for text in (value if fd.is_repeated else [value]):
                    if _OBJECT_ID.match(text) and text not in found:
                        found.append(text)

    for msg in messages:
        if isinstance(msg, message.Message):
            visit(msg, 0)
    return found[:MAX_OBJECT_IDS]


def _peer_address(peer: str) -> str:
    """grpc's "ipv4:10.1.2.3:5678" / "ipv6:[::1]:5678" -> the address without the port; a plain
    address (an HTTP request's) as it is."""
    kind, _, rest = (peer or "").partition(":")
    if kind in ("ipv4", "ipv6"):
        return rest.rpartition(":")[0].strip("[]")
    return peer or ""


@dataclass
class Call:
    """One call being served, as far as the record needs it."""

    method: str
    principal: Principal | None
    client_address: str
    peer: str
    request: object
    audited: bool
    response: object = None
    context_token: contextvars.Token[str] | None = field(default=None, repr=False)

    def record_response(self, response: object) -> None:
        """A unary call's answer: the record names the ids it created too."""
        self.response = response


class CallPolicy:
    """`begin` before the service's handler, `end` with the status code once it has answered."""

    def __init__(self, service: str, audit: Collection[RawDoc] | None):
        self.service = service
        self._audit = audit

    def begin(self, method: str, principal: Principal | None, metadata: Iterable[tuple[str, object]], peer: str,
              request: object) -> Call:
        effect = method_effect(method)
        role = principal.role if principal is not None else Role.ROLE_UNSPECIFIED
        if role == Role.ROLE_INSPECTOR and effect not in (READ, OWN_ACCOUNT):
            raise PermissionDenied("an inspector reads and changes nothing; this call would change data")
        network_peer = _peer_address(peer)
        claimed = next((v for k, v in metadata if k == CLIENT_ADDRESS_HEADER and isinstance(v, str)), "")
        address = claimed if _ADDRESS.match(claimed) else network_peer
        call = Call(method, principal, address, network_peer, request,
                    audited=role in (Role.ROLE_UNIT_ADMIN, Role.ROLE_INSPECTOR) and effect != READ
                    and self._audit is not None)
        call.context_token = client_address_var.set(address)
        return call

    def end(self, call: Call | None, code: grpc.StatusCode) -> None:
        if call is None:
            return
        if call.context_token is not None:
            client_address_var.reset(call.context_token)
        if call.audited:
            try:
                self._record(call, code)
                RECORDED.inc()
            except Exception:  # the call itself has ended as it did; the gap must be seen
                NOT_RECORDED.inc()
                log.exception("audit record of %s could not be written", call.method)

    def _record(self, call: Call, code: grpc.StatusCode) -> None:
        # begin() audits only an admin's (or inspector's) call, and only with a collection to record in
        assert call.principal is not None and self._audit is not None
        record_action(self._audit, self.service, call.principal, call.method,
                      object_ids(call.request, call.response), code=code.name, client_address=call.client_address,
                      peer=call.peer, trace_id=tracing.current_trace_id())


def record_action(audit: Collection[RawDoc], service: str, principal: Principal, method: str, ids: list[str], *,
                  code: str, client_address: str, peer: str, trace_id: str, rows: int = 0) -> None:
    """One admin action into the service's `audit` collection with its event: a call once it has
    ended (CallPolicy), or what a job started by a call did later (an export's rows, exports.py)."""
    now = clock.now()
    action = audit_pb2.AdminAction(
        action_id=new_id("act"), district_id=principal.district_id, actor_id=principal.subject,
        actor_role=cast(Role, principal.role), actor_unit_id=principal.unit_id, service=service, method=method,
        object_ids=ids, occurred_at=to_timestamp(now), client_address=client_address, peer=peer,
        trace_id=trace_id, code=code, rows=rows)
    event = AUDIT.new(events_pb2.AdminActionRecorded(action=action), district_id=principal.district_id,
                      aggregate_type="admin_action", aggregate_id=action.action_id, version=1,
                      actor_id=principal.subject)
    document = {"_id": action.action_id, "district_id": action.district_id, "occurred_at": now,
                "actor_id": action.actor_id, "method": action.method, "object_ids": list(action.object_ids),
                "code": action.code, "trace_id": action.trace_id, "rows": rows}
    insert_with_events(audit, document, [event])
