import json
import logging
import time

import pytest

from services.common.auth import Principal, TokenIssuer, TokenVerifier, generate_keypair_pem
from services.common.config import ConfigError, load_settings
from services.common.errors import InvalidArgument, Unauthenticated
from services.common.events import EventSource, PoisonEvent, decode
from services.common.ids import decode_page_token, encode_page_token, keyed_id, new_id, ulid, ulid_millis
from services.common.logs import JsonFormatter, redact
from services.common.validation import ID_PATTERN, Validator
from wenming.common.v1 import common_pb2 as c
from wenming.registration.v1 import events_pb2


def test_settings_name_every_missing_variable():
    with pytest.raises(ConfigError) as err:
        load_settings("demo", environ={"GRPC_PORT": "x", "KAFKA_PREFIX": "区/凉州"})
    text = str(err.value)
    for name in ("MONGODB_URI is required", "KAFKA_BOOTSTRAP_SERVERS is required", "JWT_PUBLIC_KEY is required",
                 "GRPC_PORT='x' is not a whole number", "KAFKA_PREFIX='区/凉州': at most 40 of"):
        assert name in text


def test_settings_read_secret_files(tmp_path):
    key_file = tmp_path / "pub.pem"
    key_file.write_text("PEM\n")
    settings = load_settings("demo", environ={"MONGODB_URI": "mongodb://x/", "KAFKA_BOOTSTRAP_SERVERS": "k:1",
                                              "JWT_PUBLIC_KEY_FILE": str(key_file)})
    assert settings.jwt_public_key_pem == "PEM" and settings.mongodb_database == "wenming_demo"


def test_validator_collects_all_violations():
    v = Validator()
    v.text("name", "", max_len=5)
    v.text("title", "x" * 6, max_len=5)
    v.page_size("page.page_size", 500)
    v.enum("level", 99, c.UnitLevel)
    v.ids("unit_ids", ["a", "a"])
    with pytest.raises(InvalidArgument) as err:
        v.check()
    assert [f for f, _ in err.value.violations] == ["name", "title", "page.page_size", "level", "unit_ids[1]"]


def test_a_unit_named_or_else_the_callers_own():
    v = Validator()
    assert v.unit_or_own("unit_id", " unit_a ", "unit_mine") == "unit_a"
    assert v.unit_or_own("unit_id", "", "unit_mine") == "unit_mine"
    assert v.ok()
    assert v.unit_or_own("owner_unit_id", "", "") == ""  # a service token names no unit of its own
    assert v.unit_or_own("unit_id", "not an id!", "unit_mine") == "not an id!"
    assert v.violations == [("owner_unit_id", "must be set (your token names no unit)"), ("unit_id", "is not a valid id")]


def test_a_rating_takes_one_to_five_stars_and_a_short_comment():
    assert Validator().rating(5, "  很好  ") == "很好"
    v = Validator()
    v.rating(0, "x" * 501)
    with pytest.raises(InvalidArgument) as err:
        v.check()
    assert [f for f, _ in err.value.violations] == ["rating", "comment"]


def test_validator_reads_timestamps_and_refuses_impossible_ones():
    request = c.EventEnvelope()
    request.occurred_at.FromSeconds(1_767_225_600)  # 2026-01-01T00:00:00Z
    v = Validator()
    at = v.timestamp("occurred_at", request)
    assert at is not None and at.isoformat() == "2026-01-01T00:00:00+00:00" and v.ok()
    request.occurred_at.seconds = 10**13  # beyond year 9999: protobuf refuses to convert it
    assert v.timestamp("occurred_at", request) is None
    assert v.timestamp("occurred_at", c.EventEnvelope()) is None
    assert v.timestamp("when", c.EventEnvelope(), "occurred_at", required=False) is None
    assert v.violations == [("occurred_at", "is not a valid point in time"), ("occurred_at", "must be set")]


def test_validator_checks_field_masks():
    v = Validator()
    assert v.update_fields("update_fields", ["name", "name", "bio"], {"name", "bio"}) == ["name", "bio"] and v.ok()
    v.update_fields("update_fields", [], {"name"})
    v.update_fields("mask", ["name", "colour"], ("name", "bio"))
    assert v.violations == [("update_fields", "must name at least one field"),
                            ("mask[1]", "unknown field 'colour'; one of bio, name")]


