"""Volunteers (志愿者): real-name registration, approval, suspension, profile changes, search.

The ID number is validated (GB 11643), encrypted, blind-indexed for the duplicate check and
stored masked; it is never returned, logged or put in an event. Volunteers are known by their
volunteer number (志愿者编号), unique in the district; a search lists them in its order, through
their `volunteer_scopes` entries (index.py), written after each volunteer's write.
"""

from __future__ import annotations

from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_manages_any, require_role
from services.common.clock import clock
from services.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import key, scan
from services.common.pii import NationalId, PiiVault, mask_national_id, mask_phone
from services.common.validation import Validator
from wenming.common.v1 import common_pb2
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from . import index
from .models import Availability, Unit, Volunteer
from .passwords import hash_password
from .roll import RowResult, results_for
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


def validate_availability(v: Validator, availability: common_pb2.Availability, prefix: str = "") -> Availability:
    return Availability(
        weekdays=v.enums(f"{prefix}availability.weekdays", list(availability.weekdays), common_pb2.Weekday,
                         max_count=7),
        periods=v.enums(f"{prefix}availability.periods", list(availability.periods), common_pb2.DayPeriod,
                        max_count=3),
    )


@dataclass(frozen=True)
class Applicant:
    """Who registers as a volunteer, validated (RegisterVolunteerRequest, or a row of an import)."""

    name: str
    national_id: NationalId | None
    phone: str
    political_status: int
    skills: list[int]
    unit_ids: list[str]
    availability: Availability

    @classmethod
    def read(cls, v: Validator, source, prefix: str = "") -> Applicant:
        v.enum(f"{prefix}political_status", source.political_status, pb.PoliticalStatus)
        return cls(name=v.text(f"{prefix}name", source.name, max_len=50),
                   national_id=v.national_id(f"{prefix}national_id", source.national_id),
                   phone=v.mobile(f"{prefix}phone", source.phone), political_status=source.political_status,
                   skills=v.enums(f"{prefix}skills", list(source.skills), common_pb2.Skill, max_count=16),
                   unit_ids=v.ids(f"{prefix}service_unit_ids", list(source.service_unit_ids), min_count=1,
                                  max_count=MAX_UNITS),
                   availability=validate_availability(v, source.availability, prefix))


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
    def __init__(self, units: UnitDirectory, vault: PiiVault, events: EventSource, scopes: index.VolunteerScopes):
        self.units = units
        self.vault = vault
        self.events = events
        self.scopes = scopes

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

    @staticmethod
    def _number(seq: int) -> str:
        return f"ZY{seq:08d}"

    def _recorded(self, view: VolunteerView) -> VolunteerView:
        """After a volunteer's write: its entries, so searches find it as it is now."""
        self.scopes.record(view.volunteer, view.units)
        return view

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
        return self._recorded(VolunteerView(changed, view.units))

    # ---- commands ----

    def _new(self, district_id: str, applicant: Applicant, seq: int, password_hash: str,
             admin: Principal | None) -> Volunteer:
        """A volunteer as registration stores it; vouched for (ACTIVE) when an admin registers it."""
        number, now = applicant.national_id.number, clock.now()
        return Volunteer(
            id=new_id("vol"), district_id=district_id, volunteer_number=self._number(seq), name=applicant.name,
            id_cipher=self.vault.encrypt(number, district_id=district_id, field="volunteer.national_id"),
            id_index=self.vault.blind_index(number, district_id=district_id, field="national_id"),
            id_masked=mask_national_id(number),
            phone_cipher=self.vault.encrypt(applicant.phone, district_id=district_id, field="volunteer.phone"),
            phone_index=self.vault.blind_index(applicant.phone, district_id=district_id, field="volunteer.phone"),
            phone_masked=mask_phone(applicant.phone),
            gender=pb.GENDER_MALE if applicant.national_id.male else pb.GENDER_FEMALE,
            birth_date=applicant.national_id.birth_date.isoformat(), political_status=applicant.political_status,
            skills=applicant.skills, unit_ids=applicant.unit_ids, availability=applicant.availability,
            status=S.VOLUNTEER_STATUS_ACTIVE if admin else S.VOLUNTEER_STATUS_PENDING,
            password_hash=password_hash, registered_at=now,
            approved_at=now if admin else None, approved_by=admin.subject if admin else "",
        )

    @staticmethod
    def _duplicate(volunteer: Volunteer) -> str:
        """Why a new volunteer collided with a unique index (FerretDB does not name the index)."""
        if Volunteer.objects(district_id=volunteer.district_id, id_index=volunteer.id_index).first() is not None:
            return "a volunteer with this ID number is already registered in this district"
        return "this mobile number is already registered by another volunteer"

    def _registered_event(self, view: VolunteerView, admin: Principal | None, actor: Principal | None) -> dict:
        return self._event(events_pb2.VolunteerRegistered(profile=view.profile(), self_registered=admin is None),
                           view, 1, actor.subject if actor else "")

    def register(self, principal: Principal | None, req: pb.RegisterVolunteerRequest) -> VolunteerView:
        v = Validator()
        district_id = v.ident("district_id", req.district_id)
        applicant = Applicant.read(v, req)
        password = validate_password(v, req.password)
        v.check()

        units = self.units.get_many(district_id, applicant.unit_ids, "service_unit_ids")
        admin = principal if principal is not None and principal.role == Role.ROLE_UNIT_ADMIN else None
        if admin:
            # an admin registering on site vouches for the person: the volunteer starts ACTIVE
            for unit in units:
                if admin.district_id != district_id or not admin.manages(unit.path):
                    raise PermissionDenied(f"unit {unit.id} is outside your unit's subtree")
        if index_taken(Volunteer, district_id, "id_index", self.vault.blind_indexes(
                applicant.national_id.number, district_id=district_id, field="national_id")):
            raise AlreadyExists("a volunteer with this ID number is already registered in this district")
        if index_taken(Volunteer, district_id, "phone_index", self.vault.blind_indexes(
                applicant.phone, district_id=district_id, field="volunteer.phone")):
            raise AlreadyExists("this mobile number is already registered by another volunteer")
        volunteer = self._new(district_id, applicant, index.reserve(district_id, index.VOLUNTEERS),
                              hash_password(password), admin)
        view = VolunteerView(volunteer, units)
        try:
            volunteer.insert([self._registered_event(view, admin, principal)])
        except DuplicateKeyError:
            raise AlreadyExists(self._duplicate(volunteer)) from None
        return self._recorded(view)

    def import_roll(self, principal: Principal, rows) -> list[RowResult]:
        """名册导入 (roll.py): each valid row registered as the admin's RegisterVolunteer would,
        ACTIVE and without a password, in one write."""
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        results = results_for(rows)
        district = principal.district_id
        applicants: dict[int, Applicant] = {}
        for i, row in enumerate(rows):
            v = Validator()
            applicant = Applicant.read(v, row, f"rows[{i}].")
            if v.violations:
                results[i].refuse(*v.violations[0])
            else:
                applicants[i] = applicant
        units = {u.id: u for u in Unit.objects(id__in=sorted({u for a in applicants.values() for u in a.unit_ids}),
                                                district_id=district)}
        for i, applicant in list(applicants.items()):
            for unit_id in applicant.unit_ids:
                if unit_id not in units or not principal.manages(units[unit_id].path):
                    results[i].refuse(f"rows[{i}].service_unit_ids", f"unit {unit_id} is not a unit of your subtree")
                    del applicants[i]
                    break
        for i in self._registered_under_older_keys(district, applicants):
            results[i].refuse(f"rows[{i}]", "this person is already registered in this district",
                              already_registered=True)
            del applicants[i]
        if not applicants:
            return results
        first = index.reserve(district, index.VOLUNTEERS, len(applicants))
        new = []
        for seq, (i, applicant) in enumerate(applicants.items(), start=first):
            view = VolunteerView(self._new(district, applicant, seq, "", principal),
                                 [units[u] for u in applicant.unit_ids])
            new.append((i, view))
        # their search entries first (at version 1, what the insert makes them): the events of the
        # insert reach the follower at once, and it should find the entries already there
        self.scopes.insert_new([(view.volunteer, view.units) for _, view in new], version=1)
        failed = Volunteer.insert_all([(view.volunteer, [self._registered_event(view, principal, principal)])
                                       for _, view in new])
        for position, (i, view) in enumerate(new):
            if position in failed:
                results[i].refuse(f"rows[{i}]", self._duplicate(view.volunteer), already_registered=True)
            else:
                results[i].id, results[i].volunteer_number = view.volunteer.id, view.volunteer.volunteer_number
        self.scopes.forget([new[position][1].volunteer.id for position in failed])
        return results

    def _registered_under_older_keys(self, district: str, applicants: dict[int, Applicant]) -> list[int]:
        """Rows whose ID number or phone a volunteer already holds under an older key version (the
        unique indexes guard the newest only, until a key rotation has rewritten every document)."""
        if len(self.vault.blind.keys) < 2:
            return []
        older: dict[str, int] = {}
        for i, applicant in applicants.items():
            for value, field in ((applicant.national_id.number, "national_id"), (applicant.phone, "volunteer.phone")):
                for blind in self.vault.blind_indexes(value, district_id=district, field=field)[1:]:
                    older[blind] = i
        found = Volunteer.collection().find(
            {"district_id": district, "$or": [{"id_index": {"$in": list(older)}}, {"phone_index": {"$in": list(older)}}]},
            {"id_index": 1, "phone_index": 1})
        return sorted({older[doc[f]] for doc in found for f in ("id_index", "phone_index") if doc.get(f) in older})

    def get(self, principal: Principal, volunteer_id: str) -> VolunteerView:
        view = self._load(volunteer_id)
        self._require_self_or_admin(principal, view)
        return view

    def approve(self, principal: Principal, volunteer_id: str) -> VolunteerView:
        return self._transition(principal, volunteer_id, S.VOLUNTEER_STATUS_PENDING, S.VOLUNTEER_STATUS_ACTIVE,
                                lambda p: events_pb2.VolunteerApproved(profile=p),
                                {"approved_at": clock.now(), "approved_by": principal.subject, "status_reason": ""})

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
        return self._recorded(VolunteerView(changed, units))

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
        district, depth = principal.district_id, len(root.path) - 1
        cursor = self._cursor(district, after)
        statuses = [req.status] if req.status else [status for status in S.values() if status]

        def fetch(chunk: list[int]):
            return self.scopes.collection.find({"k": {"$in": [key(district, root.id, status, b)
                                                              for status in statuses for b in chunk]}})

        page = scan(fetch, index.buckets(district, index.VOLUNTEERS, depth), sort_key=lambda e: e["num"], size=size,
                    after=cursor, bucket_of=lambda seq: index.bucket(seq, depth),
                    accept=lambda e: not req.skill or req.skill in e["skills"])
        ids = [e["vol"] for e in page.entries]
        stored = {raw["_id"]: Volunteer.from_raw(raw)
                  for raw in Volunteer.collection().find({"_id": {"$in": ids}}, {"outbox": 0})}
        found = [stored[i] for i in ids if i in stored and stored[i].district_id == district
                 and (not req.status or stored[i].status == req.status)
                 and (not req.skill or req.skill in stored[i].skills)]
        unit_cache = {u.id: u for u in Unit.objects(id__in=sorted({i for f in found for i in f.unit_ids}))}
        views = [VolunteerView(f, [unit_cache[i] for i in f.unit_ids if i in unit_cache]) for f in found]
        views = [view for view in views if any(root.id in u.path for u in view.units)]
        return views, encode_page_token(ids[-1]) if page.more else ""

    @staticmethod
    def _cursor(district_id: str, after: str | None) -> int | None:
        """The page token is the last volunteer shown; the list continues after their number."""
        if after is None:
            return None
        volunteer = Volunteer.objects(id=after, district_id=district_id).only("volunteer_number").first()
        if volunteer is None:
            raise InvalidArgument.field("page.page_token", "is not a token returned by this API")
        return index.volunteer_seq(volunteer.volunteer_number)

    # ---- repair ----

    def repair(self, aggregate_type: str, versions: dict[str, int]) -> int:
        """Brings the entries of these volunteers (id -> version they reached) up to date: the
        follower of registration's own events calls this for each batch."""
        if aggregate_type != "volunteer":
            return 0
        stale = self.scopes.stale(versions)
        for volunteer in Volunteer.objects(id__in=stale):
            self._recorded(self._view(volunteer))
        return len(stale)
