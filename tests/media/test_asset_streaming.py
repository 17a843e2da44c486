"""Upload → dedup → download of a 50 MB file by gRPC and by HTTP with Range, with the service's
memory staying flat; and the same round trip on the shared chunk layout."""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

from tests.support.grpc_helpers import bearer
from wenming.media.v1 import media_pb2 as pb

from .helpers import MP4_HEAD, MediaClient, fake_video, peak_rss_kib, reset_peak_rss

MIB = 1024 * 1024


def test_50_mb_round_trip_by_grpc_and_http_deduplicated_with_flat_memory(media, media_client, world, media_db):
    token = world.volunteer_token
    pid = media.process.pid
    # warm up every path the big transfer takes (gRPC's flow-control windows grow with the first
    # large transfer), so one-time allocations are not counted as growth
    warm = media_client.upload(token, fake_video(16 * MIB + 17), "warm.mp4").asset
    media_client.download(token, warm.asset_id)
    media_client.http("GET", warm.content_path, token)
    assert media_client.http_upload(token, fake_video(2 * MIB + 5), "warm2.mp4")[0] == 201
    reset_peak_rss(pid)
    before = peak_rss_kib(pid)

    data = MP4_HEAD + os.urandom(50 * MIB - len(MP4_HEAD))
    sha = hashlib.sha256(data).hexdigest()
    first = media_client.upload(token, data, "宣讲活动.mp4", timeout=180)
    assert not first.deduplicated
    asset = first.asset
    assert (asset.kind, asset.content_type, asset.size_bytes, asset.sha256) == \
        (pb.ASSET_KIND_VIDEO, "video/mp4", len(data), sha)
    assert asset.unit.unit_id == world.tree.courtyards[0].unit_id and asset.file_name == "宣讲活动.mp4"

    # the same bytes again, through the browser API: a new asset on the stored blob
    status, reply = media_client.http_upload(token, data, "宣讲活动-副本.mp4")
    assert status == 201 and reply["deduplicated"] is True, reply
    assert reply["asset"]["sha256"] == sha and reply["asset"]["assetId"] != asset.asset_id
    assert media_db.blobs.count_documents({"district_id": world.district.id, "sha256": sha}) == 1
    assert media_db.blobs.count_documents({"district_id": world.district.id, "status": {"$ne": "STORED"}}) == 0

    # gRPC: whole, and a slice
    meta, whole = media_client.download(token, asset.asset_id, timeout=180)
    assert meta.asset_id == asset.asset_id and whole == data
    _, part = media_client.download(token, asset.asset_id, offset=20 * MIB + 3, length=MIB)
    assert part == data[20 * MIB + 3:21 * MIB + 3]

    # HTTP: whole, then seeking like a video player
    status, headers, body = media_client.http("GET", asset.content_path, token)
    assert status == 200 and body == data
    assert headers["Accept-Ranges"] == "bytes" and int(headers["Content-Length"]) == len(data)
    assert headers["Content-Type"] == "video/mp4" and headers["ETag"] == f'"{sha}"'
    status, headers, body = media_client.http("GET", asset.content_path, token,
                                              headers={"Range": "bytes=31457280-32505855"})
    assert status == 206 and headers["Content-Range"] == f"bytes 31457280-32505855/{len(data)}"
    assert body == data[31457280:32505856]
    status, headers, body = media_client.http("GET", asset.content_path, token, headers={"Range": "bytes=-1000"})
    assert status == 206 and body == data[-1000:]
    status, headers, _ = media_client.http("GET", asset.content_path, token,
                                           headers={"Range": f"bytes={len(data)}-"})
    assert status == 416 and headers["Content-Range"] == f"bytes */{len(data)}"

    # bounded by the transports, not the file: gRPC's flow-control windows (up to 26 MiB seen on a
    # busy machine) and waitress's 16 MiB output buffer, below one whole copy of the 50 MB file
    growth_mib = (peak_rss_kib(pid) - before) / 1024
    assert growth_mib < 45, f"the media process grew by {growth_mib:.1f} MiB moving 50 MB files around"


def test_shared_chunk_layout_round_trip(spawn, world):
    """The layout for MongoDB (one chunk collection, indexed range reads) works the same way."""
    proc = spawn("media", port_offset=2, log_name="media-shared-layout",
                 extra_env={"MEDIA_CHUNK_LAYOUT": "shared", "MEDIA_CHUNK_BYTES": str(64 * 1024)})
    proc.wait_serving(60)
    client = MediaClient(proc)
    try:
        data = fake_video(700 * 1024 + 11, seed=b"shared-layout-01")
        asset = client.upload(world.volunteer_token, data, "layout.mp4", chunk=100_000).asset
        assert client.download(world.volunteer_token, asset.asset_id)[1] == data
        assert client.download(world.volunteer_token, asset.asset_id, offset=65_530, length=70_000)[1] == \
            data[65_530:135_530]
        status, _, body = client.http("GET", asset.content_path, world.volunteer_token,
                                      headers={"Range": "bytes=131072-196607"})
        assert status == 206 and body == data[131072:196608]
        stub_reply = client.stub.GetAsset(pb.GetAssetRequest(asset_id=asset.asset_id),
                                          metadata=bearer(world.volunteer_token), timeout=5)
        assert stub_reply.asset.size_bytes == len(data)
    finally:
        client.close()


def test_the_same_bytes_uploaded_at_once_are_stored_once(media_client, world, media_db):
    data = fake_video(MIB + 333, seed=os.urandom(16))
    tokens = [world.volunteer_token, world.other_volunteer_token, world.admin(world.tree.institute),
              world.district.center_admin_token]
    with ThreadPoolExecutor(len(tokens)) as pool:
        replies = list(pool.map(lambda token: media_client.upload(token, data, "同一段视频.mp4"), tokens))
    sha = hashlib.sha256(data).hexdigest()
    assert {r.asset.sha256 for r in replies} == {sha} and len({r.asset.asset_id for r in replies}) == len(tokens)
    assert sorted(r.deduplicated for r in replies) == [False, True, True, True]
    assert media_db.blobs.count_documents({"district_id": world.district.id, "sha256": sha}) == 1
    assert media_db.blobs.count_documents({"district_id": world.district.id, "status": "PENDING"}) == 0
    blob_ids = {media_db.assets.find_one({"_id": r.asset.asset_id})["blob_id"] for r in replies}
    assert len(blob_ids) == 1
    for reply, token in zip(replies, tokens, strict=True):
        assert media_client.download(token, reply.asset.asset_id)[1] == data
