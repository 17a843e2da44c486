"""Which series the services expose, read from their code, and which series and labels a PromQL
expression uses.

The catalog is built from the source (every `Counter(...)`, `Histogram(...)`, `GaugeMetricFamily(...)`
… of prometheus_client under services/), so an alert or a panel on a metric nobody exports, or on a
label the metric does not have, fails a test instead of staying silent in production.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parents[2]

# labels Prometheus adds to every scraped series (the ServiceMonitor's target labels plus the
# chart's relabeling); a scraped label of the same name is renamed to exported_<name>
TARGET_LABELS = frozenset({"namespace", "pod", "instance", "job", "service", "container", "endpoint", "wenming_service"})

# series Prometheus itself produces
PROMETHEUS_SERIES = {
    "up": frozenset(),
    "ALERTS": None,  # any label: the alert's own
    "ALERTS_FOR_STATE": None,
}

_KIND_OF_CALL = {
    "Counter": "counter", "Gauge": "gauge", "Histogram": "histogram", "Summary": "summary", "Info": "info",
    "Enum": "stateset",
    "CounterMetricFamily": "counter", "GaugeMetricFamily": "gauge", "HistogramMetricFamily": "histogram",
    "SummaryMetricFamily": "summary", "InfoMetricFamily": "info",
}


@dataclass(frozen=True)
class Metric:
    name: str  # as declared
    kind: str
    labels: frozenset[str]
    source: str

    @property
    def family(self) -> str:
        """The name prometheus_client exposes in # TYPE (counters lose a _total suffix)."""
        return self.name.removesuffix("_total") if self.kind == "counter" else self.name

    def series(self) -> dict[str, frozenset[str]]:
        """Sample names with the labels each carries, as scraped (before Prometheus' renames)."""
        base = self.family  # no <name>_created: the kit turns those off (services/common/ops_app.py)
        if self.kind == "counter":
            return {f"{base}_total": self.labels}
        if self.kind == "histogram":
            return {f"{base}_bucket": self.labels | {"le"}, f"{base}_sum": self.labels, f"{base}_count": self.labels}
        if self.kind == "summary":
            return {base: self.labels | {"quantile"}, f"{base}_sum": self.labels, f"{base}_count": self.labels}
        if self.kind == "info":
            return {f"{base}_info": self.labels}
        if self.kind == "stateset":
            return {base: self.labels | {base}}
        return {base: self.labels}


def _literal_strings(node: ast.AST | None) -> frozenset[str] | None:
    if isinstance(node, (ast.List, ast.Tuple)) and all(isinstance(e, ast.Constant) for e in node.elts):
        return frozenset(e.value for e in node.elts)
    return None


