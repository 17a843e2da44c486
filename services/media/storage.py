"""Where the bytes of a blob live, behind a small interface so an S3-compatible object store can
be added beside the database one.

The database store keeps a blob as fixed-size chunk documents, `(blob, n)` unique, written in
order and read back in order; nothing is ever read whole into memory. Two layouts:

- `shared`: one `blob_chunks` collection, `_id` = "<blob>:<n>", an index on (blob_id, n); a
  range read is one indexed query. Right for MongoDB.
- `per-blob`: one collection per blob (`blob_chunks.<blob>`), `_id` = n, read in natural
  order. FerretDB v1 on SQLite pushes no filter down to an index (an `_id` lookup scans the whole
  table, parsing every document), so in a shared collection every chunk read would parse every
  stored byte of every blob; a collection per blob bounds the work to the blob itself and a
  delete is a drop. `auto` picks this one when the server says it is FerretDB.
"""

from __future__ import annotations

import abc
from collections.abc import Iterator

from bson import Binary
from pymongo.database import Database

SHARED, PER_BLOB, AUTO = "shared", "per-blob", "auto"
LAYOUTS = (SHARED, PER_BLOB, AUTO)
_READ_BATCH = 2  # chunks per round trip: keeps a reader's memory to a few chunks


class BlobWriter(abc.ABC):
    """Takes a blob's bytes in order, in pieces of any size."""

    @abc.abstractmethod
    def write(self, data: bytes) -> None: ...

    @abc.abstractmethod
    def close(self) -> int:
        """Flushes what is buffered; returns the number of bytes written."""


class Storage(abc.ABC):
    name: str

    @abc.abstractmethod
    def writer(self, blob_id: str) -> BlobWriter: ...

    @abc.abstractmethod
    def read(self, blob_id: str, start: int, end: int) -> Iterator[bytes]:
        """Bytes [start, end) of a blob, in pieces of at most one chunk."""

    @abc.abstractmethod
    def delete(self, blob_id: str) -> None:
        """Removes whatever exists of the blob (idempotent)."""


def detect_layout(db: Database, configured: str) -> str:
    if configured != AUTO:
        return configured
    return PER_BLOB if "ferretdbVersion" in db.command("buildInfo") else SHARED


class _ChunkWriter(BlobWriter):
    def __init__(self, store: DatabaseStorage, blob_id: str):
        self._store = store
        self._blob_id = blob_id
        self._buffer = bytearray()
        self._next = 0
        self._written = 0

    def write(self, data: bytes) -> None:
        self._buffer += data
        size = self._store.chunk_bytes
        while len(self._buffer) >= size:
            self._flush(bytes(self._buffer[:size]))
            del self._buffer[:size]

    def _flush(self, data: bytes) -> None:
        self._store.put_chunk(self._blob_id, self._next, data)
        self._next += 1
        self._written += len(data)

    def close(self) -> int:
        if self._buffer:
            self._flush(bytes(self._buffer))
            self._buffer = bytearray()
        return self._written


class DatabaseStorage(Storage):
    name = "database"

    def __init__(self, db: Database, chunk_bytes: int, layout: str):
        if layout not in (SHARED, PER_BLOB):
            raise ValueError(f"unknown chunk layout {layout!r}")
        self.db = db
        self.chunk_bytes = chunk_bytes
        self.layout = layout
        if layout == SHARED:
            self.db["blob_chunks"].create_index([("blob_id", 1), ("n", 1)], unique=True)

    def _collection(self, blob_id: str):
        return self.db["blob_chunks"] if self.layout == SHARED else self.db[f"blob_chunks.{blob_id}"]

    def writer(self, blob_id: str) -> BlobWriter:
        return _ChunkWriter(self, blob_id)

    def put_chunk(self, blob_id: str, n: int, data: bytes) -> None:
        if self.layout == SHARED:
            doc = {"_id": f"{blob_id}:{n:08d}", "blob_id": blob_id, "n": n, "data": Binary(data)}
        else:
            doc = {"_id": n, "data": Binary(data)}
        self._collection(blob_id).insert_one(doc)

    def read(self, blob_id: str, start: int, end: int) -> Iterator[bytes]:
        if end <= start:
            return
        first, last = start // self.chunk_bytes, (end - 1) // self.chunk_bytes
        coll = self._collection(blob_id)
        if self.layout == SHARED:
            cursor = coll.find({"blob_id": blob_id, "n": {"$gte": first, "$lte": last}}, {"n": 1, "data": 1},
                               batch_size=_READ_BATCH).sort("n", 1)
        else:
            # natural (insertion) order; FerretDB does not sort on the server without loading everything
            cursor = coll.find({}, batch_size=_READ_BATCH).skip(first).limit(last - first + 1)
        expected = first
        try:
            for doc in cursor:
                n = doc["n"] if self.layout == SHARED else doc["_id"]
                if n != expected:
                    raise OSError(f"blob {blob_id}: chunk {expected} missing or out of order (found {n})")
                data = bytes(doc["data"])
                chunk_start = n * self.chunk_bytes
                lo = max(start - chunk_start, 0)
                hi = min(end - chunk_start, len(data))
                yield data[lo:hi]
                expected += 1
        finally:
            cursor.close()
        if expected != last + 1:
            raise OSError(f"blob {blob_id}: chunk {expected} missing")

    def delete(self, blob_id: str) -> None:
        if self.layout == SHARED:
            self.db["blob_chunks"].delete_many({"blob_id": blob_id})
        else:
            self.db.drop_collection(f"blob_chunks.{blob_id}")
