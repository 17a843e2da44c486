"""What registration stores. Personal data is stored encrypted (`*_cipher`), looked up by blind
index (`*_index`) and shown masked (`*_masked`); the plain values never reach the database.

Lists find units and residents by the keys they carry (index.py: `sub<i>`, `n<len>_<i>`, `pm`,
`ph`, `cy`, each `district|…`, indexed on its own) and volunteers by their `volunteer_scopes`
entries; `schema_version` 2 has them (migrations.py upgrades older documents at start)."""

from __future__ import annotations

from mongoengine import (
    BinaryField, BooleanField, DateTimeField, DictField, Document, EmbeddedDocument, EmbeddedDocumentField, IntField,
    ListField, StringField,
)

from services.common.documents import Aggregate
from services.common.pii_rotation import Sealed, Target


KEY_INDEXES = {
    "units": ["sub0", "sub1", "sub2", "sub3"],
    "residents": ["pm", "ph", "cy", "hh", *(f"n{length}_{depth}" for length in (1, 2) for depth in range(4))],
    "households": ["sub0", "sub1", "sub2", "sub3", "uk"],
}


class Unit(Aggregate):
    meta = {
        "collection": "units",
        "indexes": [
            {"fields": ["district_id", "path"]},
            {"fields": ["district_id", "parent_id", "name"], "unique": True},
            *({"fields": [name]} for name in KEY_INDEXES["units"]),
        ],
    }
    name = StringField(required=True, max_length=60)
    level = IntField(required=True)
    parent_id = StringField(default="")  # "" for the center
    path = ListField(StringField())      # center … this unit
    head_name = StringField(default="")
    head_phone_cipher = BinaryField()
    head_phone_masked = StringField(default="")
    # set while a move rewrites the subtree's paths; a restart finishes the job
    moving = IntField(default=0)
    created_at = DateTimeField(required=True)
    seq = IntField()                  # the district's unit number, in creation order (index.py)
    sub0 = StringField()              # list keys (index.unit_keys)
    sub1 = StringField()
    sub2 = StringField()
    sub3 = StringField()
    schema_version = IntField(default=1)


class Availability(EmbeddedDocument):
    weekdays = ListField(IntField())
    periods = ListField(IntField())


class Volunteer(Aggregate):
    meta = {
        "collection": "volunteers",
        "indexes": [
            {"fields": ["district_id", "id_index"], "unique": True},
            {"fields": ["district_id", "phone_index"], "unique": True},
            {"fields": ["district_id", "volunteer_number"], "unique": True},
        ],
    }
    volunteer_number = StringField(required=True)
    name = StringField(required=True, max_length=50)
    id_cipher = BinaryField(required=True)
    id_index = StringField(required=True)
    id_masked = StringField(required=True)
    phone_cipher = BinaryField(required=True)
    phone_index = StringField(required=True)
    phone_masked = StringField(required=True)
    gender = IntField(required=True)
    birth_date = StringField(required=True)  # YYYY-MM-DD
    political_status = IntField(required=True)
    skills = ListField(IntField())
    unit_ids = ListField(StringField(), required=True)
    availability = EmbeddedDocumentField(Availability, default=Availability)
    status = IntField(required=True)
    status_reason = StringField(default="")
    password_hash = StringField(required=True)  # "" for someone imported who has set none yet
    registered_at = DateTimeField(required=True)
    approved_at = DateTimeField()
    approved_by = StringField(default="")


class Team(Aggregate):
    meta = {
        "collection": "teams",
        "indexes": [
            {"fields": ["district_id", "unit_path"]},
            {"fields": ["district_id", "unit_id", "name"], "unique": True},
        ],
    }
    name = StringField(required=True, max_length=60)
    level = IntField(required=True)
    unit_id = StringField(required=True)
    unit_path = ListField(StringField())
    specialty = IntField(default=0)
    leader_id = StringField(required=True)
    member_ids = ListField(StringField())
    created_at = DateTimeField(required=True)


NO_PHONE_PREFIX = "none:"  # Resident.phone_index of a resident without a phone


class Resident(Aggregate):
    meta = {
        "collection": "residents",
        "indexes": [
            {"fields": ["district_id", "phone_index"], "unique": True},
            {"fields": ["district_id", "courtyard_id"]},
            *({"fields": [name]} for name in KEY_INDEXES["residents"]),  # searches (index.resident_keys)
        ],
    }
    name = StringField(required=True, max_length=50)
    # none for a resident without a mobile phone (registered by staff): phone_index is then
    # NO_PHONE_PREFIX + the resident's id, unique as the index needs, and never a blind index
    phone_cipher = BinaryField()
    phone_index = StringField(required=True)
    phone_masked = StringField()
    courtyard_id = StringField(required=True)
    password_hash = StringField(required=True)   # "" for someone imported who has set none yet, or without a phone
    registered_at = DateTimeField(required=True)
    # the household (户) they belong to, at most one (households.py), as `district|household id`
    # (a list key: the members of a page of households are one `$in`); absent or "" for none. Set
    # by one conditional write, so two households can never claim the same resident.
    hh = StringField()
    seq = IntField()                              # the district's resident number, in registration order
    pm = StringField()                            # list keys (index.resident_keys)
    ph = StringField()
    cy = StringField()
    n1_0 = StringField()
    n1_1 = StringField()
    n1_2 = StringField()
    n1_3 = StringField()
    n2_0 = StringField()
    n2_1 = StringField()
    n2_2 = StringField()
    n2_3 = StringField()
    schema_version = IntField(default=1)


