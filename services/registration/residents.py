"""Residents (群众): light accounts bound to a courtyard, who order services and rate them.

Staff register residents on their behalf (问需台), also people without a mobile phone: such a
record has no phone and cannot log in; staff order services and record attendance for them, and
an idempotency key makes a retry find the first record (nothing else tells it from a second
person of the same name).

Staff find residents of their subtree (问需台) by a name or its beginning, by the full mobile
number (blind index, as login does) or by its last four digits (the masked numbers that end
with them), so no stored number is ever decrypted for a search. Each way is a key the resident
carries (index.py); results come in the order residents were registered.
"""

from __future__ import annotations

import re

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_manages, require_role
from services.common.clock import clock
from services.common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.pii import PiiVault, mask_phone, phone_masks_ending, validate_mobile
from services.common.ids import decode_page_token, encode_page_token, keyed_id, new_id
from services.common.listing import MAX_WINDOW, key, scan
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from . import index
from .models import NO_PHONE_PREFIX, Resident, Unit
from .passwords import hash_password
from .roll import RowResult, results_for
from .units import UnitDirectory, unit_ref
from .volunteers import index_taken, validate_password

MAX_QUERY = 20
DUPLICATE_PHONE = "this mobile number is already registered by another resident"
PHONE_LIKE = re.compile(r"^[0-9 +-]+$")
PHONE_QUERY = "a phone search needs the full 11-digit mobile number or its last four digits"


