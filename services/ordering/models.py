"""What ordering stores: the menu, orders, activities, activity plans and their comments,
projects, competitions and volunteers' credit incidents (aggregates with an in-document outbox), the district order policies, and read models
of other services' data (readmodels.py). The lists of orders and activities read index entries
kept beside them (index.py), not these documents.

Every index leads with `district_id`, except the schedulers' due-day indexes: the jobs look
across districts, and those fields exist only while something is due.
"""

from __future__ import annotations

from mongoengine import (
    BinaryField, BooleanField, DateTimeField, DictField, Document, EmbeddedDocument, EmbeddedDocumentField, IntField, ListField, MapField,
    StringField,
)

from services.common.documents import Aggregate


class UnitRefDoc(EmbeddedDocument):
    """A unit as ordering keeps it on its documents (a copy of wenming.common.v1.UnitRef)."""

    unit_id = StringField(required=True)
    level = IntField(required=True)
    name = StringField(default="")
    path = ListField(StringField())  # center … unit_id


class MenuItem(Aggregate):
    meta = {
        "collection": "menu_items",
        "indexes": [
            {"fields": ["district_id", "owner.unit_id", "category"]},
        ],
    }
    name = StringField(required=True, max_length=60)
    description = StringField(default="", max_length=500)
    category = IntField(required=True)
    handling_level = IntField(required=True)
    owner = EmbeddedDocumentField(UnitRefDoc, required=True)
    required_skills = ListField(IntField())
    required_certifications = ListField(StringField())
    expected_minutes = IntField(required=True, min_value=1)
    points_rule = StringField(default="")
    district_item_code = StringField(default="")  # an item of the district's taxonomy, or ""
    retired = BooleanField(default=False)
    retired_reason = StringField(default="")
    published_by = StringField(required=True)
    published_at = DateTimeField(required=True)
    retired_at = DateTimeField()


class DistrictTaxonomy(Aggregate):
    """A district's own menu taxonomy (taxonomy_rules.py), `_id` = the district; absent: the
    national default. `categories` empty: the district went back to the default."""

    meta = {"collection": "district_taxonomies"}
    categories = ListField(DictField())  # taxonomy_rules.to_document
    updated_by = StringField(required=True)
    updated_at = DateTimeField(required=True)


class Transition(EmbeddedDocument):
    """One step of the order's trail: who moved it from where to where, when and why."""

    from_status = IntField(default=0)
    to_status = IntField(required=True)
    event_type = StringField(required=True)
    actor_id = StringField(default="")
    actor_role = IntField(default=0)
    unit_id = StringField(default="")      # where the order was
    to_unit_id = StringField()             # where the step sent it (报单, 分单); absent when it stayed
    reason = StringField(default="")
    automatic = BooleanField(default=False)
    at = DateTimeField(required=True)


class ServiceSession(EmbeddedDocument):
    checked_in_at = DateTimeField(required=True)
    checked_out_at = DateTimeField()
    measured_minutes = IntField(default=0)


class HoursEntry(EmbeddedDocument):
    volunteer_id = StringField(required=True)
    minutes = IntField(required=True)
    source = IntField(required=True)  # wenming.common.v1.HoursSource


