"""Households (户) and their yearly stars (十星文明户): the desk. Registration keeps them because it
owns the people: a household's members are resident records, and a resident belongs to at most
one household (`Resident.hh`, claimed by one conditional write). The rules are in
household_rules.py; this module validates, loads, authorizes, calls them and writes.
"""

from __future__ import annotations

import builtins
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role, require_role
from services.common.clock import CHINA, clock
from services.common.errors import Aborted, FailedPrecondition, InvalidArgument, NotFound, PermissionDenied
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, keyed_id
from services.common.listing import key, scan
from services.common.pii import PiiVault, mask_address
from services.common.validation import Validator
from wenming.registration.v1 import events_pb2, registration_pb2 as pb

from . import household_rules as rules, index
from .models import Household, HouseholdStarList, Resident, Unit
from .units import UnitDirectory, unit_ref

ADDRESS_FIELD = "household.address"
NO_HOUSEHOLD = {"$in": [None, ""]}  # residents registered before households have no field at all


def household_key(district_id: str, household_id: str) -> str:
    """What a member carries (`Resident.hh`): the household, as a list key."""
    return key(district_id, household_id)


def household_of(hh: str | None) -> str:
    """The household id a resident's `hh` names ("" for none)."""
    return hh.rsplit("|", 1)[-1] if hh else ""


@dataclass
class HouseholdView:
    """A household with its unit, members and the asked year's rating: what every answer shows."""

    household: Household
    unit: Unit
    members: list[Resident]
    rating: rules.Rating


