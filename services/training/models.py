"""What training stores.

Aggregates (with their in-document outbox): courses (every revision kept inside), trainers,
sessions (the roster lives inside the session: one map entry per trainee, so capacity, waitlist
and promotion are single-document conditional updates), certifications, historical completions,
trainee profiles (the core flag) and the district's rotation policy.

Projections of training's own events (no outbox): completions and per-volunteer summaries.
Units, volunteers and teams come from registration (services.common.readmodels).
"""

from __future__ import annotations

from mongoengine import BooleanField, DateTimeField, DictField, Document, IntField, ListField, StringField

from services.common.documents import Aggregate


class Course(Aggregate):
    meta = {
        "collection": "courses",
        "indexes": [
            {"fields": ["district_id", "status", "level"]},
            {"fields": ["district_id", "owner_path"]},
        ],
    }
    owner_unit = DictField(required=True)  # unit_id, level, name, path
    owner_path = ListField(StringField())
    status = IntField(required=True)
    retire_reason = StringField(default="")
    level = IntField(required=True)      # of the latest revision, for filtering
    category = IntField(required=True)
    latest_revision = IntField(required=True)
    revisions = ListField(DictField())   # every revision's content, oldest first
    created_at = DateTimeField(required=True)


class Trainer(Aggregate):
    meta = {
        "collection": "trainers",
        "indexes": [
            {"fields": ["district_id", "served_scope"]},
            {"fields": ["district_id", "served_unit_ids"]},
            {"fields": ["district_id", "volunteer_id"]},
        ],
    }
    name = StringField(required=True)
    title = StringField(default="")
    volunteer_id = StringField(default="")
    specialties = ListField(IntField())
    served_unit_ids = ListField(StringField())
    served_units = ListField(DictField())
    served_scope = ListField(StringField())  # every unit id on the served units' paths
    owner_unit = DictField(required=True)
    owner_path = ListField(StringField())
    availability = DictField()
    bio = StringField(default="")
    active = BooleanField(default=True)
    created_at = DateTimeField(required=True)


class Session(Aggregate):
    meta = {
        "collection": "sessions",
        "indexes": [
            {"fields": ["district_id", "unit_path"]},
            {"fields": ["district_id", "roster"]},
            {"fields": ["district_id", "course_id"]},
            {"fields": ["district_id", "trainer_id"]},
            {"fields": ["status", "closes_at"]},
        ],
    }
    course_id = StringField(required=True)
    course = DictField(required=True)  # the course revision as scheduled (title, minutes, quiz, certification …)
    unit = DictField(required=True)
    unit_id = StringField(required=True)
    unit_path = ListField(StringField())
    trainer_id = StringField(required=True)
    trainer_name = StringField(required=True)
    mode = IntField(required=True)
    location = StringField(default="")
    online_url = StringField(default="")
    starts_at = DateTimeField(required=True)
    ends_at = DateTimeField(required=True)
    closes_at = DateTimeField(required=True)
    capacity = IntField(required=True)
    seats_left = IntField(required=True)
    waitlist = ListField(StringField())  # volunteer ids in promotion order
    waitlist_count = IntField(default=0)
    trainees = DictField()  # volunteer id -> {state, v (per-trainee version), enrolled_at, …}
    roster = ListField(StringField())  # every volunteer ever on the session, for "my sessions"
    attended_count = IntField(default=0)
    passed_count = IntField(default=0)
    rating_sum = IntField(default=0)
    rating_count = IntField(default=0)
    status = IntField(required=True)
    cancel_reason = StringField(default="")
    created_by = StringField(default="")
    created_at = DateTimeField(required=True)
    closed_at = DateTimeField()


class Certification(Aggregate):
    meta = {
        "collection": "certifications",
        "indexes": [
            {"fields": ["district_id", "volunteer_id"]},
            {"fields": ["district_id", "code"]},
            {"fields": ["status", "expires_at"]},
        ],
    }
    volunteer_id = StringField(required=True)
    code = StringField(required=True)
    name = StringField(required=True)
    course_id = StringField(required=True)
    session_id = StringField(required=True)
    granted_by = DictField(required=True)
    granted_at = DateTimeField(required=True)
    expires_at = DateTimeField()
    status = IntField(required=True)
    revoke_reason = StringField(default="")
    ended_at = DateTimeField()


class HistoricalCompletion(Aggregate):
    """补录: a completion an admin recorded for training that happened outside a session here."""

    meta = {"collection": "historical_completions", "indexes": [{"fields": ["district_id", "volunteer_id"]}]}
    volunteer_id = StringField(required=True)
    course_id = StringField(required=True)
    course_revision = IntField(required=True)
    completed_at = DateTimeField(required=True)
    reason = StringField(required=True)
    recorded_by = DictField(required=True)
    recorded_by_principal = StringField(required=True)
    created_at = DateTimeField(required=True)


class TraineeProfile(Aggregate):
    """Training's own facts about a volunteer (id = volunteer id): the core flag set by an admin."""

    meta = {"collection": "trainee_profiles", "indexes": [{"fields": ["district_id", "core"]}]}
    core = BooleanField(required=True)
    reason = StringField(default="")
    changed_by = StringField(default="")
    changed_at = DateTimeField()


class RotationPolicy(Aggregate):
    """One per district (id = district id)."""

    meta = {"collection": "rotation_policies"}
    general_cycle_years = IntField(required=True)
    core_cycle_years = IntField(required=True)
    notice_days = IntField(required=True)
    effective_from = StringField(required=True)  # YYYY-MM-DD
    updated_at = DateTimeField(required=True)
    updated_by = StringField(default="")


class Completion(Document):
    """Projection of CourseCompleted (id = completion id): one volunteer's finished course."""

    meta = {"collection": "completions", "indexes": [{"fields": ["district_id", "volunteer_id"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    volunteer_id = StringField(required=True)
    course_id = StringField(required=True)
    course_revision = IntField(required=True)
    course_title = StringField(required=True)
    level = IntField(required=True)
    minutes = IntField(required=True)
    score = IntField(default=0)
    completed_at = DateTimeField(required=True)
    session_id = StringField(default="")
    recorded_by = DictField()
    historical = BooleanField(default=False)
    reason = StringField(default="")


class TrainingSummary(Document):
    """Per volunteer (id = volunteer id): the latest completions rotation plans look at."""

    meta = {"collection": "training_summaries", "indexes": [{"fields": ["district_id"]}]}
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    last_completed_at = DateTimeField()
    last_core_completed_at = DateTimeField()


AGGREGATES = (Course, Trainer, Session, Certification, HistoricalCompletion, TraineeProfile, RotationPolicy)
ALL_MODELS = AGGREGATES + (Completion, TrainingSummary)