class Order(Aggregate):
    meta = {
        "collection": "orders",
        "indexes": [
            # the schedulers find what is due by its day (orders.recent_days); the lists read
            # the order index (index.py)
            {"fields": ["ack_due_day"]},
            {"fields": ["warn_day"]},
            {"fields": ["close_due_day"]},
        ],
    }
    schema_version = IntField(default=1)       # orders.SCHEMA_VERSION; older ones are migrated at start
    item_id = StringField(default="")          # empty for a wish (微心愿)
    item_name = StringField(required=True)     # the item's name, or the wish itself
    wish = BooleanField(default=False)
    category = IntField(required=True)
    handling_level = IntField(required=True)
    required_skills = ListField(IntField())
    required_certifications = ListField(StringField())
    points_rule = StringField(default="")
    status = IntField(required=True)
    origin = EmbeddedDocumentField(UnitRefDoc, required=True)   # the resident's courtyard
    current = EmbeddedDocumentField(UnitRefDoc, required=True)  # the unit that must act now
    routed_past = ListField(EmbeddedDocumentField(UnitRefDoc))
    resident_id = StringField(required=True)
    placed_on_behalf = BooleanField(default=False)
    placed_by = StringField(required=True)
    note = StringField(default="")
    address_enc = BinaryField()                # AES-GCM (kit PiiVault), never in events or logs
    contact_enc = BinaryField()
    contact_masked = StringField(default="")
    urgent = BooleanField(default=False)
    wanted_at = DateTimeField()
    planned_minutes = IntField(required=True)
    arrived_at = DateTimeField(required=True)  # when the order reached the current unit
    ack_due_at = DateTimeField()               # set only while the current unit has to acknowledge
    warn_at = DateTimeField()                  # when to remind it (a fifth of its time left); unset once done
    ack_due_day = IntField()                   # the China day of each (orders.due_days), for the schedulers
    warn_day = IntField()
    close_due_day = IntField()
    sla_breaches = IntField(default=0)
    overdue_flagged = BooleanField(default=False)  # the center's deadline passed (nothing above it)
    team_id = StringField(default="")
    offered_ids = ListField(StringField())     # dispatched or claimed, not declined; ⊇ volunteer_ids
    volunteer_ids = ListField(StringField())   # accepted or claimed
    sessions = MapField(EmbeddedDocumentField(ServiceSession))  # volunteer id -> time on site
    report = StringField(default="")
    photo_asset_ids = ListField(StringField())
    hours = ListField(EmbeddedDocumentField(HoursEntry))
    hours_recorded_by = EmbeddedDocumentField(UnitRefDoc)
    rating = IntField(default=0)
    comment = StringField(default="")
    closing_reason = StringField(default="")
    close_due_at = DateTimeField()             # set only while an unrated order waits for its rating
    placed_at = DateTimeField(required=True)
    acknowledged_at = DateTimeField()
    dispatched_at = DateTimeField()
    accepted_at = DateTimeField()
    completed_at = DateTimeField()
    hours_confirmed_at = DateTimeField()
    rated_at = DateTimeField()
    closed_at = DateTimeField()
    queue_key = StringField(required=True)     # sort key of the unit queue (orders.queue_key)
    trail = ListField(EmbeddedDocumentField(Transition))


class ParticipantDoc(EmbeddedDocument):
    role = IntField(required=True)  # wenming.ordering.v1.ParticipantRole
    signed_up_at = DateTimeField(required=True)
    attended_at = DateTimeField()
    rating = IntField(default=0)
    comment = StringField(default="")


class Activity(Aggregate):
    meta = {"collection": "activities"}  # the calendar reads the activity index (index.py)
    title = StringField(required=True, max_length=60)
    description = StringField(default="", max_length=2000)
    category = IntField(required=True)
    district_item_code = StringField(default="")  # an item of the district's taxonomy, or ""
    unit = EmbeddedDocumentField(UnitRefDoc, required=True)
    location = StringField(default="", max_length=100)
    starts_at = DateTimeField(required=True)
    ends_at = DateTimeField(required=True)
    volunteer_capacity = IntField(required=True)
    resident_capacity = IntField(required=True)
    volunteer_count = IntField(default=0)
    resident_count = IntField(default=0)
    participants = MapField(EmbeddedDocumentField(ParticipantDoc))  # participant id -> participation
    status = IntField(required=True)
    cancel_reason = StringField(default="")
    hours = ListField(EmbeddedDocumentField(HoursEntry))
    planned_by = StringField(required=True)
    planned_at = DateTimeField(required=True)