class ResidentBook:
    def __init__(self, units: UnitDirectory, vault: PiiVault, events: EventSource):
        self.units = units
        self.vault = vault
        self.events = events

    def register(self, principal: Principal | None, req: pb.RegisterResidentRequest) -> tuple[Resident, Unit]:
        # staff registering a resident on their behalf (问需台) must run that courtyard
        on_behalf = principal is not None and principal.role == Role.ROLE_UNIT_ADMIN
        v = Validator()
        district_id = v.ident("district_id", req.district_id)
        courtyard_id = v.ident("courtyard_unit_id", req.courtyard_unit_id)
        name = v.text("name", req.name, max_len=50)
        phone = v.mobile("phone", req.phone, required=not on_behalf)
        can_log_in = bool(phone) or not on_behalf
        password = validate_password(v, req.password) if can_log_in else ""
        if not can_log_in and req.password:
            v.fail("password", "a resident without a phone cannot log in: leave it empty")
        request_key = v.idempotency_key(req.idempotency_key) if req.idempotency_key or (on_behalf and not phone) else ""
        if request_key and not on_behalf:
            v.fail("idempotency_key", "only staff registering a resident on their behalf send one")
        v.check()
        courtyard = self.units.get(district_id, courtyard_id)
        if courtyard.level != common_pb2.UNIT_LEVEL_COURTYARD:
            raise InvalidArgument.field("courtyard_unit_id", "residents belong to a courtyard (小院); this unit is "
                                        f"a {common_pb2.UnitLevel.Name(courtyard.level)}")
        if on_behalf and (principal.district_id != district_id or not principal.manages(courtyard.path)):
            raise PermissionDenied("that courtyard is outside your unit's subtree")
        resident_id = keyed_id("res", f"{district_id}|{principal.subject}|{request_key}") if request_key else ""
        if resident_id and (earlier := Resident.objects(id=resident_id).first()) is not None:
            return self._repeated(earlier, name, phone, courtyard)
        if phone and index_taken(Resident, district_id, "phone_index",
                                 self.vault.blind_indexes(phone, district_id=district_id, field="resident.phone")):
            raise AlreadyExists(DUPLICATE_PHONE)
        resident = self._new(district_id, courtyard, name, phone, hash_password(password) if can_log_in else "",
                             index.reserve(district_id, index.RESIDENTS), resident_id)
        try:
            resident.insert([self._registered_event(resident, courtyard, on_behalf, principal)])
        except DuplicateKeyError:
            if resident_id and (earlier := Resident.objects(id=resident_id).first()) is not None:
                return self._repeated(earlier, name, phone, courtyard)  # a concurrent retry won
            raise AlreadyExists(DUPLICATE_PHONE) from None
        return resident, courtyard

    def _repeated(self, earlier: Resident, name: str, phone: str, courtyard: Unit) -> tuple[Resident, Unit]:
        """The record a keyed registration made before, if this retry asks for the same person."""
        same_phone = (earlier.phone_index == self.vault.blind_index(phone, district_id=earlier.district_id,
                                                                     field="resident.phone")
                      if phone else not earlier.phone_masked)
        if earlier.name != name or earlier.courtyard_id != courtyard.id or not same_phone:
            raise InvalidArgument.field("idempotency_key", "was used for another resident: send a new one")
        return earlier, courtyard

    def _registered_event(self, resident: Resident, courtyard: Unit, on_behalf: bool,
                          actor: Principal | None) -> dict:
        return self.events.new(
            events_pb2.ResidentRegistered(resident_id=resident.id, courtyard=unit_ref(courtyard),
                                          self_registered=not on_behalf),
            district_id=resident.district_id, aggregate_type="resident", aggregate_id=resident.id, version=1,
            actor_id=actor.subject if actor else "")

    def import_roll(self, principal: Principal, rows) -> list[RowResult]:
        """名册导入 (roll.py): each valid row registered as an admin's RegisterResident would (问需台),
        without a password, in one write."""
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        results = results_for(rows)
        district = principal.district_id
        valid: dict[int, tuple[str, str, str]] = {}
        for i, row in enumerate(rows):
            v = Validator()
            fields = (v.text(f"rows[{i}].name", row.name, max_len=50), v.mobile(f"rows[{i}].phone", row.phone),
                      v.ident(f"rows[{i}].courtyard_unit_id", row.courtyard_unit_id))
            if v.violations:
                results[i].refuse(*v.violations[0])
            else:
                valid[i] = fields
        yards = {u.id: u for u in Unit.objects(id__in=sorted({f[2] for f in valid.values()}), district_id=district)}
        for i, (_, _, yard_id) in list(valid.items()):
            yard = yards.get(yard_id)
            if yard is None or yard.level != common_pb2.UNIT_LEVEL_COURTYARD or not principal.manages(yard.path):
                results[i].refuse(f"rows[{i}].courtyard_unit_id", f"unit {yard_id} is not a courtyard of your subtree")
                del valid[i]
        if not valid:
            return results
        first = index.reserve(district, index.RESIDENTS, len(valid))
        new = [(i, self._new(district, yards[yard_id], name, phone, "", seq))
               for seq, (i, (name, phone, yard_id)) in enumerate(valid.items(), start=first)]
        failed = Resident.insert_all([(resident, [self._registered_event(resident, yards[resident.courtyard_id],
                                                                          True, principal)])
                                      for _, resident in new])
        for position, (i, resident) in enumerate(new):
            if position in failed:
                results[i].refuse(f"rows[{i}].phone", DUPLICATE_PHONE, already_registered=True)
            else:
                results[i].id = resident.id
        return results

    def _new(self, district_id: str, courtyard: Unit, name: str, phone: str, password_hash: str, seq: int,
             resident_id: str = "") -> Resident:
        resident_id = resident_id or new_id("res")
        if phone:
            phone_index = self.vault.blind_index(phone, district_id=district_id, field="resident.phone")
            masked = mask_phone(phone)
            sealed = {"phone_cipher": self.vault.encrypt(phone, district_id=district_id, field="resident.phone")}
        else:
            phone_index, masked, sealed = NO_PHONE_PREFIX + resident_id, "", {}
        return Resident(
            id=resident_id, district_id=district_id, name=name, **sealed,
            phone_index=phone_index, phone_masked=masked, courtyard_id=courtyard.id, password_hash=password_hash,
            registered_at=clock.now(), seq=seq, schema_version=index.SCHEMA_VERSION,
            **index.resident_keys(district_id, list(courtyard.path), seq, name, phone_index, masked, courtyard.id))

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
        phone = self._phone(v, principal.district_id, text) if text and PHONE_LIKE.match(text) else None
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        root = self.units.get(principal.district_id, unit_id)
        require_manages(principal, root.district_id, root.path)
        district, depth = root.district_id, len(root.path) - 1
        cursor = self._cursor(district, after)
        collection = Resident.collection()
        if phone is not None:
            field, values = phone

            def fetch(_) -> list[dict]:
                """A handful in the whole district: all of them, those of the subtree kept."""
                matches = [r for at in range(0, len(values), MAX_WINDOW)
                           for r in collection.find({field: {"$in": values[at:at + MAX_WINDOW]}}, {"outbox": 0})]
                yards = {u.id: u for u in Unit.objects(id__in=sorted({r["courtyard_id"] for r in matches}))}
                return [r for r in matches if r["courtyard_id"] in yards and root.id in yards[r["courtyard_id"]].path]

            page = scan(fetch, [0], sort_key=lambda r: r["seq"], size=size, after=cursor)
        else:
            field, prefix = index.name_field(text, depth)

            def fetch(chunk: list[int]):
                return collection.find({field: {"$in": [key(district, root.id, prefix, b) for b in chunk]}},
                                       {"outbox": 0})

            page = scan(fetch, index.buckets(district, index.RESIDENTS, depth), sort_key=lambda r: r["seq"],
                        size=size, after=cursor, bucket_of=lambda seq: index.bucket(seq, depth),
                        accept=lambda r: r["name"].startswith(text))
        found = [Resident.from_raw(raw) for raw in page.entries if raw["district_id"] == district]
        courtyards = {u.id: u for u in Unit.objects(id__in=sorted({r.courtyard_id for r in found}))}
        shown = [(r, courtyards[r.courtyard_id]) for r in found
                 if r.courtyard_id in courtyards and root.id in courtyards[r.courtyard_id].path]
        return shown, encode_page_token(page.entries[-1]["_id"]) if page.more else ""

    @staticmethod
    def _cursor(district_id: str, after: str | None) -> int | None:
        """The page token is the last resident shown; the list continues after their number."""
        if after is None:
            return None
        resident = Resident.objects(id=after, district_id=district_id).only("seq").first()
        if resident is None:
            raise InvalidArgument.field("page.page_token", "is not a token returned by this API")
        return resident.seq

    def _phone(self, v: Validator, district_id: str, text: str) -> tuple[str, list[str]] | None:
        """The key a phone query reads and its values: all digits (blind index), or the last four
        (the masked numbers ending with them)."""
        digits = re.sub(r"[ -]", "", text)
        if re.fullmatch(r"[0-9]{4}", digits):
            return "pm", [key(district_id, m) for m in phone_masks_ending(digits)]
        try:
            phone = validate_mobile(digits)
        except ValueError:
            v.fail("query", PHONE_QUERY)
            return None
        # every key version's blind index: a key rotation rewrites documents, not what a caller types
        return "ph", [key(district_id, blind) for blind in self.vault.blind_indexes(phone, district_id=district_id,
                                                                                 field="resident.phone")]
