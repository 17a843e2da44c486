"""Calling the real media service in tests: gRPC uploads in chunks, downloads, HTTP, waiting
for registration's units to reach media's read model, and reading its process memory."""

from __future__ import annotations

import io
import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass

import grpc
from PIL import Image

from tests.support.grpc_helpers import bearer
from tests.support.registration import District, Tree
from tests.support.stack import CATCH_UP_SECONDS
from tests.support.waiting import wait_until
from wenming.media.v1 import media_pb2 as pb
from wenming.media.v1 import media_pb2_grpc

CHUNK = 512 * 1024
MP4_HEAD = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def fake_video(size: int, seed: bytes = b"") -> bytes:
    """An MP4-signed blob of `size` bytes (media never decodes video, it checks the signature)."""
    body = (seed or uuid.uuid4().bytes) * (size // 16 + 1)
    return (MP4_HEAD + body)[:size]


def jpeg(width: int = 64, height: int = 48, color=(200, 30, 30), **save) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (width, height), color).save(out, "JPEG", **save)
    return out.getvalue()


def header(data: bytes, file_name: str = "file.bin", **fields) -> pb.UploadHeader:
    return pb.UploadHeader(file_name=file_name, declared_size_bytes=fields.pop("declared", len(data)), **fields)


def upload_messages(head: pb.UploadHeader, data: bytes, chunk: int = CHUNK):
    yield pb.UploadAssetRequest(header=head)
    for start in range(0, len(data), chunk):
        yield pb.UploadAssetRequest(chunk=data[start:start + chunk])


class MediaClient:
    def __init__(self, proc):
        self.proc = proc
        self.channel = grpc.insecure_channel(proc.grpc_target, options=[
            ("grpc.max_receive_message_length", 8 * 1024 * 1024)])
        self.stub = media_pb2_grpc.MediaServiceStub(self.channel)

    def upload(self, token: str, data: bytes, file_name: str = "file.bin", chunk: int = CHUNK,
               timeout: float = 60, **fields) -> pb.UploadAssetResponse:
        return self.stub.UploadAsset(upload_messages(header(data, file_name, **fields), data, chunk),
                                     metadata=bearer(token), timeout=timeout)

    def download(self, token: str, asset_id: str, timeout: float = 60, **fields) -> tuple[pb.Asset, bytes]:
        replies = self.stub.DownloadAsset(pb.DownloadAssetRequest(asset_id=asset_id, **fields),
                                          metadata=bearer(token), timeout=timeout)
        first = next(replies)
        return first.asset, b"".join(r.data for r in replies)

    def http(self, method: str, path: str, token: str | None, body: bytes | None = None,
             headers: dict | None = None, timeout: float = 60):
        """(status, headers (case-insensitive), body bytes); errors are returned, not raised."""
        request = urllib.request.Request(self.proc.http_base + path, data=body, method=method,
                                         headers={**({"Authorization": f"Bearer {token}"} if token else {}),
                                                  **(headers or {})})
        try:
            with urllib.request.urlopen(request, timeout=timeout) as reply:
                return reply.status, reply.headers, reply.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, err.read()

    def http_upload(self, token: str, data: bytes, file_name: str, fields: dict | None = None):
        """A browser-style multipart upload: header fields first, then the file part."""
        fields = {"declared_size_bytes": str(len(data)), **(fields or {})}
        boundary = f"----wenming{uuid.uuid4().hex}"
        parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
                 for k, v in fields.items()]
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{file_name}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        status, headers, reply = self.http("POST", "/v1/assets", token, body,
                                           {"Content-Type": f"multipart/form-data; boundary={boundary}"})
        return status, json.loads(reply or b"{}")

    def metrics(self) -> str:
        return self.http("GET", "/metrics", None)[2].decode()

    def close(self) -> None:
        self.channel.close()


@dataclass
class World:
    """A district with its small tree, reflected in media's read model, and a few people."""

    district: District
    tree: Tree
    volunteer_token: str
    volunteer_id: str
    other_volunteer_token: str   # under the other station
    resident_token: str
    resident_id: str
    other_resident_token: str
    other_volunteer_id: str = ""

    def admin(self, unit) -> str:
        return self.tree.admins[unit.unit_id]


def build_world(district: District, media_db) -> World:
    from tests.support.registration import new_phone

    tree = district.small_tree()
    phone, other_phone = new_phone(), new_phone()
    volunteer = district.volunteer(tree.courtyards[0].unit_id, phone=phone)
    other_volunteer = district.volunteer(tree.courtyards[2].unit_id, phone=other_phone)
    resident, resident_token = district.resident(tree.courtyards[0].unit_id)
    _, other_resident_token = district.resident(tree.courtyards[2].unit_id)
    unit_ids = [district.center_id, tree.institute.unit_id] + [u.unit_id for u in tree.stations + tree.courtyards]
    wait_until(lambda: media_db["registry_units"].count_documents({"_id": {"$in": unit_ids}}) == len(unit_ids),
               timeout=CATCH_UP_SECONDS, what="media's read model to have the district's units")
    return World(district, tree, district.volunteer_token(phone), volunteer.volunteer_id,
                 district.volunteer_token(other_phone), resident_token, resident.resident_id, other_resident_token,
                 other_volunteer.volunteer_id)


def chunk_docs(media_db, blob_id: str) -> list[dict]:
    """A blob's chunk documents in order, whichever layout stored them (storage.py)."""
    if f"blob_chunks.{blob_id}" in media_db.list_collection_names():
        return list(media_db[f"blob_chunks.{blob_id}"].find({}))
    return list(media_db["blob_chunks"].find({"blob_id": blob_id}).sort("n", 1))


def chunk_state(media_db) -> dict:
    """What chunks exist: the per-blob collections, and the shared collection's size."""
    names = media_db.list_collection_names()
    return {"per_blob": sorted(n for n in names if n.startswith("blob_chunks.")),
            "shared": media_db["blob_chunks"].count_documents({}) if "blob_chunks" in names else 0}


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM in /proc status")


def reset_peak_rss(pid: int) -> None:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")