class OrderPolicy(Document):
    """A district's acknowledgement SLAs per level (minutes) and rating window; absent: defaults."""

    meta = {"collection": "order_policies"}
    id = StringField(primary_key=True)  # the district id
    acknowledge_minutes = MapField(IntField())  # UnitLevel name -> minutes
    rating_window_days = IntField(required=True)
    updated_by = StringField(required=True)
    updated_at = DateTimeField(required=True)


class ProjectReviewDoc(EmbeddedDocument):
    from_status = IntField(required=True)
    to_status = IntField(required=True)
    reviewer_id = StringField(required=True)
    reviewer_unit = EmbeddedDocumentField(UnitRefDoc, required=True)
    comment = StringField(default="")
    at = DateTimeField(required=True)


class ProjectProgressDoc(EmbeddedDocument):
    period = StringField(required=True)  # YYYY-MM
    summary = StringField(required=True)
    reported_by = StringField(required=True)
    reported_at = DateTimeField(required=True)


class Project(Aggregate):
    """A volunteer service project (志愿服务项目). `in0`…`in3` are listing keys of the units on its
    path (`in<depth>` = district|unit), so a unit's subtree is one indexed key (projects.py)."""

    meta = {
        "collection": "projects",
        "indexes": [{"fields": [f"in{depth}"]} for depth in range(4)]
        + [{"fields": ["name_key"], "unique": True}],
    }
    name = StringField(required=True, max_length=40)
    name_key = StringField(required=True)  # district|unit|name: a unit names each project once
    category = IntField(required=True)
    target_group = StringField(required=True)
    plan = StringField(required=True)
    unit = EmbeddedDocumentField(UnitRefDoc, required=True)
    team_id = StringField(default="")
    team_name = StringField(default="")
    budget_source = StringField(required=True)
    status = IntField(required=True)
    proposed_by = StringField(required=True)
    proposed_at = DateTimeField(required=True)
    reviews = ListField(EmbeddedDocumentField(ProjectReviewDoc))
    progress = ListField(EmbeddedDocumentField(ProjectProgressDoc))
    activity_ids = ListField(StringField())
    order_ids = ListField(StringField())
    in0 = StringField()
    in1 = StringField()
    in2 = StringField()
    in3 = StringField()


class BrandSlot(Document):
    """The one brand project (品牌项目) a unit may have: `_id` is the unit's listing key, so two
    designations racing for one unit collide on the unique `_id` (projects.BrandSlots)."""

    meta = {"collection": "project_brand_slots"}
    id = StringField(primary_key=True)
    project_id = StringField(required=True)


class CompetitionScoreDoc(EmbeddedDocument):
    project_id = StringField(required=True)
    reviewer_id = StringField(required=True)
    score = IntField(required=True)
    comment = StringField(default="")


class CompetitionEntryDoc(EmbeddedDocument):
    project_id = StringField(required=True)
    project_name = StringField(required=True)
    unit = EmbeddedDocumentField(UnitRefDoc, required=True)
    proposed_by = StringField(required=True)  # a proposer never scores their own project


class Competition(Aggregate):
    """A project competition (项目大赛) round; scores are keyed `<reviewer>:<project>`, so the
    guarded write that adds one refuses a second by the same reviewer for the same project."""

    meta = {"collection": "competitions"}
    name = StringField(required=True, max_length=60)
    unit = EmbeddedDocumentField(UnitRefDoc, required=True)
    status = IntField(required=True)
    entries = ListField(EmbeddedDocumentField(CompetitionEntryDoc))
    scores = MapField(EmbeddedDocumentField(CompetitionScoreDoc))
    created_by = StringField(required=True)
    created_at = DateTimeField(required=True)


