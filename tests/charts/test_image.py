"""The Dockerfile, checked without a Docker engine: its instructions, its build context, the image
layout it produces (rebuilt in a directory and imported), and its agreement with the chart."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.charts.helm import CHART_DIR, ROOT
from tests.charts.service_code import is_built

DOCKERFILE = ROOT / "Dockerfile"
CHART_VALUES = yaml.safe_load((CHART_DIR / "values.yaml").read_text(encoding="utf-8"))


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for k, args in self.instructions if k == keyword]


def parse_dockerfile() -> tuple[dict[str, str], list[Stage]]:
    """Global ARG defaults and the stages, with line continuations joined."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            base, _, name = rest.partition(" AS ")
            stages.append(Stage(base.strip(), name.strip()))
        elif keyword == "ARG" and not stages:
            name, _, default = rest.partition("=")
            args[name] = default
        else:
            assert stages, f"{keyword} before FROM"
            stages[-1].instructions.append((keyword, " ".join(rest.split())))
    return args, stages


ARGS, STAGES = parse_dockerfile()
BUILD, RUNTIME = next(s for s in STAGES if s.name == "build"), STAGES[-1]


def context_copies() -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY from the build context."""
    copies = []
    for stage in STAGES:
        for args in stage.all("COPY"):
            parts = shlex.split(args)
            if any(p.startswith("--from=") for p in parts):
                continue
            copies.append(([p for p in parts[:-1] if not p.startswith("--")], parts[-1]))
    return copies


def dockerignore_excludes(path: str) -> bool:
    """Docker's .dockerignore rules: the last pattern matching the path or one of its parents wins."""
    excluded = False
    for raw in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines():
        raw = raw.strip()
        if not raw or raw.startswith("#"):
            continue
        negate = raw.startswith("!")
        pattern = raw.lstrip("!").strip("/")
        regex = re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*").replace(r"\?", "[^/]")
        parts = path.split("/")
        candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
        if any(re.fullmatch(regex, c) for c in candidates):
            excluded = not negate
    return excluded


def test_builds_the_app_on_node_20_and_the_services_on_python_311_slim():
    assert ARGS["PYTHON_IMAGE"].startswith("python:3.11-slim") and ARGS["NODE_IMAGE"].startswith("node:20-")
    assert [(s.base, s.name) for s in STAGES] == [("${NODE_IMAGE}", "web"), ("${PYTHON_IMAGE}", "build"),
                                                  ("${PYTHON_IMAGE}", "runtime")]
    web = next(s for s in STAGES if s.name == "web")
    assert any("npm ci" in r for r in web.all("RUN")), "the lockfile decides every package"
    assert any(c == "--from=web /src/build/web /out/app/build/web" for c in BUILD.all("COPY"))


def test_runtime_runs_as_the_chart_non_root_user():
    (user,) = RUNTIME.all("USER")
    uid, gid = (int(x) for x in user.split(":"))
    assert uid != 0 and gid != 0
    pod = CHART_VALUES["serviceDefaults"]["podSecurityContext"]
    assert (pod["runAsUser"], pod["runAsGroup"]) == (uid, gid)
    assert any(f"--uid {uid}" in run for run in RUNTIME.all("RUN")), "the user exists in /etc/passwd"


def test_runtime_installs_only_the_cjk_font_and_copies_only_build_output():
    assert not [r for r in RUNTIME.all("RUN") if "pip" in r]
    # the font PDFs embed (services/common/pdf.py), at CJK_FONT_PATH's default
    installs = [r for r in RUNTIME.all("RUN") if "apt-get install" in r]
    assert len(installs) == 1 and re.search(r"--no-install-recommends fonts-noto-cjk\b", installs[0])
    assert all(c.startswith("--from=build ") for c in RUNTIME.all("COPY"))


def test_dependencies_come_from_requirements_and_protoc_from_its_pin():
    installs = [r for r in BUILD.all("RUN") if "pip install" in r]
    assert any("/opt/venv/bin/pip install -r requirements.txt" in r for r in installs)
    protoc = [r for r in installs if "grpcio-tools" in r]
    assert len(installs) == 2 and len(protoc) == 1
    assert re.search(r"^grpcio-tools==\S+$", (ROOT / "requirements-dev.txt").read_text(encoding="utf-8"), re.M)
    assert "/opt/protoc" in protoc[0] and not any("/opt/protoc" in c for c in RUNTIME.all("COPY"))