@cache
def declared_metrics() -> tuple[Metric, ...]:
    """Every metric declared with literal names under services/."""
    metrics = []
    for path in sorted((ROOT / "services").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {alias.asname or alias.name: alias.name for node in ast.walk(tree)
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("prometheus_client")
                    for alias in node.names if alias.name in _KIND_OF_CALL}
        for node in ast.walk(tree):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in imported):
                continue
            if not (node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
                continue
            call = imported[node.func.id]
            keywords = {k.arg: k.value for k in node.keywords}
            if call.endswith("MetricFamily"):
                labels = _literal_strings(keywords.get("labels"))
            else:
                labels = _literal_strings(node.args[2] if len(node.args) > 2 else keywords.get("labelnames"))
            metrics.append(Metric(node.args[0].value, _KIND_OF_CALL[call], labels or frozenset(),
                                  str(path.relative_to(ROOT))))
    return tuple(metrics)


def default_collector_series() -> dict[str, frozenset[str]]:
    """process_* and python_* series of prometheus_client's default collectors (served by every
    service's /metrics through generate_latest())."""
    series = {}
    for family in REGISTRY.collect():
        if family.name.startswith(("process_", "python_")):
            for sample in family.samples:
                series[sample.name] = frozenset(sample.labels)
    return series


def stored_labels(labels: frozenset[str]) -> frozenset[str]:
    """A scraped series' labels as Prometheus stores them."""
    return frozenset(f"exported_{label}" if label in TARGET_LABELS else label for label in labels) | TARGET_LABELS


def catalog() -> dict[str, frozenset[str] | None]:
    """Series name -> the labels it has in Prometheus (None: any)."""
    series: dict[str, frozenset[str] | None] = {}
    for metric in declared_metrics():
        for name, labels in metric.series().items():
            series[name] = stored_labels(labels)
    for name, labels in default_collector_series().items():
        series[name] = stored_labels(labels)
    for name, labels in PROMETHEUS_SERIES.items():
        series[name] = None if labels is None else labels | TARGET_LABELS
    return series


# ---- PromQL ----

_TOKEN = re.compile(r"""
    (?P<string>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*'|`[^`]*`)
  | (?P<range>\[[^\]]*\])
  | (?P<duration>\d+(?:ms|[smhdwy])(?:\d+(?:ms|[smhdwy]))*\b)
  | (?P<ident>[A-Za-z_:][A-Za-z0-9_:]*)
  | (?P<number>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)
  | (?P<op>=~|!~|!=|==|>=|<=|[-+*/%^(){},=<>])
  | (?P<space>\s+)
""", re.VERBOSE)

_GROUPING = {"by", "without", "on", "ignoring", "group_left", "group_right"}
_KEYWORDS = {"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", "Inf", "NaN"}
_AGGREGATIONS = {"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk", "bottomk", "quantile",
                 "count_values", "limitk", "limit_ratio"}


@dataclass
class Selector:
    metric: str
    labels: set[str]


@dataclass
class Query:
    selectors: list[Selector]
    grouping_labels: set[str]


def parse(expr: str) -> Query:
    """The vector selectors of an expression (metric and matcher labels) and the labels named in
    by/without/on/ignoring/group_* clauses. Not a full PromQL parser: enough to check names."""
    tokens = []
    position = 0
    while position < len(expr):
        found = _TOKEN.match(expr, position)
        if not found:
            raise ValueError(f"cannot read PromQL at {expr[position:position + 20]!r}")
        position = found.end()
        if found.lastgroup not in ("space", "range", "duration"):
            tokens.append((found.lastgroup, found.group()))
    selectors, grouping = [], set()
    i = 0
    while i < len(tokens):
        kind, text = tokens[i]
        following = tokens[i + 1][1] if i + 1 < len(tokens) else None
        if kind == "ident" and text in _GROUPING and following == "(":
            i += 2
            while tokens[i][1] != ")":
                if tokens[i][0] == "ident":
                    grouping.add(tokens[i][1])
                i += 1
        elif kind == "ident" and (following == "(" or text in _KEYWORDS
                                  or text in _AGGREGATIONS and following in ("by", "without")):
            pass  # a function, an aggregation or a keyword
        elif kind == "ident":
            labels = set()
            if following == "{":
                i += 2
                while tokens[i][1] != "}":
                    if tokens[i][0] == "ident":
                        labels.add(tokens[i][1])
                    i += 1
            selectors.append(Selector(text, labels))
        i += 1
    return Query(selectors, grouping)


def problems(expr: str, known: dict[str, frozenset[str] | None], extra_labels: frozenset[str] = frozenset()) -> list[str]:
    """What in `expr` does not exist: unknown series, labels a series does not carry, grouping
    labels none of its series carries. `extra_labels` are labels the expression creates itself
    (label_replace)."""
    query = parse(expr)
    found = []
    available: set[str] = set(extra_labels)
    for selector in query.selectors:
        if selector.metric not in known:
            found.append(f"no service exports {selector.metric}")
            continue
        labels = known[selector.metric]
        if labels is None:
            available.add("*")
            continue
        available |= labels
        unknown = selector.labels - labels - {"__name__"}
        if unknown:
            found.append(f"{selector.metric} has no label {sorted(unknown)}")
    if "*" not in available:
        unknown = query.grouping_labels - available
        if unknown:
            found.append(f"grouping by {sorted(unknown)}, which none of its series carries")
    return found
