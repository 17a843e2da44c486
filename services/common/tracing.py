"""W3C Trace Context across the platform, so one request can be followed through every service.

The gateway (or any caller) starts a trace or continues the `traceparent` it was sent; every
outgoing gRPC call carries a `traceparent` for a child span; every event records the trace id in
its envelope and its Kafka record carries a `traceparent` header; a consumer continues that trace
while it applies the event. Every log line written meanwhile names the trace id (logs.py), and
with ACCESS_LOG=true every RPC and every applied event writes one line, so

    grep '"trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"' */logs/*.log

shows the request's path from the gateway through the services and their consumers.

This is propagation and log correlation only: no spans are exported. The header format is the
W3C one, so an OpenTelemetry SDK and collector can take over the same headers when a district
runs one.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

TRACEPARENT = "traceparent"
_HEADER = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class TraceContext:
    trace_id: str
    span_id: str
    sampled: bool = True

    def header(self) -> str:
        return f"00-{self.trace_id}-{self.span_id}-{'01' if self.sampled else '00'}"

    def child(self) -> TraceContext:
        return TraceContext(self.trace_id, _random_id(8), self.sampled)


def _random_id(size: int) -> str:
    while True:
        value = os.urandom(size).hex()
        if value.strip("0"):  # all zeros is invalid in W3C trace context
            return value


def parse(header: str | None) -> TraceContext | None:
    """The context a `traceparent` header names, or None for anything invalid."""
    match = _HEADER.match((header or "").strip().lower())
    if not match or not match.group(1).strip("0") or not match.group(2).strip("0"):
        return None
    return TraceContext(match.group(1), match.group(2), int(match.group(3), 16) & 1 == 1)


def new_trace() -> TraceContext:
    return TraceContext(_random_id(16), _random_id(8))


def continue_from(header: str | None) -> TraceContext:
    """A child of the caller's span, or a new trace when the caller sent none (or garbage)."""
    parent = parse(header)
    return parent.child() if parent else new_trace()


def from_trace_id(trace_id: str) -> TraceContext:
    """A span in a trace known only by its id (an event envelope); a new trace for anything else."""
    return TraceContext(trace_id, _random_id(8)) if _TRACE_ID.match(trace_id or "") else new_trace()


_current: contextvars.ContextVar[TraceContext | None] = contextvars.ContextVar("trace", default=None)


def current() -> TraceContext | None:
    return _current.get()


def current_trace_id() -> str:
    context = _current.get()
    return context.trace_id if context else ""


def enter(context: TraceContext) -> contextvars.Token[TraceContext | None]:
    """Makes `context` current; `leave(token)` restores what was current before."""
    return _current.set(context)


def leave(token: contextvars.Token[TraceContext | None]) -> None:
    _current.reset(token)


@contextlib.contextmanager
def active(context: TraceContext) -> Iterator[TraceContext]:
    token = enter(context)
    try:
        yield context
    finally:
        leave(token)


def outgoing_header() -> str | None:
    """The `traceparent` for a call made now: a child span of the current one."""
    context = _current.get()
    return context.child().header() if context else None


def continued_from_metadata(metadata: Mapping[str, str]) -> TraceContext:
    return continue_from(metadata.get(TRACEPARENT))


def record_header(trace_id: str) -> list[tuple[str, bytes]]:
    """The `traceparent` header of a Kafka record for an event of `trace_id` (none without one)."""
    if not _TRACE_ID.match(trace_id or ""):
        return []
    return [(TRACEPARENT, from_trace_id(trace_id).header().encode())]