class VenueManager(EmbeddedDocument):
    account_id = StringField(required=True)
    display_name = StringField(required=True)


class Venue(Aggregate):
    """A unit's place (阵地). It keeps its unit's id, not its path: a unit that moves takes its
    venues along, and authorization reads the unit's current path (venues.py)."""

    meta = {
        "collection": "venues",
        "indexes": [
            {"fields": ["district_id", "unit_id", "name"], "unique": True},
        ],
    }
    unit_id = StringField(required=True)
    name = StringField(required=True, max_length=60)
    kind = IntField(required=True)
    address = StringField(default="")
    managers = ListField(EmbeddedDocumentField(VenueManager))
    status = IntField(required=True)
    created_at = DateTimeField(required=True)


class OpeningPeriod(EmbeddedDocument):
    weekday = IntField(required=True)
    opens = IntField(required=True)   # minutes after midnight, China time
    closes = IntField(required=True)


class Room(Aggregate):
    """A function room (功能室) of a venue."""

    meta = {
        "collection": "rooms",
        "indexes": [
            {"fields": ["venue_id"]},
            {"fields": ["district_id", "venue_id", "name"], "unique": True},
        ],
    }
    venue_id = StringField(required=True)
    unit_id = StringField(required=True)  # the venue's
    name = StringField(required=True, max_length=60)
    kind = IntField(required=True)
    capacity = IntField(required=True)
    opening_hours = ListField(EmbeddedDocumentField(OpeningPeriod))
    status = IntField(required=True)
    created_at = DateTimeField(required=True)


class Booking(EmbeddedDocument):
    booking_id = StringField(required=True)
    starts_at = DateTimeField(required=True)
    ends_at = DateTimeField(required=True)
    purpose = StringField(required=True)
    activity_id = StringField(default="")
    training_session_id = StringField(default="")
    booked_by = StringField(required=True)
    booked_by_name = StringField(default="")
    booked_at = DateTimeField(required=True)
    status = IntField(required=True)
    cancelled_at = DateTimeField()
    cancelled_by = StringField(default="")
    cancel_reason = StringField(default="")


class RoomDay(Aggregate):
    """One room's bookings of one China day, `_id` "<room id>:<YYYY-MM-DD>": the document that
    makes double booking impossible (bookings.py)."""

    meta = {
        "collection": "room_days",
        "indexes": [{"fields": ["month_key"]}],
    }
    room_id = StringField(required=True)
    venue_id = StringField(required=True)
    unit_id = StringField(required=True)
    day = StringField(required=True)        # YYYY-MM-DD
    month_key = StringField(required=True)  # "<room id>:<YYYY-MM>": a month's usage is one $in
    bookings = ListField(EmbeddedDocumentField(Booking))


class Household(Aggregate):
    """A household (户) at a courtyard or a station (households.py). Its members are the residents
    whose `household_id` names it; its ratings are one entry per year, each the stars decided."""

    meta = {
        "collection": "households",
        "indexes": [*({"fields": [name]} for name in KEY_INDEXES["households"])],  # ListHouseholds
    }
    unit_id = StringField(required=True)
    name = StringField(required=True, max_length=30)
    address_cipher = BinaryField()
    address_masked = StringField(default="")
    # [{"year", "stars": [{"star", "awarded", "note", "decided_by", "decided_by_name", "decided_at"}]}]
    ratings = ListField(DictField())
    created_at = DateTimeField(required=True)
    created_by = StringField(required=True)
    seq = IntField(required=True)     # the district's household number, in creation order
    uk = StringField()                # district|unit: the households of a moved unit (units.py)
    sub0 = StringField()              # list keys (index.unit_keys of the household's unit path)
    sub1 = StringField()
    sub2 = StringField()
    sub3 = StringField()


class HouseholdStarList(Aggregate):
    """The district's stars (十星) when it set its own (id = district id); the defaults otherwise."""

    meta = {"collection": "household_star_lists"}
    stars = ListField(StringField(), required=True)
    updated_at = DateTimeField(required=True)
    updated_by = StringField(default="")


class AdminAccount(Aggregate):
    meta = {
        "collection": "admin_accounts",
        "indexes": [{"fields": ["district_id", "username"], "unique": True}],
    }
    username = StringField(required=True)
    display_name = StringField(required=True)
    unit_id = StringField(required=True)
    password_hash = StringField(required=True)
    created_at = DateTimeField(required=True)