def test_command_selects_a_service_and_ports_match_the_chart():
    (cmd,) = RUNTIME.all("CMD")
    command = json.loads(cmd)
    assert command[:2] == ["python", "-m"] and command[2].startswith("services.")
    assert is_built(command[2].removeprefix("services."))
    (expose,) = RUNTIME.all("EXPOSE")
    assert expose.split() == ["50051", "8080"]


def test_context_copies_exist_and_survive_dockerignore():
    copies = context_copies()
    assert {s for sources, _ in copies for s in sources} == {
        "requirements.txt", "requirements-dev.txt", "protos/", "services/", "web/package.json", "web/package-lock.json",
        "web/"}
    for sources, _ in copies:
        for source in sources:
            path = ROOT / source
            assert path.exists(), source
            files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()
                                                   and not {"__pycache__", "node_modules"} & set(p.parts)]
            assert files, source
            for file in files:
                relative = file.relative_to(ROOT).as_posix()
                assert not dockerignore_excludes(relative), f"{relative} is copied but .dockerignore leaves it out"
    for outside in (".cache/venv/bin/python", ".data/test/x", ".git/HEAD", "tests/conftest.py", "charts/wenming/values.yaml",
                    "services/common/__pycache__/auth.cpython-311.pyc", "web/node_modules/vue/package.json"):
        assert dockerignore_excludes(outside), outside


# built, but off in a district's release: a city's release turns it on (docs/rollup.md)
CITY_RELEASE_ONLY = {"rollup"}


def test_chart_enables_exactly_the_built_services():
    """A service is enabled by default once `python -m services.<name>` exists in the image
    (but for those only a city's release runs)."""
    built = {p.parent.name for p in (ROOT / "services").glob("*/__main__.py")}
    chart = CHART_VALUES["services"]
    assert built <= set(chart), f"services/{sorted(built - set(chart))} exist but the chart does not know them"
    for name, values in chart.items():
        if name in CITY_RELEASE_ONLY:
            assert is_built(name) and not values["enabled"], f"services.{name} is for a city's release: off by default"
        elif is_built(name):
            assert values["enabled"], f"services/{name} is built: enable services.{name} in charts/wenming/values.yaml"
        else:
            assert not values["enabled"], f"services.{name} is enabled but services/{name}/__main__.py does not exist"


@pytest.fixture(scope="module")
def image_layout(tmp_path_factory) -> Path:
    """/app as the Dockerfile builds it: protoc's output where the build stage puts it, services/ copied."""
    app = tmp_path_factory.mktemp("image") / "app"
    (protoc_run,) = [r for r in BUILD.all("RUN") if "grpc_tools.protoc" in r]
    out_dir = re.search(r"--python_out=(\S+)", protoc_run).group(1)
    assert out_dir.startswith("/out/app/")
    generated = app / out_dir.removeprefix("/out/app/")
    generated.mkdir(parents=True)
    protos = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "protos").rglob("*.proto"))
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I", "protos", f"--python_out={generated}",
                    f"--pyi_out={generated}", f"--grpc_python_out={generated}", *protos], cwd=ROOT, check=True)
    shutil.copytree(ROOT / "services", app / "services", ignore=shutil.ignore_patterns("__pycache__"))
    return app


def test_every_enabled_service_imports_from_the_image_layout(image_layout):
    (env,) = RUNTIME.all("ENV")
    pythonpath = re.search(r"PYTHONPATH=(\S+)", env).group(1).split(":")
    paths = [str(image_layout / p.removeprefix("/app").lstrip("/")) for p in pythonpath]
    modules = [f"services.{name}.__main__" for name, values in CHART_VALUES["services"].items() if values["enabled"]]
    modules.append("services.registration.bootstrap")
    # the repository's own paths (added by the virtualenv's wenming.pth) are removed: only the image layout counts
    probe = f"""
import importlib, sys
repo = {[str(ROOT), str(ROOT / "build" / "protos" / "python"), ""]!r}
sys.path[:] = {paths!r} + [p for p in sys.path if p not in repo]
for name in {modules!r}:
    module = importlib.import_module(name)
    assert module.__file__.startswith({str(image_layout)!r}), module.__file__
import wenming.common.v1.common_pb2 as common
assert common.__file__.startswith({str(image_layout)!r}), common.__file__
print("imported", len({modules!r}))
"""
    result = subprocess.run([sys.executable, "-c", probe], cwd=image_layout, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"imported {len(modules)}"
