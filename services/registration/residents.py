"""Residents (群众): light accounts bound to a courtyard, who order services and rate them."""

from __future__ import annotations

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.errors import AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource, utcnow
from services.common.pii import PiiVault, mask_phone
from services.common.ids import new_id
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import Resident, Unit
from .passwords import hash_password
from .units import UnitDirectory, unit_ref
from .volunteers import validate_password


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