class ServiceAccount(Document):
    meta = {
        "collection": "service_accounts",
        "indexes": [{"fields": ["district_id", "service_name"], "unique": True}],
    }
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    service_name = StringField(required=True)
    password_hash = StringField(required=True)
    created_at = DateTimeField(required=True)


class InspectorAccount(Document):
    """A district inspector (监督员): reads the audit record, changes nothing."""

    meta = {
        "collection": "inspector_accounts",
        "indexes": [{"fields": ["district_id", "username"], "unique": True}],
    }
    id = StringField(primary_key=True)
    district_id = StringField(required=True)
    username = StringField(required=True)
    display_name = StringField(required=True)
    password_hash = StringField(required=True)
    created_at = DateTimeField(required=True)


class Session(Aggregate):
    """A login and the refresh tokens that carry it on (sessions.py). Tokens are kept as hashes.
    Ending it publishes SessionRevoked, so every service refuses its access tokens."""

    meta = {
        "collection": "sessions",
        "indexes": [
            {"fields": ["district_id", "subject"]},
            {"fields": ["expires_at"]},  # the purge job looks across districts
        ],
    }
    kind = IntField(required=True)        # PrincipalKind
    subject = StringField(required=True)  # admin, volunteer or resident id
    token_hash = StringField(required=True)          # SHA-256 of the live token's secret
    spent_hashes = ListField(StringField())          # its predecessors, to notice one used again
    expires_at = DateTimeField(required=True)        # of the live token
    created_at = DateTimeField(required=True)
    refreshed_at = DateTimeField(required=True)
    ended = BooleanField(default=False)              # logged out, or a spent token came back
    ended_at = DateTimeField()
    end_reason = StringField(default="")


class LoginFailures(Document):
    """Failed logins of one account or from one address in the current window (throttle.py);
    in the database, so every replica counts the same."""

    meta = {"collection": "login_failures", "indexes": [{"fields": ["updated_at"]}]}
    id = StringField(primary_key=True)  # "account:<district>:<key>" or "address:<ip>"
    failures = IntField(default=0)
    window_start = DateTimeField(required=True)
    locked_until = DateTimeField()
    updated_at = DateTimeField(required=True)


class AuditRecord(Document):
    """One admin action of any service (wenming.audit.v1.AdminAction), stored once per action."""

    meta = {
        "collection": "audit_records",
        "indexes": [
            {"fields": ["district_id", "-id"]},
            {"fields": ["district_id", "actor_id", "-id"]},
            {"fields": ["district_id", "object_ids", "-id"]},
        ],
    }
    id = StringField(primary_key=True)  # the action id: a ULID, so newest first is by id
    district_id = StringField(required=True)
    actor_id = StringField(required=True)
    actor_role = IntField(required=True)
    actor_unit_id = StringField(default="")
    service = StringField(required=True)
    method = StringField(required=True)
    object_ids = ListField(StringField())
    occurred_at = DateTimeField(required=True)
    client_address = StringField(default="")
    peer = StringField(default="")
    trace_id = StringField(default="")
    code = StringField(required=True)
    rows = IntField(default=0)  # an export's rows, once its file was written


class Counter(Document):
    """Per-district sequences (volunteer numbers), advanced atomically with $inc."""

    meta = {"collection": "counters"}
    id = StringField(primary_key=True)
    seq = IntField(default=0)


# the rows of unfinished spreadsheet imports (import_jobs.py), encrypted under IMPORT_ROWS_FIELD
IMPORT_CHUNKS = "import_chunks"
IMPORT_ROWS_FIELD = "import.rows"

AGGREGATES = (Unit, Volunteer, Team, Resident, AdminAccount, Session, Venue, Room, RoomDay, Household,
              HouseholdStarList)
ALL_MODELS = AGGREGATES + (ServiceAccount, InspectorAccount, LoginFailures, AuditRecord, Counter)


def personal_data() -> list[Target]:
    """Where registration keeps personal data, for the key rotation job (pii_rotation.py)."""
    return [
        Target(Unit.collection(), [Sealed("head_phone_cipher", "unit.head_phone")]),
        Target(Volunteer.collection(), [Sealed("id_cipher", "volunteer.national_id", "id_index", "national_id"),
                                        Sealed("phone_cipher", "volunteer.phone", "phone_index", "volunteer.phone")]),
        # the phone search key ("ph", index.py) is the blind index too
        Target(Resident.collection(), [Sealed("phone_cipher", "resident.phone", "phone_index", "resident.phone",
                                              index_key="ph")]),
        Target(Household.collection(), [Sealed("address_cipher", "household.address")]),
        Target(Unit._get_db()[IMPORT_CHUNKS], [Sealed("rows", IMPORT_ROWS_FIELD)]),
    ]
