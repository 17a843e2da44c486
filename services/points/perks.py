"""礼遇 and 爱心商家: partner merchants registered by unit admins, the district's 礼遇 rules by star
level (set by its center admins), and a volunteer's 我的礼遇. The rules are perk_rules.py; the
store charges the discounted price (store.py). Each merchant and the district's rule set is one
document carrying its events (MerchantRegistered, MerchantStatusChanged, PerkRulesChanged).
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import Counter
from pymongo.errors import DuplicateKeyError

from services.common.auth import Principal, Role
from services.common.cache import ReadCache
from services.common.clock import clock
from services.common.errors import Aborted, FailedPrecondition, InvalidArgument, PermissionDenied
from services.common.events import EventSource, to_timestamp
from services.common.ids import decode_page_token, encode_page_token, new_id
from services.common.listing import key
from services.common.outbox import insert_once_with_events, insert_with_events, update_with_events
from services.common.pii import PiiVault, mask_phone
from services.common.validation import Validator
from services.common.readmodels import unit_ref_msg
from wenming.points.v1 import events_pb2
from wenming.points.v1 import points_pb2 as pb

from . import perk_rules
from .directory import Directory
from .ledger import Ledger
from .models import Merchant, PerkRulesDocument
from .rulebook import RuleBook

MERCHANT_PHONE_FIELD = "merchant.contact_phone"  # encryption context
M = pb.MerchantStatus
# a change made through another process shows within this long; through this one at once
RULES_CACHE_SECONDS = 5.0

MERCHANTS_REGISTERED = Counter("points_merchants_registered_total", "爱心商家 registered by admins")
MERCHANT_STATUS_CHANGES = Counter("points_merchant_status_changes_total", "爱心商家 suspended or made active again",
                                  ["merchant_status"])
PERK_RULES_SET = Counter("points_perk_rules_set_total", "Times a district's 礼遇 rules were set")


class Perks:
    def __init__(self, directory: Directory, events: EventSource, vault: PiiVault, ledger: Ledger,
                 point_rules: RuleBook):
        self.directory = directory
        self.events = events
        self.vault = vault
        self.ledger = ledger
        self.point_rules = point_rules
        self.merchants = Merchant.collection()
        self.rule_sets = PerkRulesDocument.collection()
        # read for every store listing and redemption
        self._rules = ReadCache("perk-rules", self._load_rules, max_age_seconds=RULES_CACHE_SECONDS)

    # ---- merchants ----

    def register_merchant(self, principal: Principal, req: pb.RegisterMerchantRequest) -> dict:
        v = Validator()
        unit_id = v.ident("unit_id", req.unit_id, required=False) or principal.unit_id
        name = v.text("name", req.name, min_len=2, max_len=40)
        address = v.text("address", req.address, min_len=2, max_len=100)
        contact_name = v.text("contact_name", req.contact_name, max_len=20)
        phone = v.mobile("contact_phone", req.contact_phone)
        idempotency_key = v.idempotency_key(req.idempotency_key)
        v.check()
        if principal.role != Role.ROLE_UNIT_ADMIN:
            raise PermissionDenied("爱心商家由单位管理员登记")
        unit = self.directory.managed_unit(principal, unit_id, "registering unit")
        district = principal.district_id
        request_key = key(district, principal.subject, idempotency_key)
        asked = {"unit_id": unit["_id"], "name": name, "address": address, "contact_name": contact_name,
                 "contact_phone_masked": mask_phone(phone)}

        def new_merchant() -> tuple[dict, list[dict]]:
            document = {"_id": new_id("mer"), "district_id": district, "request_key": request_key, **asked,
                        "unit_path": list(unit["path"]), "unit_name": unit["name"], "unit_level": unit["level"],
                        "contact_phone_enc": self.vault.encrypt(phone, district_id=district,
                                                                field=MERCHANT_PHONE_FIELD),
                        "status": M.MERCHANT_STATUS_ACTIVE, "status_reason": "", "registered_by": principal.subject,
                        "registered_at": clock.now_as_stored()}
            event = self.events.new(events_pb2.MerchantRegistered(merchant_id=document["_id"], unit_id=unit["_id"],
                                                                  name=name, status=M.MERCHANT_STATUS_ACTIVE),
                                    district_id=district, aggregate_type="merchant", aggregate_id=document["_id"],
                                    version=1, actor_id=principal.subject)
            return document, [event]

        stored, inserted = insert_once_with_events(self.merchants, {"request_key": request_key}, new_merchant)
        if not inserted:
            return self._replayed(stored, asked, phone)
        MERCHANTS_REGISTERED.inc()
        return stored

    def _replayed(self, existing: dict, asked: dict, phone: str) -> dict:
        """The first registration with the key, when a retry asks for the same merchant (the same
        phone, not only the same mask)."""
        same = all(existing.get(name) == value for name, value in asked.items()) and phone == self.vault.decrypt(
            bytes(existing["contact_phone_enc"]), district_id=existing["district_id"], field=MERCHANT_PHONE_FIELD)
        if not same:
            raise InvalidArgument.field("idempotency_key", "was already used for a different merchant")
        return existing

    def set_merchant_status(self, principal: Principal, req: pb.SetMerchantStatusRequest) -> dict:
        v = Validator()
        merchant_id = v.ident("merchant_id", req.merchant_id)
        status = v.enum("status", req.status, pb.MerchantStatus)
        reason = v.text("reason", req.reason, min_len=2, max_len=200)
        if req.expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        current = Merchant.raw_in_district(principal.district_id, merchant_id, "merchant")
        if principal.role != Role.ROLE_UNIT_ADMIN or not principal.manages(current["unit_path"]):
            raise PermissionDenied("爱心商家的状态由登记单位（或其上级）的管理员设置")
        if current["status"] == status:
            raise FailedPrecondition("该商家已是此状态")
        version = req.expected_version or current["version"]
        event = self.events.new(events_pb2.MerchantStatusChanged(merchant_id=merchant_id, reason=reason,
                                                                 status=req.status),
                                district_id=principal.district_id, aggregate_type="merchant", aggregate_id=merchant_id,
                                version=version + 1, actor_id=principal.subject)
        updated = update_with_events(self.merchants, {"_id": merchant_id, "version": version},
                                     {"$set": {"status": status, "status_reason": reason}}, [event])
        if updated is None:
            raise Aborted("该商家刚被修改，请刷新后重试")
        MERCHANT_STATUS_CHANGES.labels(M.Name(status)).inc()
        return updated

    def list_merchants(self, principal: Principal, req: pb.ListMerchantsRequest) -> tuple[list[dict], str]:
        """The merchants a unit's admins work with: registered in its subtree or by a unit above it."""
        v = Validator()
        unit_id = v.unit_or_own("unit_id", req.unit_id, principal.unit_id)
        size = v.page_size("page.page_size", req.page.page_size)
        after = decode_page_token(req.page.page_token)
        v.check()
        unit = self.directory.managed_unit(principal, unit_id, "unit")
        query: dict = {"district_id": principal.district_id,
                       "$or": [{"unit_path": unit["_id"]}, {"unit_id": {"$in": list(unit["path"])}}]}
        if after:
            query["_id"] = {"$gt": after}
        found = list(self.merchants.find(query, {"outbox": 0}).sort("_id", 1).limit(size + 1))
        token = encode_page_token(found[size - 1]["_id"]) if len(found) > size else ""
        return found[:size], token

    def merchant(self, district_id: str, merchant_id: str) -> dict | None:
        return self.merchants.find_one({"_id": merchant_id, "district_id": district_id},
                                       {"outbox": 0, "contact_phone_enc": 0})

    def merchant_names(self, district_id: str, ids: Iterable[str]) -> dict[str, str]:
        wanted = sorted({i for i in ids if i})
        if not wanted:
            return {}
        return {m["_id"]: m["name"] for m in self.merchants.find({"_id": {"$in": wanted}, "district_id": district_id},
                                                                  {"name": 1})}

    def contact_phone(self, principal: Principal, merchant: dict) -> str:
        """The full number for admins who manage the registering unit (they call the merchant); "" otherwise."""
        if principal.role != Role.ROLE_UNIT_ADMIN or not principal.manages(merchant["unit_path"]):
            return ""
        return self.vault.decrypt(bytes(merchant["contact_phone_enc"]), district_id=merchant["district_id"],
                                  field=MERCHANT_PHONE_FIELD)

    # ---- 礼遇 rules ----

    def for_district(self, district_id: str) -> tuple[list[perk_rules.PerkRule], dict]:
        """The district's rules and the stored document's metadata (version, who, when)."""
        return self._rules.get(district_id)

    def _load_rules(self, district_id: str) -> tuple[list[perk_rules.PerkRule], dict]:
        doc = self.rule_sets.find_one({"_id": district_id}, {"outbox": 0}) or {"rules": [], "version": 0}
        return perk_rules.from_documents(doc["rules"]), doc

    def rules_msg(self, district_id: str) -> pb.PerkRules:
        rules, doc = self.for_district(district_id)
        names = self.merchant_names(district_id, (r.merchant_id for r in rules))
        return pb.PerkRules(rules=[perk_rules.rule_msg(r, names) for r in rules], version=doc["version"],
                            updated_at=to_timestamp(doc.get("updated_at")), updated_by=doc.get("updated_by", ""))

    def set_rules(self, principal: Principal, req: pb.SetPerkRulesRequest) -> pb.PerkRules:
        v = Validator()
        rules = perk_rules.validate(v, req.rules)
        if req.expected_version < 0:
            v.fail("expected_version", "must not be negative")
        v.check()
        if not principal.is_center_admin:
            raise PermissionDenied("礼遇规则由区级（中心）管理员设置")
        district = principal.district_id
        known = self.merchant_names(district, (r.merchant_id for r in rules))
        for n, rule in enumerate(rules):
            if rule.merchant_id and rule.merchant_id not in known:
                raise InvalidArgument.field(f"rules[{n}].merchant_id", "is not a merchant of this district")
        version = req.expected_version + 1
        now = clock.now_as_stored()
        changes = {"rules": perk_rules.to_documents(rules), "updated_at": now, "updated_by": principal.subject}
        message = pb.PerkRules(rules=[perk_rules.rule_msg(r, known) for r in rules], version=version,
                               updated_at=to_timestamp(now), updated_by=principal.subject)
        event = self.events.new(events_pb2.PerkRulesChanged(rules=message), district_id=district,
                                aggregate_type="perk_rules", aggregate_id=district, version=version,
                                actor_id=principal.subject)
        stale = FailedPrecondition("礼遇规则已被他人修改，请刷新后重试")
        if req.expected_version == 0:
            try:
                insert_with_events(self.rule_sets, {"_id": district, "district_id": district, **changes}, [event])
            except DuplicateKeyError:
                raise stale from None
        elif update_with_events(self.rule_sets, {"_id": district, "version": req.expected_version},
                                {"$set": changes}, [event]) is None:
            raise stale
        self._rules.forget(district)
        PERK_RULES_SET.inc()
        return message

    # ---- what a caller gets ----

    def star_level(self, principal: Principal) -> int:
        """The caller's stars: volunteers have them, everyone else counts as 0."""
        if principal.role != Role.ROLE_VOLUNTEER:
            return 0
        account = self.ledger.account_view(principal.district_id, principal.subject, pb.ACCOUNT_KIND_VOLUNTEER)
        return int(account.get("star_level", 0))

    def my_perks(self, principal: Principal, req: pb.GetMyPerksRequest) -> pb.GetMyPerksResponse:
        v = Validator()
        volunteer_id = v.ident("volunteer_id", req.volunteer_id, required=False)
        v.check()
        volunteer_id = self.directory.volunteer_asked_for(principal, volunteer_id, "礼遇")
        district = principal.district_id
        account = self.ledger.account_view(district, volunteer_id, pb.ACCOUNT_KIND_VOLUNTEER)
        points = self.point_rules.for_district(district)
        level = int(account.get("star_level", 0))
        rules, _ = self.for_district(district)
        names = self.merchant_names(district, (r.merchant_id for r in rules))
        upcoming = perk_rules.next_star(level)
        counted = points.counted_minutes(account["verified_minutes"], account["manual_minutes"],
                                         account["training_minutes"])
        return pb.GetMyPerksResponse(
            star_level=level, current=[perk_rules.rule_msg(r, names) for r in perk_rules.applying(rules, level)],
            next_star_level=upcoming,
            next_star_threshold_hours=points.star_threshold_hours[upcoming - 1] if upcoming else 0,
            counted_hours=counted // 60,
            next=[perk_rules.rule_msg(r, names) for r in perk_rules.brought_by(rules, upcoming)])


def merchant_msg(doc: dict, contact_phone: str = "") -> pb.Merchant:
    return pb.Merchant(
        merchant_id=doc["_id"], district_id=doc["district_id"], unit=unit_ref_msg(
            {"_id": doc["unit_id"], "level": doc["unit_level"], "name": doc["unit_name"], "path": doc["unit_path"]}),
        name=doc["name"], address=doc["address"], contact_name=doc["contact_name"],
        contact_phone_masked=doc["contact_phone_masked"], contact_phone=contact_phone, status=doc["status"],
        status_reason=doc["status_reason"], registered_by=doc["registered_by"],
        registered_at=to_timestamp(doc["registered_at"]), version=doc["version"])
