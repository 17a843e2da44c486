"""The contract in protos/ as other languages and tools see it: buf lint clean, no breaking change
against the last release (contract-baseline/), and generated Java and Go code that compiles with
the protobuf runtime of the same release as the protoc that `make protos` uses."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import pytest
from grpc_tools import protoc as grpc_tools_protoc

from tests.support import tools

ROOT = Path(__file__).resolve().parents[2]
PROTOS = sorted(str(p.relative_to(ROOT / "protos")) for p in (ROOT / "protos").rglob("*.proto"))
BASELINE = ROOT / "contract-baseline" / "0.1.0.binpb"
GO_MODULE = "github.com/wenming-cloud/wenming"
WELL_KNOWN = str(Path(grpc_tools_protoc.__file__).parent / "_proto")


def test_buf_lint(tool):
    result = tools.run(tool("buf"), "lint")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_breaking_change_since_the_release(tool):
    result = tools.run(tool("buf"), "breaking", "--against", str(BASELINE))
    assert result.returncode == 0, result.stdout + result.stderr


def test_breaking_check_sees_a_removed_field(tool, tmp_path):
    """The baseline is wired in: dropping a released field is reported."""
    shutil.copytree(ROOT / "protos", tmp_path / "protos")
    shutil.copy(ROOT / "buf.yaml", tmp_path / "buf.yaml")
    proto = tmp_path / "protos" / "wenming" / "common" / "v1" / "common.proto"
    text = proto.read_text(encoding="utf-8")
    changed = re.sub(r"\n  string district_id = \d+;[^\n]*", "\n", text, count=1)
    assert changed != text
    proto.write_text(changed, encoding="utf-8")
    result = tools.run(tool("buf"), "breaking", "--against", str(BASELINE), cwd=tmp_path)
    assert result.returncode != 0 and "district_id" in result.stdout, result.stdout + result.stderr


def test_protoc_is_the_release_make_protos_uses(tool):
    maven = tools.run(tool("protoc"), "--version").stdout.strip()
    bundled = tools.run(sys.executable, "-m", "grpc_tools.protoc", "--version").stdout.strip()
    assert maven == bundled


def test_java_compiles(tool, tmp_path):
    out = tmp_path / "java"
    out.mkdir()
    generated = tools.run(tool("protoc"), "-I", "protos", "-I", WELL_KNOWN, f"--java_out={out}", *PROTOS, cwd=ROOT)
    assert generated.returncode == 0, generated.stderr
    sources = sorted(str(p) for p in out.rglob("*.java"))
    assert any("/cloud/wenming/ordering/v1/PlaceOrderRequest.java" in s for s in sources)
    # a one-shot javac: the C1 compiler alone and the serial collector halve its CPU (43 → 27 s here)
    # and its memory (1.7 GB → 0.4 GB) on a machine the rest of the suite keeps busy
    compiled = tools.run("javac", "-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC", "-proc:none", "-g:none",
                         "-nowarn", "-encoding", "UTF-8", "-cp", tool("protobuf-java"),
                         "-d", str(tmp_path / "classes"), *sources, timeout=600)
    assert compiled.returncode == 0, compiled.stderr[-3000:]


def test_go_compiles(tool, tmp_path):
    plugin = tool("protoc-gen-go")
    version = tools.run(plugin, "--version").stdout.split()[-1]  # "protoc-gen-go v1.36.12"
    generated = tools.run(tool("protoc"), "-I", "protos", "-I", WELL_KNOWN, f"--plugin=protoc-gen-go={plugin}",
                          f"--go_out={tmp_path}", f"--go_opt=module={GO_MODULE}", *PROTOS, cwd=ROOT)
    assert generated.returncode == 0, generated.stderr
    assert (tmp_path / "gen/go/wenming/ordering/v1/ordering.pb.go").is_file()
    (tmp_path / "go.mod").write_text(f"module {GO_MODULE}\n\ngo 1.23\n\nrequire google.golang.org/protobuf {version}\n")
    env = {**os.environ, **_go_cache_env()}
    for step in (["go", "mod", "tidy"], ["go", "build", "./..."], ["go", "vet", "./..."]):
        result = tools.run(*step, cwd=tmp_path, timeout=600, env=env)
        assert result.returncode == 0, f"{' '.join(step)}:\n{result.stderr[-3000:]}"


def _go_cache_env() -> dict[str, str]:
    """The module and build caches stack.sh builds the Go tools with (shared, so no download twice)."""
    cache = Path(os.environ.get("WENMING_CACHE", ROOT / ".cache"))
    return {"GOMODCACHE": os.environ.get("GOMODCACHE", str(cache / "go" / "mod")),
            "GOCACHE": os.environ.get("GOCACHE", str(cache / "go" / "build")), "GOFLAGS": "-mod=mod"}


@pytest.mark.parametrize("proto", PROTOS)
def test_every_file_names_its_packages_for_each_language(proto):
    text = (ROOT / "protos" / proto).read_text(encoding="utf-8")
    service = proto.split("/")[1]
    expected = {
        "go_package": f'"{GO_MODULE}/gen/go/wenming/{service}/v1;{service}v1"',
        "java_package": f'"cloud.wenming.{service}.v1"',
        "java_multiple_files": "true",
        "csharp_namespace": f'"Wenming.{service.capitalize()}.V1"',
    }
    for option, value in expected.items():
        assert f"option {option} = {value};" in text, f"{proto}: option {option} = {value};"
