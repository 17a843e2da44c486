"""The media process reports health like every service and exports its own metrics: bytes
stored and served, uploads refused by reason, the review queue."""

from __future__ import annotations

import json
import re

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .helpers import fake_video
from services.common.events import events_topic


def metric(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_health_readiness_and_media_metrics(media, media_client, world):
    with grpc.insecure_channel(media.grpc_target) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service="wenming.media.v1.MediaService"), timeout=5).status
    assert status == health_pb2.HealthCheckResponse.SERVING
    code, _, body = media_client.http("GET", "/readyz", None)
    assert code == 200 and json.loads(body)["checks"] == {"mongodb": True, "kafka": True, "token_revocations": True,
                                                          "outbox_relay": True, "consumers": True}

    before = media_client.metrics()
    data = fake_video(300_000)
    asset = media_client.upload(world.volunteer_token, data, "metrics.mp4").asset
    media_client.download(world.volunteer_token, asset.asset_id)
    media_client.http("GET", asset.content_path, world.volunteer_token, headers={"Range": "bytes=0-999"})
    try:
        media_client.upload(world.volunteer_token, b"not a video at all" * 10, "x.mp4")
    except grpc.RpcError:
        pass
    after = media_client.metrics()

    assert metric(after, "media_bytes_stored_total", kind="video") - metric(before, "media_bytes_stored_total",
                                                                            kind="video") == len(data)
    assert metric(after, "media_bytes_served_total", channel="grpc") - \
        metric(before, "media_bytes_served_total", channel="grpc") == len(data)
    assert metric(after, "media_bytes_served_total", channel="http") - \
        metric(before, "media_bytes_served_total", channel="http") == 1000
    assert metric(after, "media_uploads_refused_total", reason="unsupported_type") - \
        metric(before, "media_uploads_refused_total", reason="unsupported_type") == 1
    assert metric(after, "media_uploads_total", kind="video", result="stored") >= 1
    assert "# TYPE media_review_queue_length gauge" in after
    assert re.search(r'grpc_server_handled_total\{code="OK",grpc_method="UploadAsset",'
                     r'grpc_service="wenming.media.v1.MediaService"\}', after)
    assert metric(after, "media_http_requests_total", route="/v1/assets/<asset_id>/content", status="206") >= 1
    assert metric(after, "outbox_events_published_total", topic=events_topic("media")) >= 1