class CreditIncident(Aggregate):
    """A no-show (爽约) or complaint (投诉) about a volunteer, and its appeal (credit.py). `scope`
    holds the unit ids whose admins may see it and decide its appeal: the path of the unit where
    it happened and of every unit the volunteer served when it was recorded."""

    meta = {
        "collection": "credit_incidents",
        "indexes": [
            {"fields": ["dedup_key"], "unique": True},
            {"fields": ["volunteer_key"]},
            {"fields": ["district_id", "scope"]},
        ],
    }
    dedup_key = StringField(required=True)      # the rule's source and volunteer, or the admin's idempotency key
    volunteer_key = StringField(required=True)  # district|volunteer: a volunteer's incidents
    volunteer_id = StringField(required=True)
    kind = IntField(required=True)              # wenming.ordering.v1.CreditIncidentKind
    status = IntField(required=True)            # wenming.ordering.v1.CreditIncidentStatus
    reason = StringField(required=True)
    automatic = BooleanField(default=False)
    order_id = StringField(default="")
    activity_id = StringField(default="")
    unit = EmbeddedDocumentField(UnitRefDoc, required=True)
    scope = ListField(StringField())
    recorded_by = StringField(default="")
    occurred_at = DateTimeField(required=True)
    recorded_at = DateTimeField(required=True)
    appeal_reason = StringField(default="")
    appealed_at = DateTimeField()
    decided_by = StringField(default="")
    decision_reason = StringField(default="")
    decided_at = DateTimeField()


class ActivityPlanEntryDoc(EmbeddedDocument):
    entry_id = StringField(required=True)
    title = StringField(required=True)
    when = StringField(required=True)  # a day, an ISO week or a month (plan_rules.when_span)
    category = IntField(required=True)
    unit = EmbeddedDocumentField(UnitRefDoc, required=True)  # the unit holding it
    activity_id = StringField(default="")
    note = StringField(default="")


class ActivityPlan(Aggregate):
    """A unit's activity plan for a year, month or week (plans.py): `entries` are the revision
    being drafted or consulted on, `published_entries` the calendar. `in0`…`in3` are listing keys
    of the units on its path (projects.subtree_keys), `plan_key` makes one plan per unit and period."""

    meta = {
        "collection": "activity_plans",
        "indexes": [{"fields": [f"in{depth}", "period_key"]} for depth in range(4)]
        + [{"fields": ["plan_key"], "unique": True}],
    }
    plan_key = StringField(required=True)  # district|unit|period_key
    unit = EmbeddedDocumentField(UnitRefDoc, required=True)
    period = IntField(required=True)       # wenming.ordering.v1.ActivityPlanPeriod
    period_key = StringField(required=True)
    title = StringField(required=True)
    status = IntField(required=True)       # wenming.ordering.v1.ActivityPlanStatus
    revision = IntField(default=1)
    entries = ListField(EmbeddedDocumentField(ActivityPlanEntryDoc))
    published_revision = IntField(default=0)
    published_entries = ListField(EmbeddedDocumentField(ActivityPlanEntryDoc))
    consultation_opened_at = DateTimeField()
    consultation_deadline = DateTimeField()
    published_at = DateTimeField()
    created_by = StringField(required=True)
    created_at = DateTimeField(required=True)
    in0 = StringField()
    in1 = StringField()
    in2 = StringField()
    in3 = StringField()


class ActivityPlanComment(Aggregate):
    """A resident's or volunteer's comment on a plan open for comments (征求意见); its `_id` comes
    from the commenter's idempotency key (ids.keyed_id), so a retry finds it."""

    meta = {"collection": "activity_plan_comments", "indexes": [{"fields": ["plan_id"]}]}
    plan_id = StringField(required=True)
    revision = IntField(required=True)
    text = StringField(required=True)
    author_id = StringField(required=True)
    author_role = IntField(required=True)
    author_unit_name = StringField(default="")
    created_at = DateTimeField(required=True)


AGGREGATES = (MenuItem, Order, Activity, Project, Competition, CreditIncident, DistrictTaxonomy, ActivityPlan,
              ActivityPlanComment)
ALL_MODELS = AGGREGATES + (OrderPolicy, BrandSlot)
