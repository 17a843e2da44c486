"""Re-encrypting stored personal data with the newest keys, in the background (a leased job).

After a new key version is put first in PII_ENCRYPTION_KEYS and/or PII_BLIND_INDEX_KEYS (the
runbook is in docs/deploy.md), every service holding personal data runs this job: it walks each
collection in `_id` order, and for every document whose ciphertexts are not under the newest
encryption key, or whose blind indexes are not under the newest index key, writes the new values
in one conditional update (guarded by the ciphertexts it read, so a concurrent change is never
overwritten with stale data). Reads and logins work throughout: old ciphertexts decrypt, and
lookups ask for every version of a blind index.

- Resumable: the position is stored in the service's database (`pii_rotation`) after every batch,
  so a restart or another replica taking the lease goes on from there.
- Idempotent: a document already under the newest keys is left alone; running it twice changes
  nothing.
- Finished only after a whole pass that found nothing to change (a document written meanwhile by
  a replica still on the old keys is caught by the next pass); then it idles until the keys change.
- Progress: `pii_documents_rotated_total{collection}`, `pii_rotation_complete{collection}` and a
  log line per batch.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from collections.abc import Sequence

from prometheus_client import Counter, Gauge
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from .listing import key
from .pii import PiiVault
from .mongo import RawDoc

log = logging.getLogger(__name__)

INTERVAL_SECONDS = 10.0  # between job passes; a pass works through batches for up to budget_seconds

ROTATED = Counter("pii_documents_rotated_total", "Documents whose personal data was rewritten with the newest keys",
                  ["collection"])
UNREADABLE = Counter("pii_rotation_failures_total", "Documents the rotation could not rewrite (a key missing from "
                     "the keyring, or a value taken by another document)", ["collection"])
COMPLETE = Gauge("pii_rotation_complete", "1 once every document of the collection is under the newest keys",
                 ["collection"])


@dataclass(frozen=True)
class Sealed:
    """A personal-data field of a document: its ciphertext, the `field` it is encrypted under,
    and the blind index kept of it (document field and `field`), if any; `index_key`: a list key
    (listing.key) the document keeps of the blind index, `district|index`, rewritten with it."""

    cipher: str
    context: str
    index: str = ""
    index_context: str = ""
    index_key: str = ""


@dataclass(frozen=True)
class Target:
    collection: Collection[RawDoc]
    fields: Sequence[Sealed]


class PiiRotation:
    def __init__(self, vault: PiiVault, state: Collection[RawDoc], targets: Sequence[Target], batch: int = 500,
                 budget_seconds: float = 8.0):
        self._vault = vault
        self._state = state
        self._targets = targets
        self._batch = batch
        self._budget = budget_seconds
        self._keys = f"encryption v{vault.encryption.newest}, blind index v{vault.blind.newest}"
        for target in targets:  # visible from the start
            ROTATED.labels(target.collection.name)
            UNREADABLE.labels(target.collection.name)
            COMPLETE.labels(target.collection.name)

    def run(self) -> int:
        """One job pass: batches until the time budget is spent; how many documents changed."""
        changed, started = 0, time.monotonic()
        for target in self._targets:
            while time.monotonic() - started < self._budget:
                batch_changed, finished = self._batch_of(target)
                changed += batch_changed
                if finished:
                    break
        return changed

    def _batch_of(self, target: Target) -> tuple[int, bool]:
        """One batch of `target`; (documents changed, whether the collection is done)."""
        name = target.collection.name
        state = self._state.find_one({"_id": name}) or {}
        if state.get("keys") != self._keys:  # new keys: a fresh pass
            state = {"keys": self._keys, "after": "", "changed": 0, "done": False}
        COMPLETE.labels(name).set(1 if state["done"] else 0)
        if state["done"]:
            return 0, True
        projection = {"district_id": 1, **{f.cipher: 1 for f in target.fields},
                      **{f.index: 1 for f in target.fields if f.index},
                      **{f.index_key: 1 for f in target.fields if f.index_key}}
        query = {"_id": {"$gt": state["after"]}} if state["after"] else {}
        docs = list(target.collection.find(query, projection).sort("_id", 1).limit(self._batch))
        changed = sum(self._rotate(target, doc) for doc in docs)
        state["changed"] += changed
        end_of_pass = len(docs) < self._batch
        if end_of_pass:
            # done only after a pass that changed nothing; otherwise once more from the start
            state.update(after="", changed=0, done=state["changed"] == 0)
        else:
            state["after"] = docs[-1]["_id"]
        self._state.replace_one({"_id": name}, state, upsert=True)
        ROTATED.labels(name).inc(changed)
        COMPLETE.labels(name).set(1 if state["done"] else 0)
        log.info("personal-data key rotation: %s %s", name,
                 "complete" if state["done"] else f"rewrote {changed} of {len(docs)} documents up to {docs[-1]['_id']}"
                 if docs else "pass ended", extra={"collection": name, "keys": self._keys, "rotated": changed})
        return changed, state["done"]

    def _rotate(self, target: Target, doc: RawDoc) -> int:
        """Rewrites the document's personal data with the newest keys if needed; 1 when it did."""
        vault, district_id = self._vault, doc.get("district_id", "")
        update: RawDoc = {}
        try:
            for field in target.fields:
                blob = bytes(doc.get(field.cipher) or b"")
                if not blob:
                    continue
                plain = vault.decrypt(blob, district_id=district_id, field=field.context)
                if not vault.is_current(blob):
                    update[field.cipher] = vault.encrypt(plain, district_id=district_id, field=field.context)
                if field.index:
                    index = vault.blind_index(plain, district_id=district_id, field=field.index_context)
                    if doc.get(field.index) != index:
                        update[field.index] = index
                    if field.index_key and doc.get(field.index_key) != key(district_id, index):
                        update[field.index_key] = key(district_id, index)
            if not update:
                return 0
            # a miss means the document changed meanwhile: still counted, so the pass is repeated
            guard = {"_id": doc["_id"], **{f.cipher: doc[f.cipher] for f in target.fields if f.cipher in doc}}
            target.collection.update_one(guard, {"$set": update})
            return 1
        except (ValueError, DuplicateKeyError) as exc:
            UNREADABLE.labels(target.collection.name).inc()
            log.error("personal-data key rotation: %s %s cannot be rewritten: %s", target.collection.name, doc["_id"],
                      type(exc).__name__ if isinstance(exc, DuplicateKeyError) else exc)
            return 0
