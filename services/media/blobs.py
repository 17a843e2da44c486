"""Blobs: stored content, once per district and SHA-256, whatever number of assets use it.

A blob's life, each step one conditional single-document write:

    PENDING  chunks are being written; invisible to everyone
    STORED   complete, and registered in `blob_contents` under "<district>:<sha256>": of two
             uploads of the same bytes exactly one registers (an insert on a unique `_id`), the
             other finds the registered blob (waiting while its commit finishes), removes its own
             chunks and uses that one
    DELETING an orphan being removed (registration, chunks, then the document), retried until done

Orphans are PENDING blobs nobody touched for the orphan age (the upload died with its process)
and STORED blobs no asset refers to (the process died between the blob and the asset write).
(Uniqueness is claimed by an insert, not by a unique index on an update, because FerretDB
reports an update's unique-index violation as a generic error, not as a duplicate key.)
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass

from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from services.common.clock import clock
from services.common.errors import Aborted
from services.common.ids import new_id
from services.common.retry import Backoff

from .models import Asset
from .storage import BlobWriter, Storage

log = logging.getLogger(__name__)

PENDING, STORED, DELETING = "PENDING", "STORED", "DELETING"
TOUCH_EVERY_SECONDS = 30.0  # a live upload refreshes `touched_at` this often
COMMIT_ATTEMPTS = 6
# waiting for a concurrent upload of the same bytes to finish committing
COMMITTING = Backoff(first_seconds=0.05, max_seconds=0.4)


@dataclass(frozen=True)
class StoredBlob:
    blob_id: str
    sha256: str
    size: int


class PendingBlob:
    """A blob being written: hashes and counts what goes in."""

    def __init__(self, store: BlobStore, blob_id: str, district_id: str, writer: BlobWriter):
        self.store = store
        self.blob_id = blob_id
        self.district_id = district_id
        self._writer = writer
        self._hash = hashlib.sha256()
        self.size = 0
        self._touched = time.monotonic()

    def write(self, data: bytes) -> None:
        self._writer.write(data)
        self._hash.update(data)
        self.size += len(data)
        if time.monotonic() - self._touched > TOUCH_EVERY_SECONDS:
            self.store.touch(self.blob_id)
            self._touched = time.monotonic()

    def finish(self) -> str:
        """Flushes the last chunk; returns the hex SHA-256 of everything written."""
        self._writer.close()
        return self._hash.hexdigest()


class BlobStore:
    def __init__(self, db: Database, storage: Storage, orphan_age: dt.timedelta):
        self.blobs = db["blobs"]
        self.contents = db["blob_contents"]
        self.storage = storage
        self.orphan_age = orphan_age

    def ensure_indexes(self) -> None:
        self.blobs.create_index([("status", 1), ("touched_at", 1)])
        self.contents.create_index([("blob_id", 1)])

    # ---- writing ----

    def begin(self, district_id: str) -> PendingBlob:
        blob_id = new_id("blob")
        now = clock.now()
        self.blobs.insert_one({"_id": blob_id, "district_id": district_id, "status": PENDING, "storage": self.storage.name, "referenced": False, "created_at": now,
                               "touched_at": now})
        return PendingBlob(self, blob_id, district_id, self.storage.writer(blob_id))

    def touch(self, blob_id: str) -> None:
        self.blobs.update_one({"_id": blob_id}, {"$set": {"touched_at": clock.now()}})

    def commit(self, pending: PendingBlob) -> tuple[StoredBlob, bool]:
        """Makes the blob STORED; (blob, True) when the district already had these bytes, in which
        case the pending chunks are removed and the registered blob is used."""
        sha256 = pending.finish()
        key = f"{pending.district_id}:{sha256}"
        for attempt in range(COMMIT_ATTEMPTS):
            entry = self.contents.find_one({"_id": key})
            if entry is None:
                try:
                    self.contents.insert_one({"_id": key, "district_id": pending.district_id,
                                              "blob_id": pending.blob_id})
                except DuplicateKeyError:
                    continue  # registered by a concurrent upload just now: look at that one
                return self._mark_stored(pending, sha256, key), False
            registered = self.blobs.find_one({"_id": entry["blob_id"]}, {"status": 1})
            status = registered["status"] if registered else None
            if status == STORED:
                existing = self.blobs.find_one_and_update({"_id": entry["blob_id"], "status": STORED},
                                                          {"$set": {"touched_at": clock.now()}},
                                                          return_document=ReturnDocument.AFTER)
                if existing is not None:
                    self.discard(pending.blob_id)
                    return StoredBlob(existing["_id"], sha256, existing["size"]), True
            elif status == PENDING:
                time.sleep(COMMITTING.delay(attempt + 1))  # its upload is committing right now
            elif self.contents.update_one({"_id": key, "blob_id": entry["blob_id"]},
                                          {"$set": {"blob_id": pending.blob_id}}).modified_count:
                return self._mark_stored(pending, sha256, key), False  # took over from a removed blob
        # registered to an upload that died while committing: keep ours unregistered (the orphan job
        # clears the stale registration, later uploads deduplicate again)
        return self._mark_stored(pending, sha256, None), False

    def _mark_stored(self, pending: PendingBlob, sha256: str, key: str | None) -> StoredBlob:
        now = clock.now()
        result = self.blobs.update_one({"_id": pending.blob_id, "status": PENDING},
                                       {"$set": {"status": STORED, "sha256": sha256, "size": pending.size,
                                                 "stored_at": now, "touched_at": now}})
        if result.matched_count == 0:  # the orphan job took it: the upload stalled past the orphan age
            if key:
                self.contents.delete_one({"_id": key, "blob_id": pending.blob_id})
            raise Aborted("上传停顿太久已被清理，请重新上传")
        return StoredBlob(pending.blob_id, sha256, pending.size)

    def store(self, district_id: str, pieces: Iterator[bytes]) -> tuple[StoredBlob, bool]:
        """A whole blob from pieces already in hand (re-encoded images, thumbnails, spooled files)."""
        pending = self.begin(district_id)
        try:
            for piece in pieces:
                pending.write(piece)
            return self.commit(pending)
        except BaseException:
            self.discard(pending.blob_id)
            raise

    def discard(self, blob_id: str) -> None:
        """Removes a blob that will not be used; best effort (the orphan job finishes what fails)."""
        try:
            self.storage.delete(blob_id)
            self.blobs.delete_one({"_id": blob_id, "status": PENDING})
        except Exception:
            log.warning("could not remove unused blob %s now; the orphan job will", blob_id, exc_info=True)

    def mark_referenced(self, blob_ids: list[str]) -> None:
        self.blobs.update_many({"_id": {"$in": [b for b in blob_ids if b]}}, {"$set": {"referenced": True}})

    # ---- reading ----

    def read(self, blob_id: str, start: int, end: int) -> Iterator[bytes]:
        return self.storage.read(blob_id, start, end)

    # ---- orphans ----

    def remove_orphans(self) -> int:
        """One pass of the cleanup job; returns how many blobs it removed."""
        cutoff = clock.now() - self.orphan_age
        for doc in self.blobs.find({"status": PENDING, "touched_at": {"$lt": cutoff}}, {"_id": 1}):
            self._start_deleting({"_id": doc["_id"], "status": PENDING, "touched_at": {"$lt": cutoff}})
        for doc in self.blobs.find({"status": STORED, "referenced": False, "touched_at": {"$lt": cutoff}}, {"_id": 1}):
            if self._referenced(doc["_id"]):
                self.blobs.update_one({"_id": doc["_id"]}, {"$set": {"referenced": True}})
            else:
                self._start_deleting({"_id": doc["_id"], "status": STORED, "referenced": False,
                                      "touched_at": {"$lt": cutoff}})
        removed = 0
        for doc in self.blobs.find({"status": DELETING}, {"_id": 1}):
            self.contents.delete_many({"blob_id": doc["_id"]})
            self.storage.delete(doc["_id"])
            removed += self.blobs.delete_one({"_id": doc["_id"], "status": DELETING}).deleted_count
        if removed:
            log.info("removed orphaned blobs", extra={"count": removed})
        return removed

    @staticmethod
    def _referenced(blob_id: str) -> bool:
        return Asset.collection().find_one({"$or": [{"blob_id": blob_id}, {"thumb_blob_id": blob_id}]},
                                           {"_id": 1}) is not None

    def _start_deleting(self, guard: dict) -> None:
        self.blobs.update_one(guard, {"$set": {"status": DELETING}})
