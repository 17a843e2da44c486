"""Media: downloads of a stored asset over media's HTTP API (token check, the asset's record, its
bytes streamed from the database), beside a bare static file serve of the same bytes measured in
the same run (Python's threading http.server over a file on disk). Budget (docs/design.md §5):
≥ 0.5× the floor."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.bench.harness import BenchContext, Measurement, Profile, closed_loop
from tests.support.registration import District
from tests.support.waiting import wait_until

SIZE = 256 * 1024  # a photo of a service, as residents' phones send them after re-encoding
BUDGET = 0.5


def download_caller(url: str, token: str):
    import urllib.request

    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})

    def call():
        with urllib.request.urlopen(request, timeout=10) as reply:
            if len(reply.read()) != SIZE:
                raise RuntimeError("short download")
    return call


def run(ctx: BenchContext) -> list[Measurement]:
    from tests.media.helpers import MediaClient, fake_video

    registration = ctx.service("registration", port_offset=1)
    district = District(registration.grpc_target, registration.env)
    media = ctx.service("media", port_offset=1)
    client = MediaClient(media)
    token = district.center_admin_token
    data = fake_video(SIZE)
    # the center arrives in media's read model by registration's events
    asset = wait_until(lambda: _try_upload(client, token, data), 60, what="the center in media's read model")
    url = f"{media.http_base}/v1/assets/{asset.asset_id}/content"

    print(f"  downloads of {SIZE // 1024} KiB for {ctx.seconds:.0f} s, then the same bytes from a static file…",
          flush=True)
    profile = Profile(media.process.pid, ctx.seconds + 3)
    load = closed_loop("tests.bench.bench_media:download_caller", (url, token), seconds=ctx.seconds)
    top = profile.top()
    client.close()
    district.close()
    media.stop()
    registration.stop()

    with tempfile.TemporaryDirectory() as folder:
        Path(folder, "asset.bin").write_bytes(data)
        port = ctx.stack.spare_port(1)
        server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1",
                                   "--directory", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(1.5)
            floor = closed_loop("tests.bench.bench_media:download_caller",
                                (f"http://127.0.0.1:{port}/asset.bin", ""), seconds=ctx.seconds)
        finally:
            server.terminate()
            server.wait(10)
    ok = load.per_second >= BUDGET * floor.per_second and load.errors == 0
    return [Measurement(f"media download ({SIZE // 1024} KiB)", load.per_second, "downloads/s",
                        "bare static file serve", floor.per_second, f"≥ {BUDGET}× floor", ok,
                        {"load": load.summary(), "floor": floor.summary(), "profile": top,
                         "megabytes_per_second": round(load.per_second * SIZE / 1e6, 1), "cpus": os.cpu_count()})]


def _try_upload(client, token: str, data: bytes):
    import grpc

    try:
        return client.upload(token, data, file_name="服务现场.mp4").asset
    except grpc.RpcError as error:
        if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION,
                            grpc.StatusCode.PERMISSION_DENIED):
            return None
        raise
