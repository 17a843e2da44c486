"""An upload cut short by a crash leaves no asset; its chunks are removed by the orphan job once
they are older than the orphan age (the service's clock is moved, not waited for)."""

from __future__ import annotations

import os
import threading

import grpc

from tests.support.grpc_helpers import bearer
from wenming.media.v1 import media_pb2 as pb

from .helpers import CHUNK, MP4_HEAD, MediaClient, chunk_docs, header
from tests.support.waiting import wait_until

MIB = 1024 * 1024


def test_a_crashed_upload_leaves_no_asset_and_the_orphan_job_removes_its_chunks(spawn, world, media_db, tmp_path):
    clock = tmp_path / "clock"
    clock.write_text("0")
    proc = spawn("media", port_offset=1, log_name="media-crash",
                 extra_env={"CLOCK_OFFSET_FILE": str(clock), "MEDIA_CLEANUP_INTERVAL_SECONDS": "1",
                            "MEDIA_ORPHAN_MINUTES": "30"})
    proc.wait_serving(60)
    client = MediaClient(proc)
    data = MP4_HEAD + os.urandom(6 * MIB)
    release = threading.Event()

    def messages():
        yield pb.UploadAssetRequest(header=header(data, "断电前.mp4"))
        for start in range(0, 3 * MIB, CHUNK):
            yield pb.UploadAssetRequest(chunk=data[start:start + CHUNK])
        release.wait(30)

    assets_before = media_db.assets.count_documents({"district_id": world.district.id})
    call = client.stub.UploadAsset.future(messages(), metadata=bearer(world.volunteer_token), timeout=60)
    try:
        pending = wait_until(lambda: media_db.blobs.find_one({"district_id": world.district.id, "status": "PENDING"}),
                             what="the upload's pending blob")
        wait_until(lambda: len(chunk_docs(media_db, pending["_id"])) >= 4, what="chunks of the pending blob")
        proc.kill()  # SIGKILL mid-upload: nothing gets to clean up
    finally:
        release.set()
    assert call.exception(timeout=30).code() == grpc.StatusCode.UNAVAILABLE
    client.close()
    assert media_db.assets.count_documents({"district_id": world.district.id}) == assets_before
    assert len(chunk_docs(media_db, pending["_id"])) >= 4  # the orphan is there…

    proc.start()
    proc.wait_serving(60)
    # …and stays while it is young: a slow upload must not lose its chunks
    assert media_db.blobs.find_one({"_id": pending["_id"]})["status"] == "PENDING"
    clock.write_text(str(31 * 60))
    wait_until(lambda: media_db.blobs.find_one({"_id": pending["_id"]}) is None
               and not chunk_docs(media_db, pending["_id"]), timeout=30,
               what="the orphan job to remove the crashed upload's blob and chunks")
    assert media_db.assets.count_documents({"district_id": world.district.id}) == assets_before
