"""Residents (群众): light accounts bound to a courtyard, who order services and rate them.

Staff find residents of their subtree (问需台) by a name or its beginning, by the full mobile
number (blind index, as login does) or by its last four digits (the masked numbers that end
with them), so no stored number is ever decrypted for a search.
"""

from __future__ import annotations

import re

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource, utcnow
from services.common.pii import PiiVault, mask_phone, phone_masks_ending, validate_mobile
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import Resident, Unit
from .passwords import hash_password
from .units import UnitDirectory, unit_ref
from .volunteers import index_taken, validate_password

MAX_QUERY = 20
PHONE_LIKE = re.compile(r"^[0-9 +-]+$")
PHONE_QUERY = "a phone search needs the full 11-digit mobile number or its last four digits"


class ResidentBook:
    def __init__(self, units: UnitDirectory, vault: PiiVault, events: EventSource):
        self.units = units
        self.vault = vault
        self.events = events

    def register(self, principal: Principal | None, req: pb.RegisterResidentRequest) -> tuple[Resident, Unit]:
        v = Validator()
        district_id = v.ident("district_id", req.district_id)
        courtyard_id = v.ident("courtyard_unit_id", req.courtyard_unit_id)
        name = v.text("name", req.name, max_len=50)
        phone = v.mobile("phone", req.phone)
        password = validate_password(v, req.password)
        v.check()
        courtyard = self.units.get(district_id, courtyard_id)
        if courtyard.level != common_pb2.UNIT_LEVEL_COURTYARD:
            raise InvalidArgument.field("courtyard_unit_id", "residents belong to a courtyard (小院); this unit is "
                                        f"a {common_pb2.UnitLevel.Name(courtyard.level)}")
        # staff registering a resident on their behalf (问需台) must run that courtyard
        on_behalf = principal is not None and principal.role == Role.ROLE_UNIT_ADMIN
        if on_behalf and (principal.district_id != district_id or not principal.manages(courtyard.path)):
            raise PermissionDenied("that courtyard is outside your unit's subtree")
        if index_taken(Resident, district_id, "phone_index",
                       self.vault.blind_indexes(phone, district_id=district_id, field="resident.phone")):
            raise AlreadyExists("this mobile number is already registered by another resident")
        resident = Resident(
            id=new_id("res"), district_id=district_id, name=name,
            phone_cipher=self.vault.encrypt(phone, district_id=district_id, field="resident.phone"),
            phone_index=self.vault.blind_index(phone, district_id=district_id, field="resident.phone"),
            phone_masked=mask_phone(phone), courtyard_id=courtyard.id, password_hash=hash_password(password),
            registered_at=utcnow(),
        )
        event = self.events.new(
            events_pb2.ResidentRegistered(resident_id=resident.id, courtyard=unit_ref(courtyard),
                                          self_registered=not on_behalf),
            district_id=district_id, aggregate_type="resident", aggregate_id=resident.id, version=1,
            actor_id=principal.subject if principal else "")
        try:
            resident.insert([event])
        except DuplicateKeyError:
            raise AlreadyExists("this mobile number is already registered by another resident") from None
        return resident, courtyard

    def get(self, principal: Principal, resident_id: str) -> tuple[Resident, Unit]:
        v = Validator()
        resident_id = v.ident("resident_id", resident_id)
        v.check()
        resident = Resident.objects(id=resident_id, district_id=principal.district_id).first()
        if resident is None:
            raise NotFound("resident", resident_id)
        courtyard = self.units.get(resident.district_id, resident.courtyard_id)
        is_self = principal.role == Role.ROLE_RESIDENT and principal.subject == resident.id
        if not is_self and not principal.manages(courtyard.path):
            raise PermissionDenied("only the resident themself or an admin of their courtyard may see this")
        return resident, courtyard

    def search(self, principal: Principal, req: pb.SearchResidentsRequest) -> tuple[list[tuple[Resident, Unit]], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
        text = v.text("query", req.query, max_len=MAX_QUERY)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        match = self._match(v, principal.district_id, text) if text else {}
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        root = self.units.get(principal.district_id, unit_id)
        require_manages(principal, root.district_id, root.path)
        query: dict = {"district_id": root.district_id, **match}
        subtree = self.units.subtree_ids(root.district_id, root)
        if subtree is not None:
            query["courtyard_id"] = {"$in": subtree}
        if after:
            query["_id"] = {"$gt": after}
        found = [Resident.from_raw(r) for r in
                 Resident.collection().find(query, {"outbox": 0}).sort("_id", 1).limit(size + 1)]
        token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        found = found[:size]
        courtyards = {u.id: u for u in Unit.objects(id__in=sorted({r.courtyard_id for r in found}))}
        return [(r, courtyards[r.courtyard_id]) for r in found], token

    def _match(self, v: Validator, district_id: str, text: str) -> dict:
        """The filter a query means: phone digits (all of them, or the last four), else a name."""
        if not PHONE_LIKE.match(text):
            return {"name": {"$regex": "^" + re.escape(text)}}
        digits = re.sub(r"[ -]", "", text)
        if re.fullmatch(r"[0-9]{4}", digits):
            return {"phone_masked": {"$in": phone_masks_ending(digits)}}
        try:
            phone = validate_mobile(digits)
        except ValueError:
            v.fail("query", PHONE_QUERY)
            return {}
        return {"phone_index": {"$in": self.vault.blind_indexes(phone, district_id=district_id,
                                                                field="resident.phone")}}