class HouseholdBook:
    def __init__(self, units: UnitDirectory, vault: PiiVault, events: EventSource):
        self.units = units
        self.vault = vault
        self.events = events

    # ---- the district's stars ----

    def stars(self, district_id: str) -> tuple[list[str], HouseholdStarList | None]:
        """The district's stars in order, and its own list if it set one (else the defaults)."""
        own = HouseholdStarList.objects(id=district_id).exclude("outbox").first()
        return (list(own.stars), own) if own is not None else (list(rules.DEFAULT_STARS), None)

    def set_stars(self, principal: Principal, req: pb.SetHouseholdStarsRequest) -> HouseholdStarList:
        v = Validator()
        stars = rules.validate_star_list(v, list(req.stars))
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("星级项目由区（县）中心管理员设置")
        district = principal.district_id
        _, current = self.stars(district)
        fields = {"stars": stars, "updated_at": clock.now(), "updated_by": principal.subject}
        if current is None:
            star_list = HouseholdStarList(id=district, district_id=district, **fields)
            try:
                star_list.insert([])
            except DuplicateKeyError:
                raise Aborted("星级项目刚被他人设置，请刷新后再试") from None
            return star_list
        if req.expected_version and req.expected_version != current.version:
            raise FailedPrecondition(f"星级项目已被他人修改（版本 {current.version}），请刷新后再试")
        changed = HouseholdStarList.change({"_id": district, "version": current.version}, {"$set": fields}, [])
        if changed is None:
            raise Aborted("星级项目刚被他人修改，请刷新后再试")
        return changed

    # ---- reading ----

    def _this_year(self) -> int:
        return clock.now().astimezone(CHINA).year

    def _load(self, principal: Principal, household_id: str) -> tuple[Household, Unit]:
        household = Household.in_district(principal.district_id, household_id, "household")
        return household, self.units.get(household.district_id, household.unit_id)

    def view(self, household: Household, unit: Unit, year: int, stars: list[str] | None = None) -> HouseholdView:
        return self.views([(household, unit)], year, stars)[0]

    def views(self, households: list[tuple[Household, Unit]], year: int,
              stars: list[str] | None = None) -> list[HouseholdView]:
        if not households:
            return []
        stars = stars if stars is not None else self.stars(households[0][0].district_id)[0]
        members: dict[str, list[Resident]] = {h.id: [] for h, _ in households}
        district = households[0][0].district_id
        for raw in Resident.collection().find({"hh": {"$in": [household_key(district, h) for h in members]}},
                                              {"outbox": 0}):
            members[household_of(raw["hh"])].append(Resident.from_raw(raw))
        return [HouseholdView(h, unit, sorted(members[h.id], key=lambda r: r.seq or 0),
                              rules.rating_of(h.ratings, year, stars)) for h, unit in households]

    def get(self, principal: Principal, req: pb.GetHouseholdRequest) -> HouseholdView | None:
        v = Validator()
        household_id = v.ident("household_id", req.household_id, required=principal.role != Role.ROLE_RESIDENT)
        year = rules.validate_year(v, req.year, self._this_year(), required=False)
        v.check()
        callers = ""
        if principal.role == Role.ROLE_RESIDENT:
            me = Resident.objects(id=principal.subject, district_id=principal.district_id).only("hh").first()
            callers = household_of(me.hh) if me is not None else ""
            if not household_id:
                if not callers:
                    return None
                household_id = callers
        household, unit = self._load(principal, household_id)
        rules.require_reader(principal, unit.path, household.id, callers)
        return self.view(household, unit, year)

    def list(self, principal: Principal, req: pb.ListHouseholdsRequest) -> tuple[list[HouseholdView], str]:
        v = Validator()
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        year = rules.validate_year(v, req.year, self._this_year(), required=False)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        require_role(principal, Role.ROLE_UNIT_ADMIN)
        root = self.units.get(principal.district_id, unit_id)
        rules.require_keeper(principal, root.path)
        district, depth = root.district_id, len(root.path) - 1
        cursor = self._cursor(district, after)
        field = f"sub{depth}"

        def fetch(chunk: builtins.list[int]):
            return Household.collection().find({field: {"$in": [key(district, root.id, b) for b in chunk]}},
                                               {"outbox": 0})

        page = scan(fetch, index.buckets(district, index.HOUSEHOLDS, depth), sort_key=lambda r: r["seq"], size=size,
                    after=cursor, bucket_of=lambda seq: index.bucket(seq, depth))
        shown = [Household.from_raw(r) for r in page.entries if r["district_id"] == district]
        units = {u.id: u for u in self.units.get_many(district, sorted({h.unit_id for h in shown}), "unit_id")}
        token = encode_page_token(page.entries[-1]["_id"]) if page.more else ""
        return self.views([(h, units[h.unit_id]) for h in shown], year), token

    @staticmethod
    def _cursor(district_id: str, after: str | None) -> int | None:
        """The page token is the last household shown; the list continues after its number."""
        if after is None:
            return None
        last = Household.collection().find_one({"_id": after, "district_id": district_id}, {"seq": 1})
        if last is None:
            raise InvalidArgument.field("page.page_token", "is not a token returned by this API")
        return last["seq"]

    # ---- writes ----

    def create(self, principal: Principal, req: pb.CreateHouseholdRequest) -> HouseholdView:
        v = Validator()
        asked = rules.validate_new(v, req.unit_id, req.name, req.address, req.idempotency_key)
        v.check()
        unit = self.units.get(principal.district_id, asked.unit_id)
        rules.require_keeper(principal, unit.path)
        rules.require_household_unit(unit.level)
        district = unit.district_id
        household_id = keyed_id("hh", key(district, principal.subject, asked.idempotency_key))
        replayed = Household.objects(id=household_id).exclude("outbox").first()
        if replayed is None:
            seq = index.reserve(district, index.HOUSEHOLDS)
            household = Household(
                id=household_id, district_id=district, unit_id=unit.id, name=asked.name, seq=seq,
                **index.household_keys(district, list(unit.path), seq),
                address_cipher=self.vault.encrypt(asked.address, district_id=district, field=ADDRESS_FIELD)
                if asked.address else None,
                address_masked=mask_address(asked.address), ratings=[], created_at=clock.now_as_stored(),
                created_by=principal.subject)
            try:
                household.insert([])
                return self.view(household, unit, self._this_year())
            except DuplicateKeyError:  # a concurrent retry with the same key won
                replayed = Household.objects(id=household_id).exclude("outbox").first()
                if replayed is None:
                    raise
        if not self._same_request(replayed, asked):
            raise InvalidArgument.field("idempotency_key", "was already used for a different household")
        return self.view(replayed, unit, self._this_year())

    def _same_request(self, household: Household, asked: rules.NewHousehold) -> bool:
        address = self.vault.decrypt(household.address_cipher, district_id=household.district_id,
                                     field=ADDRESS_FIELD) if household.address_cipher else ""
        return (household.unit_id, household.name, address) == (asked.unit_id, asked.name, asked.address)

    def _managed(self, principal: Principal, v: Validator, req) -> tuple[Household, Unit, str]:
        household_id = v.ident("household_id", req.household_id)
        resident_id = v.ident("resident_id", req.resident_id)
        v.check()
        household, unit = self._load(principal, household_id)
        rules.require_keeper(principal, unit.path)
        return household, unit, resident_id

    def add_member(self, principal: Principal, req: pb.AddHouseholdMemberRequest) -> HouseholdView:
        household, unit, resident_id = self._managed(principal, Validator(), req)
        resident = Resident.objects(id=resident_id, district_id=household.district_id).exclude("outbox").first()
        if resident is None:
            raise NotFound("resident", resident_id)
        courtyard = self.units.get(resident.district_id, resident.courtyard_id)
        mine = household_key(household.district_id, household.id)
        members = Resident.objects(hh=mine).count()
        if rules.check_new_member(household.id, household.unit_id, courtyard.path, household_of(resident.hh),
                                  members):
            claimed = Resident.collection().update_one(
                {"_id": resident.id, "district_id": household.district_id, "hh": NO_HOUSEHOLD}, {"$set": {"hh": mine}})
            if claimed.matched_count == 0:  # another household claimed them in between
                again = Resident.objects(id=resident.id).only("hh").first()
                if again is None or again.hh != mine:
                    rules.check_new_member(household.id, household.unit_id, courtyard.path,
                                           household_of(again.hh) if again else "", members)
                    raise Aborted("该居民刚被修改，请重试")
        return self.view(household, unit, self._this_year())

    def remove_member(self, principal: Principal, req: pb.RemoveHouseholdMemberRequest) -> HouseholdView:
        household, unit, resident_id = self._managed(principal, Validator(), req)
        Resident.collection().update_one({"_id": resident_id, "district_id": household.district_id,
                                          "hh": household_key(household.district_id, household.id)},
                                         {"$set": {"hh": ""}})
        return self.view(household, unit, self._this_year())

    def rate(self, principal: Principal, req: pb.RateHouseholdRequest) -> HouseholdView:
        v = Validator()
        household_id = v.ident("household_id", req.household_id)
        year = rules.validate_year(v, req.year, self._this_year(), required=True)
        stars, _ = self.stars(principal.district_id)
        decisions = rules.validate_decisions(v, req.decisions, stars)
        v.check()
        household, unit = self._load(principal, household_id)
        rules.require_keeper(principal, unit.path)
        if req.expected_version and req.expected_version != household.version:
            raise FailedPrecondition(f"这一户的评星已被他人修改（版本 {household.version}），请刷新后再试")
        ratings, changed = rules.rate(household.ratings, year, decisions, principal.subject,
                                      principal.display_name, clock.now_as_stored())
        if not changed:
            return self.view(household, unit, year, stars)
        rating = rules.rating_of(ratings, year, stars)
        event = self.events.new(
            events_pb2.HouseholdRated(household_id=household.id, unit=unit_ref(unit), year=year,
                                      changed=[_star_in_event(s) for s in changed], stars_awarded=rating.awarded,
                                      stars_total=rating.total, all_stars=rating.all_stars),
            district_id=household.district_id, aggregate_type="household", aggregate_id=household.id,
            version=household.version + 1, actor_id=principal.subject)
        saved = Household.change({"_id": household.id, "version": household.version}, {"$set": {"ratings": ratings}},
                                 [event])
        if saved is None:
            raise Aborted("这一户的评星刚被他人修改，请刷新后再试")
        return self.view(saved, unit, year, stars)


def _star_in_event(star: dict) -> pb.StarAward:
    """A changed star as the event carries it: no note and no name (free text stays in the
    household; consumers that show it read the household)."""
    return pb.StarAward(star=star["star"], awarded=star["awarded"], decided_by=star["decided_by"],
                        decided_at=to_timestamp(star["decided_at"]))