def test_ulids_sort_by_time_and_page_tokens_round_trip():
    first = ulid(now_ms=1_000)
    second = ulid(now_ms=2_000)
    assert first < second and len(first) == 26
    assert ulid_millis(second) == 2_000 and ulid_millis("not-a-ulid") is None
    assert new_id("vol").startswith("vol_")
    assert decode_page_token(encode_page_token("vol_01ABC")) == "vol_01ABC"
    assert decode_page_token("") is None
    with pytest.raises(InvalidArgument):
        decode_page_token("%%%")


def test_tokens_verify_expire_and_reject_other_keys():
    private, public = generate_keypair_pem()
    principal = Principal(subject="adm_1", district_id="d", role=c.ROLE_UNIT_ADMIN, unit_id="u2",
                          unit_level=c.UNIT_LEVEL_STATION, unit_path=("u1", "u2"), display_name="站长")
    token, _ = TokenIssuer(private).issue(principal)
    verified, _ = TokenVerifier(public).verify(token)
    assert verified.unit_path == ("u1", "u2") and verified.manages(["u1", "u2", "u3"])
    assert not verified.manages(["u1", "u9"])

    expired, _ = TokenIssuer(private).issue(principal, ttl_seconds=60, now=time.time() - 3600)
    with pytest.raises(Unauthenticated, match="expired"):
        TokenVerifier(public).verify(expired)
    with pytest.raises(Unauthenticated):
        TokenVerifier(generate_keypair_pem()[1]).verify(token)


def test_redaction_masks_id_and_mobile_numbers():
    assert redact("id 11010519491231002X phone 13812345678") == "id 110***********002X phone 138****5678"
    record = logging.makeLogRecord({"msg": "user %s", "args": ("11010519491231002X",), "levelname": "INFO",
                                    "name": "t"})
    line = json.loads(JsonFormatter("svc").format(record))
    assert "11010519491231002X" not in line["msg"]


def test_envelopes_round_trip_and_poison_is_recognized():
    entry = EventSource("registration").new(
        events_pb2.UnitRenamed(unit_id="u1", old_name="a", new_name="b"), district_id="d1",
        aggregate_type="unit", aggregate_id="u1", version=2, actor_id="adm_1")
    envelope, payload = decode(entry["value"])
    assert envelope.event_type == "wenming.registration.v1.UnitRenamed" and payload.new_name == "b"
    assert entry["topic"].endswith("wenming.registration.v1.events") and entry["key"] == "u1"
    with pytest.raises(PoisonEvent):
        decode(b"\xff\xff not protobuf")
    bad = c.EventEnvelope(event_id="e", event_type="wenming.nothing.v1.Thing", district_id="d")
    bad.payload.type_url = "type.googleapis.com/wenming.nothing.v1.Thing"
    with pytest.raises(PoisonEvent, match="unknown event type"):
        decode(bad.SerializeToString())


def test_a_remembered_token_still_expires(monkeypatch):
    private, public = generate_keypair_pem()
    verifier = TokenVerifier(public, leeway_seconds=0)
    token, expires = TokenIssuer(private).issue(Principal(subject="s", district_id="d", role=c.ROLE_VOLUNTEER),
                                                ttl_seconds=60)
    verifier.verify(token)  # now remembered
    monkeypatch.setattr("services.common.auth.time.time", lambda: expires + 1)
    with pytest.raises(Unauthenticated, match="expired"):
        verifier.verify(token)


def test_a_kafka_prefix_names_every_topic_and_group_of_the_release():
    from services.common import events
    from services.points.consumer import partition_source

    before = events.kafka_name("")
    try:
        events.set_kafka_prefix("liangzhou.")
        assert events.events_topic("ordering") == "liangzhou.wenming.ordering.v1.events"
        assert events.kafka_name("points-ledger") == "liangzhou.points-ledger"
        # an account's mark is keyed by the source service, whatever the release's prefix
        assert partition_source(events.events_topic("ordering"), 3) == "ordering-3"
    finally:
        events.set_kafka_prefix(before)


def test_a_keyed_id_is_the_same_for_the_same_key_only_and_a_valid_id():
    first = keyed_id("gev", "d1|adm_1|k-1")
    assert first == keyed_id("gev", "d1|adm_1|k-1") and first.startswith("gev_k")
    assert first != keyed_id("gev", "d1|adm_2|k-1") and first != keyed_id("gas", "d1|adm_1|k-1")
    assert ID_PATTERN.match(first) and len(first) != len(new_id("gev"))  # never a ULID id

