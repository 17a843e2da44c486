"""The kit's database command metrics: each command is timed under its collection (getMore under
its cursor's), failures are counted too, and nothing is left behind per command."""

from types import SimpleNamespace

from prometheus_client import REGISTRY

from services.common.mongo import CommandMetrics


def _sample(name: str, command: str, collection: str) -> float:
    return REGISTRY.get_sample_value(name, {"command": command, "collection": collection}) or 0.0


def _started(request_id: int, name: str, command: dict) -> SimpleNamespace:
    return SimpleNamespace(command_name=name, command={name: command.pop(name), **command},
                           connection_id=("127.0.0.1", 27017), request_id=request_id)


def _ended(request_id: int, name: str, micros: int) -> SimpleNamespace:
    return SimpleNamespace(command_name=name, connection_id=("127.0.0.1", 27017), request_id=request_id,
                           duration_micros=micros)


def test_commands_are_timed_by_collection_and_failures_counted():
    listener = CommandMetrics()
    before = {key: (_sample("mongodb_command_seconds_count", *key), _sample("mongodb_command_seconds_sum", *key))
              for key in (("find", "metrics_probe"), ("getMore", "metrics_probe"), ("ping", ""))}
    failed_before = _sample("mongodb_command_failures_total", "findAndModify", "metrics_probe")

    listener.started(_started(1, "find", {"find": "metrics_probe", "filter": {}}))
    listener.started(_started(2, "getMore", {"getMore": 12345, "collection": "metrics_probe"}))
    listener.started(_started(3, "ping", {"ping": 1}))
    listener.started(_started(4, "findAndModify", {"findAndModify": "metrics_probe"}))
    listener.succeeded(_ended(1, "find", 2_000))
    listener.succeeded(_ended(2, "getMore", 1_000))
    listener.succeeded(_ended(3, "ping", 500))
    listener.failed(_ended(4, "findAndModify", 3_000))

    for (command, collection), seconds in ((("find", "metrics_probe"), 0.002), (("getMore", "metrics_probe"), 0.001),
                                           (("ping", ""), 0.0005)):
        count, total = before[(command, collection)]
        assert _sample("mongodb_command_seconds_count", command, collection) == count + 1
        assert abs(_sample("mongodb_command_seconds_sum", command, collection) - total - seconds) < 1e-9
    assert _sample("mongodb_command_failures_total", "findAndModify", "metrics_probe") == failed_before + 1
    assert listener._collections == {}  # nothing kept once a command has ended
