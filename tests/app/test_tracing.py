"""One request followed across the platform by its W3C trace id: a resident's PlaceOrder sent
to the gateway with a `traceparent` is logged by the gateway and by ordering under that trace,
its OrderPlaced event carries it in the envelope and in the Kafka record's `traceparent` header,
and the notification service's consumer logs applying the event under the same trace."""

from __future__ import annotations

import json
import urllib.request

from services.common import tracing
from tests.support.waiting import wait_until
from tests.support.events import TopicTap
from tests.support.registration import new_phone
from wenming.registration.v1 import registration_pb2 as reg
from services.common.events import events_topic

TRACE = "0af7651916cd43dd8448eb211c80319c"


def _lines(proc) -> list[dict]:
    out = []
    for line in proc.log_path.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def test_a_request_is_followed_from_the_gateway_through_ordering_kafka_and_a_consumer(world, gateway, peers, stack):
    yard = world.courtyards[1]
    phone = new_phone()
    resident, _ = world.district.resident(yard.unit_id, phone=phone, name="孙大爷")
    world.wait_resident_known(resident.resident_id)
    token = world.district.login(reg.PRINCIPAL_KIND_RESIDENT, phone)
    tap = TopicTap(stack.kafka, events_topic("ordering"))
    request = urllib.request.Request(
        f"{gateway.http_base}/api/v1/ordering/PlaceOrder", method="POST",
        data=json.dumps({"itemId": world.items["haircut"].item_id, "note": "跟踪一次请求"}).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}",
                 "traceparent": f"00-{TRACE}-b7ad6b7169203331-01"})
    with urllib.request.urlopen(request, timeout=10) as reply:
        order_id = json.loads(reply.read())["order"]["orderId"]
        answered = tracing.parse(reply.headers["traceparent"])
    assert answered.trace_id == TRACE and answered.span_id != "b7ad6b7169203331"

    # the event: its envelope and its record's header
    def placed():
        for envelope, _, record in tap.events(world.district.id):
            if envelope.aggregate_id == order_id and envelope.event_type.endswith("OrderPlaced"):
                return envelope, dict(record.headers)
        return None

    envelope, headers = wait_until(placed, what="OrderPlaced on the topic")
    tap.close()
    assert envelope.trace_id == TRACE
    assert tracing.parse(headers["traceparent"].decode()).trace_id == TRACE

    # the logs: the gateway's request, ordering's RPC, the notification consumer applying the event
    def traced(proc, **match) -> list[dict]:
        return [line for line in _lines(proc) if line.get("trace_id") == TRACE
                and all(line.get(k) == v for k, v in match.items())]

    assert traced(gateway, msg="http", path="/api/v1/ordering/PlaceOrder", status=200)
    assert traced(peers["ordering"], msg="rpc", rpc="/wenming.ordering.v1.OrderingService/PlaceOrder", code="OK")
    assert wait_until(lambda: traced(peers["notification"], msg="event", event_id=envelope.event_id, outcome="APPLIED"),
                      what="the notification consumer's log line for the event")
