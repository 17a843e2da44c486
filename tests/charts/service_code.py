"""What a built service requires from its environment, read from its code.

A service built on `ServiceApp` reads the common settings of `services/common/config.py`
(`load_settings`) plus its own `extra_settings(env)`; any service may build its own `Env`. A
setting is required when it is read with `env.str`/`env.int` without a default or with
`env.key_bytes` (which has none). Reading the calls from the source keeps the chart honest as
services change: a new required variable that the chart does not pass fails the chart tests.
"""

from __future__ import annotations

import ast
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"


def _required_in(paths: list[Path]) -> set[str]:
    required = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
                continue
            if not (isinstance(node.func.value, ast.Name) and node.func.value.id == "env"):
                continue
            if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                continue
            has_default = len(node.args) > 1 or any(k.arg == "default" for k in node.keywords)
            if node.func.attr == "key_bytes" or (node.func.attr in ("str", "int") and not has_default):
                required.add(node.args[0].value)
    return required


def is_built(service: str) -> bool:
    return (SERVICES / service / "__main__.py").is_file()


@cache
def required_settings(service: str) -> frozenset[str]:
    """Variables without which `python -m services.<service>` refuses to start (empty if not built)."""
    if not is_built(service):
        return frozenset()
    own = sorted((SERVICES / service).rglob("*.py"))
    required = _required_in(own)
    if "ServiceApp(" in (SERVICES / service / "__main__.py").read_text(encoding="utf-8"):
        required |= _required_in([SERVICES / "common" / "config.py"])
    return frozenset(required)
