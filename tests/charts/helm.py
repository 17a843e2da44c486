"""Rendering, linting and validating the Wenming Helm chart with the real `helm` binary.

`make test` builds Helm in the background (infra/local/stack.sh tools); the session fixture
`helm` (tests/conftest.py) waits for that build. The charts are copied as they are (a symlink
stays a symlink, as in `helm package`) into a temporary directory and `helm dependency build`
vendors the library chart there, so a test run never writes into the working tree.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = ROOT / "charts" / "wenming"
KUBE_VERSION = "1.36.0"
KUBERNETES_VALIDATE = ROOT / ".cache" / "venv" / "bin" / "kubernetes-validate"
RELEASE = "wenming"
NAMESPACE = "wenming"
# kinds without a bundled schema in kubernetes-validate: their shape is checked in Python
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule", "Kafka", "KafkaNodePool", "KafkaTopic", "MongoDBCommunity"}


@dataclass
class Manifest:
    """The objects of one `helm template`, with lookups by kind and name."""

    text: str
    objects: list[dict]

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o["kind"] == kind]

    def get(self, kind: str, name: str) -> dict:
        found = [o for o in self.of_kind(kind) if o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def names(self, kind: str) -> set[str]:
        return {o["metadata"]["name"] for o in self.of_kind(kind)}

    def component(self, obj: dict) -> str:
        return obj["metadata"]["labels"]["app.kubernetes.io/component"]


class RenderError(AssertionError):
    pass


class Chart:
    def __init__(self, helm: str, workdir: Path):
        self.helm = helm
        self._workdir = workdir
        self._overrides = 0
        shutil.copytree(ROOT / "charts", workdir / "charts", symlinks=True)
        self.path = workdir / "charts" / "wenming"
        self._run(["dependency", "build", str(self.path)])

    def _run(self, args: list[str], check: bool = True) -> subprocess.CompletedProcess:
        result = subprocess.run([self.helm, *args], capture_output=True, text=True, timeout=120)
        if check and result.returncode != 0:
            raise RenderError(f"helm {' '.join(args)} failed:\n{result.stderr}")
        return result

    def _value_args(self, values_files: Iterable[Path | str], values: dict | None) -> list[str]:
        args = []
        for path in values_files:
            args += ["-f", str(path)]
        if values:
            self._overrides += 1
            override = self._workdir / f"values-{self._overrides}.yaml"
            override.write_text(yaml.safe_dump(values, allow_unicode=True), encoding="utf-8")
            args += ["-f", str(override)]
        return args

    def template(self, values: dict | None = None, values_files: Iterable[Path | str] = (),
                 source: Path | None = None) -> Manifest:
        """Renders the chart, or `source` (a packaged .tgz of it)."""
        args = ["template", RELEASE, str(source or self.path), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION,
                *self._value_args(values_files, values)]
        text = self._run(args).stdout
        return Manifest(text, [o for o in yaml.safe_load_all(text) if o])

    def template_error(self, values: dict | None = None, values_files: Iterable[Path | str] = ()) -> str:
        """Renders values the chart must refuse; returns helm's error message."""
        args = ["template", RELEASE, str(self.path), "--namespace", NAMESPACE, "--kube-version", KUBE_VERSION,
                *self._value_args(values_files, values)]
        result = self._run(args, check=False)
        assert result.returncode != 0, f"helm rendered values it should refuse: {values}"
        return result.stderr

    def package(self, destination: Path) -> Path:
        """`helm package` of the chart: the .tgz a district installs from."""
        self._run(["package", str(self.path), "--destination", str(destination)])
        (archive,) = destination.glob("wenming-*.tgz")
        return archive

    def lint(self, values_files: Iterable[Path | str] = ()) -> str:
        args = ["lint", "--strict", str(self.path), "--kube-version", KUBE_VERSION, *self._value_args(values_files, None)]
        return self._run(args).stdout


def validate(text: str) -> None:
    """kubernetes-validate --strict against the Kubernetes 1.36 schemas; only the known custom
    resources may go without a schema."""
    result = subprocess.run([str(KUBERNETES_VALIDATE), "-k", KUBE_VERSION, "--strict", "-"], input=text,
                            capture_output=True, text=True, timeout=300)
    problems = [line for line in (result.stdout + result.stderr).splitlines()
                if line.startswith(("ERROR", "WARN")) and not _is_custom_kind_warning(line)]
    assert result.returncode == 0 and not problems, "\n".join(problems) or result.stderr


def _is_custom_kind_warning(line: str) -> bool:
    found = re.match(r"WARN - Couldn't find schema for kind (\w+) ", line)
    return found is not None and found.group(1) in CUSTOM_KINDS


def matches(selector: dict, labels: dict) -> bool:
    """Kubernetes label selector semantics (matchLabels and matchExpressions)."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expression in selector.get("matchExpressions") or ():
        key, operator, values = expression["key"], expression["operator"], expression.get("values") or []
        if operator == "In" and labels.get(key) not in values:
            return False
        if operator == "NotIn" and labels.get(key) in values:
            return False
        if operator == "Exists" and key not in labels:
            return False
        if operator == "DoesNotExist" and key in labels:
            return False
    return True
