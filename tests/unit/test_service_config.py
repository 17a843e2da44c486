"""The published gRPC service config (protos/service-config.json) is the one the contract makes,
retries exactly the calls that are safe to repeat, and is the one the kit's channels use."""

from __future__ import annotations

import json
from pathlib import Path

from services.common import grpc_client
from services.common.service_config import CONTRACT_SERVICES, service_config, service_config_json

PUBLISHED = Path(__file__).resolve().parents[2] / "protos" / "service-config.json"


def _retried() -> set[str]:
    [config] = service_config()["methodConfig"]
    return {f"{n['service']}/{n['method']}" for n in config["name"]}


def test_published_copy_is_what_the_contract_makes():
    assert PUBLISHED.read_text() == service_config_json(), \
        "protos/service-config.json is stale: python -m services.common.service_config > protos/service-config.json"


def test_reads_and_keyed_writes_are_retried_when_the_server_went_away():
    retried = _retried()
    # reads of every service
    assert {"wenming.registration.v1.RegistrationService/GetUnit", "wenming.points.v1.PointsService/GetAccount",
            "wenming.ordering.v1.OrderingService/GetOrder"} <= retried
    # writes the service deduplicates by their idempotency key
    assert {"wenming.points.v1.PointsService/AdjustPoints", "wenming.points.v1.PointsService/AddManualHours",
            "wenming.points.v1.PointsService/Redeem", "wenming.points.v1.PointsService/ReverseEntry"} <= retried
    # writes the contract marks idempotent: the service answers a repeat of the request with the first outcome
    assert {"wenming.ordering.v1.OrderingService/AppealCreditIncident",
            "wenming.ordering.v1.OrderingService/DecideCreditAppeal"} <= retried
    # writes without a key would be done twice by a retry of a call whose answer was lost
    assert not {"wenming.registration.v1.RegistrationService/CreateUnit",
                "wenming.registration.v1.RegistrationService/Login",
                "wenming.ordering.v1.OrderingService/PlaceOrder"} & retried
    [config] = service_config()["methodConfig"]
    # a server going away: refused, or (gRPC core at shutdown) cancelled before a handler took it
    assert config["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE", "CANCELLED"]
    assert config["retryPolicy"]["maxAttempts"] <= 5  # gRPC's cap
    # every service of the contract has reads
    assert {name["service"].rsplit(".", 1)[1] for name in config["name"]} == {s for _, s in CONTRACT_SERVICES}


def test_kit_channels_carry_it():
    options = dict(grpc_client.channel_options())
    assert options["grpc.enable_retries"] == 1
    assert json.loads(options["grpc.service_config"]) == service_config()
