"""mongoengine base for aggregates that carry an in-document outbox.

Models declare fields and indexes with mongoengine; state changes go through
`insert_with_events` / `update_with_events` on the raw collection, so a change and its events
are one write (see outbox.py).
"""

from __future__ import annotations

import copy
from typing import Any, Self

from mongoengine import BooleanField, DictField, Document, IntField, ListField, StringField
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError

from .errors import NotFound
from .outbox import insert_with_events, update_with_events
from .mongo import RawDoc


class Aggregate(Document):
    meta: dict[str, Any] = {"abstract": True}  # each model adds its own collection and indexes

    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    version = IntField(default=0)
    outbox = ListField(DictField())
    outbox_pending = BooleanField(default=False)

    @classmethod
    def collection(cls) -> Collection[RawDoc]:
        collection: Collection[RawDoc] = cls._get_collection()
        return collection

    @classmethod
    def from_raw(cls, raw: RawDoc) -> Self:
        aggregate: Self = cls._from_son(raw)
        return aggregate

    @classmethod
    def raw_in_district(cls, district_id: str, _id: str, what: str) -> RawDoc:
        """The stored document (without its outbox) of `_id` in the caller's district, or
        NOT_FOUND naming `what` — another district's aggregate is as absent as a missing one."""
        raw = cls.collection().find_one({"_id": _id, "district_id": district_id}, {"outbox": 0})
        if raw is None:
            raise NotFound(what, _id)
        return raw

    @classmethod
    def in_district(cls, district_id: str, _id: str, what: str) -> Self:
        """The aggregate `_id` of the caller's district (see raw_in_district)."""
        return cls.from_raw(cls.raw_in_district(district_id, _id, what))

    @classmethod
    def insert_raw(cls, raw: RawDoc, events: list[RawDoc]) -> None:
        """Inserts a new aggregate given in its stored form (what `from_raw` reads), with the
        model's defaults for every field it leaves out: the document `insert` writes, without
        validating and converting the whole aggregate again on a hot path (PlaceOrder: a tenth
        of its CPU). The caller builds `raw` from validated input."""
        insert_with_events(cls.collection(), cls.stored_form(raw), events)

    @classmethod
    def stored_form(cls, raw: RawDoc) -> RawDoc:
        """`raw` as mongoengine would store it: defaults filled in, None left out."""
        return {**copy.deepcopy(cls._stored_defaults()), **{k: v for k, v in raw.items() if v is not None}}

    @classmethod
    def _stored_defaults(cls) -> RawDoc:
        defaults: RawDoc | None = cls.__dict__.get("_defaults_stored")
        if defaults is None:
            defaults = cls().to_mongo().to_dict()
            for generated in ("_id", "outbox", "outbox_pending", "version"):
                defaults.pop(generated, None)
            cls._defaults_stored = defaults
        return defaults

    def insert(self, events: list[RawDoc]) -> None:
        """Validates and inserts this new aggregate at version 1 with its first events."""
        self.validate()
        raw = self.to_mongo().to_dict()
        raw.pop("outbox", None)
        insert_with_events(self.collection(), raw, events)
        self.version = 1

    @classmethod
    def insert_all(cls, new: list[tuple[Aggregate, list[RawDoc]]]) -> dict[int, RawDoc]:
        """Inserts many new aggregates (version 1), each with its first events, in one write (an
        import). Returns {position in `new`: the write error} of those not inserted — a unique
        index they collide with (code 11000) — the others are in; anything else raises."""
        documents = []
        for aggregate, events in new:
            aggregate.validate()
            raw = aggregate.to_mongo().to_dict()
            documents.append({**raw, "version": 1, "outbox": list(events), "outbox_pending": bool(events)})
        if not documents:
            return {}
        try:
            cls.collection().insert_many(documents, ordered=False)
            failed: dict[int, RawDoc] = {}
        except BulkWriteError as exc:
            failed = {error["index"]: error for error in exc.details.get("writeErrors", [])}
            if any(error.get("code") != 11000 for error in failed.values()):
                raise
        for position, (aggregate, _) in enumerate(new):
            if position not in failed:
                aggregate.version = 1
        return failed

    @classmethod
    def change(cls, filter: RawDoc, update: RawDoc, events: list[RawDoc]) -> Self | None:
        """One conditional update carrying its events; the changed aggregate, or None if
        `filter` matched nothing."""
        raw = update_with_events(cls.collection(), filter, update, events)
        return None if raw is None else cls.from_raw(raw)

