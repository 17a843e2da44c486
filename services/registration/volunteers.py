"""Volunteers (志愿者): real-name registration, approval, suspension, profile changes, search.

The ID number is validated (GB 11643), encrypted, blind-indexed for the duplicate check and
stored masked; it is never returned, logged or put in an event. Volunteers are known by their
volunteer number (志愿者编号), unique in the district.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_manages_any, require_role
from services.common.errors import AlreadyExists, FailedPrecondition, NotFound, PermissionDenied
from services.common.events import EventSource, utcnow
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.pii import PiiVault, mask_national_id, mask_phone
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from .models import Availability, Counter, Unit, Volunteer
from .passwords import hash_password
from .units import UnitDirectory, unit_ref

S = pb.VolunteerStatus
MAX_UNITS = 5
UPDATABLE = {"skills", "availability", "phone", "political_status", "service_unit_ids"}
ADMIN_ONLY_FIELDS = {"service_unit_ids"}


def index_taken(model, district_id: str, field: str, indexes: list[str], except_id: str = "") -> bool:
    """Whether another document holds the value under any key version of its blind index. A write
    stores the newest version, which the unique index guards; until a key rotation has rewritten
    them all, older versions are found only by looking."""
    query = {"district_id": district_id, field: {"$in": indexes}}
    if except_id:
        query["_id"] = {"$ne": except_id}
    return model.collection().find_one(query, {"_id": 1}) is not None


def validate_password(v: Validator, password: str, field: str = "password") -> str:
    if not 8 <= len(password or "") <= 128:
        v.fail(field, "must be 8 to 128 characters")
    return password or ""


def validate_availability(v: Validator, availability: common_pb2.Availability) -> Availability:
    return Availability(
        weekdays=v.enums("availability.weekdays", list(availability.weekdays), common_pb2.Weekday, max_count=7),
        periods=v.enums("availability.periods", list(availability.periods), common_pb2.DayPeriod, max_count=3),
    )


@dataclass
class VolunteerView:
    """A volunteer with the units it serves, ready for the API and for events."""

    volunteer: Volunteer
    units: list[Unit]

    def profile(self) -> events_pb2.VolunteerProfile:
        v = self.volunteer
        return events_pb2.VolunteerProfile(
            volunteer_id=v.id, volunteer_number=v.volunteer_number, name=v.name, gender=v.gender,
            birth_year=int(v.birth_date[:4]), political_status=v.political_status, skills=list(v.skills),
            service_units=[unit_ref(u) for u in self.units],
            availability=common_pb2.Availability(weekdays=list(v.availability.weekdays),
                                                 periods=list(v.availability.periods)),
            status=v.status,
        )


class VolunteerRegistry:
    def __init__(self, units: UnitDirectory, vault: PiiVault, events: EventSource):
        self.units = units
        self.vault = vault
        self.events = events

    # ---- helpers ----

    def _view(self, volunteer: Volunteer) -> VolunteerView:
        return VolunteerView(volunteer, self.units.get_many(volunteer.district_id, list(volunteer.unit_ids), "unit_ids"))

    def _load(self, volunteer_id: str) -> VolunteerView:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", volunteer_id)
        v.check()
        volunteer = Volunteer.objects(id=volunteer_id).first()
        if volunteer is None:
            raise NotFound("volunteer", volunteer_id)
        return self._view(volunteer)

    def _require_admin_of(self, principal: Principal, view: VolunteerView) -> None:
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        require_manages_any(principal, view.volunteer.district_id, [u.path for u in view.units], "volunteer")

    def _require_self_or_admin(self, principal: Principal, view: VolunteerView) -> None:
        if principal.role == Role.ROLE_VOLUNTEER and principal.subject == view.volunteer.id:
            return
        if principal.role in (Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE):
            self._require_admin_of(principal, view)
            return
        raise PermissionDenied("only the volunteer themself or an admin of their unit may do this")

    def _event(self, payload, view: VolunteerView, version: int, actor: str) -> dict:
        return self.events.new(payload, district_id=view.volunteer.district_id, aggregate_type="volunteer",
                               aggregate_id=view.volunteer.id, version=version, actor_id=actor)

    def _next_number(self, district_id: str) -> str:
        counter = Counter._get_collection().find_one_and_update(
            {"_id": f"{district_id}:volunteer_number"}, {"$inc": {"seq": 1}}, upsert=True,
            return_document=ReturnDocument.AFTER)
        return f"ZY{counter['seq']:08d}"

    def _transition(self, principal: Principal, volunteer_id: str, from_status: int, to_status: int,
                    make_event, extra_set: dict | None = None) -> VolunteerView:
        view = self._load(volunteer_id)
        self._require_admin_of(principal, view)
        current = view.volunteer
        if current.status != from_status:
            raise FailedPrecondition(
                f"volunteer is {S.Name(current.status)}; this needs {S.Name(from_status)}")
        after = Volunteer.from_raw({**current.to_mongo().to_dict(), "status": to_status})
        event = self._event(make_event(VolunteerView(after, view.units).profile()), view, current.version + 1,
                            principal.subject)
        changed = Volunteer.change(
            {"_id": current.id, "status": from_status, "version": current.version},
            {"$set": {"status": to_status, **(extra_set or {})}}, [event])
        if changed is None:
            raise FailedPrecondition("the volunteer changed meanwhile; reload and retry")
        return VolunteerView(changed, view.units)

    # ---- commands ----

    def register(self, principal: Principal | None, req: pb.RegisterVolunteerRequest) -> VolunteerView:
        v = Validator()
        district_id = v.ident("district_id", req.district_id)
        name = v.text("name", req.name, max_len=50)
        national_id = v.national_id("national_id", req.national_id)
        phone = v.mobile("phone", req.phone)
        password = validate_password(v, req.password)
        v.enum("political_status", req.political_status, pb.PoliticalStatus)
        skills = v.enums("skills", list(req.skills), common_pb2.Skill, max_count=16)
        unit_ids = v.ids("service_unit_ids", list(req.service_unit_ids), min_count=1, max_count=MAX_UNITS)
        availability = validate_availability(v, req.availability)
        v.check()

        units = self.units.get_many(district_id, unit_ids, "service_unit_ids")
        by_admin = principal is not None and principal.role == Role.ROLE_UNIT_ADMIN
        if by_admin:
            # an admin registering on site vouches for the person: the volunteer starts ACTIVE
            for unit in units:
                if principal.district_id != district_id or not principal.manages(unit.path):
                    raise PermissionDenied(f"unit {unit.id} is outside your unit's subtree")
        now = utcnow()
        volunteer = Volunteer(
            id=new_id("vol"), district_id=district_id, volunteer_number=self._next_number(district_id), name=name,
            id_cipher=self.vault.encrypt(national_id.number, district_id=district_id, field="volunteer.national_id"),
            id_index=self.vault.blind_index(national_id.number, district_id=district_id, field="national_id"),
            id_masked=mask_national_id(national_id.number),
            phone_cipher=self.vault.encrypt(phone, district_id=district_id, field="volunteer.phone"),
            phone_index=self.vault.blind_index(phone, district_id=district_id, field="volunteer.phone"),
            phone_masked=mask_phone(phone),
            gender=pb.GENDER_MALE if national_id.male else pb.GENDER_FEMALE,
            birth_date=national_id.birth_date.isoformat(), political_status=req.political_status,
            skills=skills, unit_ids=unit_ids, availability=availability,
            status=S.VOLUNTEER_STATUS_ACTIVE if by_admin else S.VOLUNTEER_STATUS_PENDING,
            password_hash=hash_password(password), registered_at=now,
            approved_at=now if by_admin else None, approved_by=principal.subject if by_admin else "",
        )
        if index_taken(Volunteer, district_id, "id_index", self.vault.blind_indexes(
                national_id.number, district_id=district_id, field="national_id")):
            raise AlreadyExists("a volunteer with this ID number is already registered in this district")
        if index_taken(Volunteer, district_id, "phone_index", self.vault.blind_indexes(
                phone, district_id=district_id, field="volunteer.phone")):
            raise AlreadyExists("this mobile number is already registered by another volunteer")
        view = VolunteerView(volunteer, units)
        event = self._event(events_pb2.VolunteerRegistered(profile=view.profile(), self_registered=not by_admin),
                            view, 1, principal.subject if principal else "")
        try:
            volunteer.insert([event])
        except DuplicateKeyError:
            # FerretDB does not name the violated index, so look for which one it was
            if Volunteer.objects(district_id=district_id, id_index=volunteer.id_index).first() is not None:
                raise AlreadyExists("a volunteer with this ID number is already registered in this district") from None
            raise AlreadyExists("this mobile number is already registered by another volunteer") from None
        return view

    def get(self, principal: Principal, volunteer_id: str) -> VolunteerView:
        view = self._load(volunteer_id)
        self._require_self_or_admin(principal, view)
        return view

    def approve(self, principal: Principal, volunteer_id: str) -> VolunteerView:
        return self._transition(principal, volunteer_id, S.VOLUNTEER_STATUS_PENDING, S.VOLUNTEER_STATUS_ACTIVE,
                                lambda p: events_pb2.VolunteerApproved(profile=p),
                                {"approved_at": utcnow(), "approved_by": principal.subject, "status_reason": ""})

    def suspend(self, principal: Principal, volunteer_id: str, reason: str) -> VolunteerView:
        v = Validator()
        reason = v.text("reason", reason, max_len=200)
        v.check()
        return self._transition(principal, volunteer_id, S.VOLUNTEER_STATUS_ACTIVE, S.VOLUNTEER_STATUS_SUSPENDED,
                                lambda p: events_pb2.VolunteerSuspended(profile=p, reason=reason),
                                {"status_reason": reason})

    def reinstate(self, principal: Principal, volunteer_id: str) -> VolunteerView:
        return self._transition(principal, volunteer_id, S.VOLUNTEER_STATUS_SUSPENDED, S.VOLUNTEER_STATUS_ACTIVE,
                                lambda p: events_pb2.VolunteerReinstated(profile=p), {"status_reason": ""})

    def update(self, principal: Principal, req: pb.UpdateVolunteerRequest) -> VolunteerView:
        v = Validator()
        fields = v.update_fields("update_fields", req.update_fields, UPDATABLE)
        changes: dict = {}
        if "skills" in fields:
            changes["skills"] = v.enums("skills", list(req.skills), common_pb2.Skill, max_count=16)
        if "availability" in fields:
            changes["availability"] = validate_availability(v, req.availability).to_mongo().to_dict()
        if "political_status" in fields:
            changes["political_status"] = v.enum("political_status", req.political_status, pb.PoliticalStatus)
        phone = v.mobile("phone", req.phone) if "phone" in fields else ""
        unit_ids = None
        if "service_unit_ids" in fields:
            unit_ids = v.ids("service_unit_ids", list(req.service_unit_ids), min_count=1, max_count=MAX_UNITS)
        v.check()

        view = self._load(req.volunteer_id)
        self._require_self_or_admin(principal, view)
        current = view.volunteer
        if principal.role == Role.ROLE_VOLUNTEER and ADMIN_ONLY_FIELDS & set(fields):
            raise PermissionDenied("only an admin of your unit may change your service units")
        units = view.units
        if unit_ids is not None:
            units = self.units.get_many(current.district_id, unit_ids, "service_unit_ids")
            for unit in units:
                if not principal.manages(unit.path):
                    raise PermissionDenied(f"unit {unit.id} is outside your unit's subtree")
            changes["unit_ids"] = unit_ids
        if phone:
            district = current.district_id
            if index_taken(Volunteer, district, "phone_index", self.vault.blind_indexes(
                    phone, district_id=district, field="volunteer.phone"), except_id=current.id):
                raise AlreadyExists("this mobile number is already registered by another volunteer")
            changes.update(phone_cipher=self.vault.encrypt(phone, district_id=district, field="volunteer.phone"),
                           phone_index=self.vault.blind_index(phone, district_id=district, field="volunteer.phone"),
                           phone_masked=mask_phone(phone))

        preview = Volunteer.from_raw({**current.to_mongo().to_dict(), **changes})
        event = self._event(events_pb2.VolunteerUpdated(profile=VolunteerView(preview, units).profile(),
                                                        changed_fields=fields),
                            view, current.version + 1, principal.subject)
        try:
            changed = Volunteer.change({"_id": current.id, "version": current.version}, {"$set": changes}, [event])
        except DuplicateKeyError:
            raise AlreadyExists("this mobile number is already registered by another volunteer") from None
        if changed is None:
            raise FailedPrecondition("the volunteer changed meanwhile; reload and retry")
        return VolunteerView(changed, units)

    def search(self, principal: Principal, req: pb.SearchVolunteersRequest) -> tuple[list[VolunteerView], str]:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
        v.enum("skill", req.skill, common_pb2.Skill, required=False)
        v.enum("status", req.status, pb.VolunteerStatus, required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN, Role.ROLE_SERVICE)
        root = self.units.get(principal.district_id, unit_id)
        if not principal.manages(root.path):
            raise PermissionDenied("that unit is outside your unit's subtree")
        query: dict = {"district_id": principal.district_id}
        subtree = self.units.subtree_ids(principal.district_id, root)
        if subtree is not None:
            query["unit_ids"] = {"$in": subtree}
        if req.skill:
            query["skills"] = req.skill
        if req.status:
            query["status"] = req.status
        if after:
            query["_id"] = {"$gt": after}
        found = [Volunteer.from_raw(r) for r in
                 Volunteer.collection().find(query, {"outbox": 0}).sort("_id", 1).limit(size + 1)]
        next_token = encode_page_token(found[size - 1].id) if len(found) > size else ""
        found = found[:size]
        unit_cache = {u.id: u for u in Unit.objects(id__in=sorted({i for f in found for i in f.unit_ids}))}
        return [VolunteerView(f, [unit_cache[i] for i in f.unit_ids if i in unit_cache]) for f in found], next_token

