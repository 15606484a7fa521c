"""What the metrics tier needs besides a cluster (tests/container/cluster_kit.py): redis_exporter
as a process beside a member, the exposition format, Prometheus' relabeling as the PodMonitor
applies it, the metric names a PromQL expression reads, and promtool's rule tests.

The files under test: deploy/k8s/base/search-metrics.lua (the exporter's --script),
deploy/monitoring/podmonitor.yaml (its metricRelabelings), prometheusrule.yaml (the alerts)
and grafana-dashboard.json. Shared by tests/metrics and bench/metrics_cost.py.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import yaml
from support import testbed

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "deploy" / "k8s" / "base" / "search-metrics.lua"
MONITORING = ROOT / "deploy" / "monitoring"
POD_MONITOR = MONITORING / "podmonitor.yaml"
RULES = MONITORING / "prometheusrule.yaml"
DASHBOARD = MONITORING / "grafana-dashboard.json"
# The line of the script the canned replies replace.
SCRIPT_CALL_LINE = "local call = redis.pcall"

# Debian's package names the binary prometheus-redis-exporter; upstream's is redis_exporter.
EXPORTER_NAMES = ("prometheus-redis-exporter", "redis_exporter")
INSTALL_HINT = ".ci/install-deps (Debian's prometheus-redis-exporter and prometheus packages, binaries only)"

# What the PodMonitor's target adds to every sample (Prometheus' target labels).
NAMESPACE = "valkey-bundle"
JOB = "valkey-bundle/valkey-bundle"


def exporter_binary() -> str | None:
    for name in EXPORTER_NAMES:
        found = shutil.which(name)
        if found:
            return found
    return None


def promtool_binary() -> str | None:
    return shutil.which("promtool")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ exposition format


@dataclasses.dataclass(frozen=True)
class Sample:
    name: str
    labels: tuple[tuple[str, str], ...]
    value: float

    @property
    def label_dict(self) -> dict[str, str]:
        return dict(self.labels)


_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\d+)?$")
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*,?\s*')


def _unescape(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n"}.get(m[1], m[1]), value)


def parse_exposition(text: str) -> list[Sample]:
    """The samples of Prometheus' text format (comments and blank lines skipped)."""
    samples = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if not match:
            raise ValueError(f"not a sample line: {line!r}")
        labels = tuple(sorted((k, _unescape(v)) for k, v in _LABEL.findall(match[2] or "")))
        samples.append(Sample(match[1], labels, float(match[3])))
    return samples


# ------------------------------------------------------------------ relabeling


def metric_relabelings() -> list[dict]:
    """The PodMonitor's metricRelabelings (one endpoint)."""
    monitor = yaml.safe_load(POD_MONITOR.read_text())
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    return endpoint.get("metricRelabelings", [])


def _expand(replacement: str, match: re.Match) -> str:
    """$1, ${1}, $name in a replacement: the group's text, or nothing for one that does not exist."""

    def group(m):
        name = m[1] or m[2]
        try:
            return match.group(int(name) if name.isdigit() else name) or ""
        except IndexError:
            return ""

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", group, replacement)


def relabel(labels: dict[str, str], configs: list[dict]) -> dict[str, str] | None:
    """Prometheus' relabeling of one label set (__name__ included), as the operator's fields name
    it; None when a rule drops the sample. Regexes are anchored at both ends, as RE2's are there."""
    labels = dict(labels)
    for config in configs:
        action = config.get("action", "replace").lower()
        regex = re.compile(config.get("regex", "(.*)"))
        value = config.get("separator", ";").join(labels.get(n, "") for n in config.get("sourceLabels", []))
        if action == "replace":
            match = regex.fullmatch(value)
            if match is None:
                continue
            target = _expand(config.get("targetLabel", ""), match)
            result = _expand(config.get("replacement", "$1"), match)
            if not target:
                continue
            if result:
                labels[target] = result
            else:
                labels.pop(target, None)
        elif action == "keep":
            if not regex.fullmatch(value):
                return None
        elif action == "drop":
            if regex.fullmatch(value):
                return None
        elif action == "labeldrop":
            labels = {k: v for k, v in labels.items() if not regex.fullmatch(k)}
        elif action == "labelkeep":
            labels = {k: v for k, v in labels.items() if regex.fullmatch(k) or k == "__name__"}
        else:
            raise NotImplementedError(f"relabel action {action}")
    return labels


def as_prometheus_stores(samples: list[Sample], target: dict[str, str], configs: list[dict]) -> list[Sample]:
    """The samples of one scrape as Prometheus stores them: the target's labels added, then the
    metric relabelings applied."""
    out = []
    for sample in samples:
        labels = relabel({**sample.label_dict, **target, "__name__": sample.name}, configs)
        if labels is None:
            continue
        name = labels.pop("__name__")
        out.append(Sample(name, tuple(sorted(labels.items())), sample.value))
    return out


# ------------------------------------------------------------------ PromQL


# Aggregations and functions are told apart by the "(" that follows them; these words are not.
PROMQL_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool"}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (a tokenizer, not a parser: enough for the
    expressions of this repository's rules and dashboard)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'', '""', expr)
    names: set[str] = set()
    # Grafana's label_values(metric, label): the metric only.
    for match in re.finditer(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{[^}]*\})?\s*,", text):
        names.add(match[1])
    text = re.sub(r"label_values\([^)]*\)", " ", text)
    text = re.sub(r"\$\{[^}]*\}|\$\w+", " ", text)  # Grafana variables
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    text = re.sub(r"\boffset\s+\S+", " ", text)
    text = re.sub(r"(?<![\w:])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?", " ", text)
    for match in re.finditer(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text):
        following = text[match.end() :].lstrip()[:1]
        if following == "(" or match[0] in PROMQL_KEYWORDS:
            continue
        names.add(match[0])
    return names


def rule_groups() -> dict:
    """The PrometheusRule's spec: a Prometheus rule file as promtool reads it."""
    return yaml.safe_load(RULES.read_text())["spec"]


def alert_rules() -> dict[str, dict]:
    return {rule["alert"]: rule for group in rule_groups()["groups"] for rule in group["rules"] if "alert" in rule}


def dashboard_queries() -> list[tuple[str, str]]:
    """(panel title, expression) of every query of the dashboard, its variables' too."""
    dashboard = json.loads(DASHBOARD.read_text())
    found = []

    def walk(panels):
        for panel in panels:
            for target in panel.get("targets", []):
                if target.get("expr"):
                    found.append((panel.get("title", ""), target["expr"]))
            walk(panel.get("panels", []))

    walk(dashboard.get("panels", []))
    for variable in dashboard.get("templating", {}).get("list", []):
        query = variable.get("query")
        if variable.get("type") == "query":
            found.append((f"${variable['name']}", query["query"] if isinstance(query, dict) else query))
    return found


def queried_names() -> dict[str, set[str]]:
    """Metric name -> where it is queried (alert names, dashboard panel titles)."""
    where: dict[str, set[str]] = {}
    for name, rule in alert_rules().items():
        for metric in promql_metric_names(rule["expr"]):
            where.setdefault(metric, set()).add(f"alert {name}")
    for title, expr in dashboard_queries():
        for metric in promql_metric_names(expr):
            where.setdefault(metric, set()).add(f"panel {title!r}")
    return where


def is_search_metric(name: str) -> bool:
    return name.startswith("valkey_search_")


# ------------------------------------------------------------------ the exporter


def exporter_flags(binary: str) -> set[str]:
    """The flags this build of redis_exporter knows (Debian 12's 1.45 lacks the newer ones)."""
    result = subprocess.run([binary, "-help"], capture_output=True, text=True, timeout=30, check=False)
    return set(re.findall(r"^\s+-([a-z][a-z0-9.-]*)", result.stdout + result.stderr, re.M))


def exporter_version(binary: str) -> str:
    result = subprocess.run([binary, "-version"], capture_output=True, text=True, timeout=30, check=False)
    found = re.search(r"Exporter v?(\d+\.\d+\.\d+)", result.stdout + result.stderr)
    return found[1] if found else "unknown"


class Exporter:
    """redis_exporter as a process of this machine, scraping one member as the sidecar does its own:
    the password from a file (the JSON map of address to password its --redis.password-file
    reads), module metrics where this build has them, the search metrics script."""

    def __init__(self, binary: str, workdir: Path, address: str, password: str, script: Path | None = SCRIPT):
        self.binary, self.address = binary, address
        self.port = free_port()
        self.log = workdir / f"exporter-{self.port}.log"
        self.password_file = workdir / f"exporter-{self.port}-passwords.json"
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({f"redis://{address}": password}, f)
        flags = exporter_flags(binary)
        self.argv = [binary, "-redis.addr", f"redis://{address}", "-redis.password-file", str(self.password_file)]
        self.argv += ["-web.listen-address", f"127.0.0.1:{self.port}", "-connection-timeout", "3s"]
        if script is not None:
            self.argv += ["-script", str(script)]
        self.argv += [f"-{f}" for f in ("include-modules-metrics", "lua-script-read-only") if f in flags]
        with open(self.log, "w") as log:
            # Nothing of this machine's environment: the exporter reads REDIS_* variables too.
            self.proc = subprocess.Popen(self.argv, stdout=log, stderr=subprocess.STDOUT, env={"PATH": "/usr/bin:/bin"})
        self.url = f"http://127.0.0.1:{self.port}/metrics"
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the exporter did not start:\n{self.log.read_text()}") from None
                time.sleep(0.05)

    def scrape_text(self) -> str:
        with urllib.request.urlopen(self.url, timeout=30) as reply:
            return reply.read().decode()

    def scrape(self) -> list[Sample]:
        return parse_exposition(self.scrape_text())

    def cpu_seconds(self) -> float:
        """User and system CPU time of the process, from /proc."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def stop(self) -> None:
        testbed.stop_process(self.proc)


def by_name(samples: list[Sample]) -> dict[str, list[Sample]]:
    out: dict[str, list[Sample]] = {}
    for sample in samples:
        out.setdefault(sample.name, []).append(sample)
    return out


def value(samples: list[Sample], name: str, **labels: str) -> float | None:
    """The value of the one sample of ``name`` with ``labels`` among its labels, or None."""
    found = [s for s in samples if s.name == name and all(s.label_dict.get(k) == v for k, v in labels.items())]
    if len(found) > 1:
        raise AssertionError(f"{len(found)} samples of {name} {labels}")
    return found[0].value if found else None


def canned_script(canned: Path, workdir: Path) -> Path:
    """The search metrics script with ``canned`` (Lua defining ``local call``) in place of its call."""
    text = SCRIPT.read_text()
    if text.count(SCRIPT_CALL_LINE) != 1:
        raise AssertionError(f"{SCRIPT.name}: no single line {SCRIPT_CALL_LINE!r} to put canned replies in")
    path = workdir / "search-metrics-canned.lua"
    path.write_text(text.replace(SCRIPT_CALL_LINE, canned.read_text().strip()))
    return path


# ------------------------------------------------------------------ promtool


def series_selector(sample: Sample) -> str:
    labels = ",".join(
        f'{k}="{v.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"' for k, v in sample.labels
    )
    return f"{sample.name}{{{labels}}}"


def number(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "Inf" if value > 0 else "-Inf"
    return repr(float(value))


def input_series(phases: list[tuple[list[Sample], int]]) -> list[dict]:
    """promtool's input_series of scrapes taken one per phase, each repeated ``count`` times at the
    test's interval; a series missing from a phase has no samples there ("_")."""
    keys: dict[str, None] = {}
    values: list[dict[str, float]] = []
    for samples, _count in phases:
        phase = {}
        for sample in samples:
            key = series_selector(sample)
            keys.setdefault(key, None)
            phase[key] = sample.value
        values.append(phase)
    out = []
    for key in keys:
        points = []
        for phase, (_samples, count) in zip(values, phases, strict=True):
            point = number(phase[key]) if key in phase else "_"
            points += [point] * count
        out.append({"series": key, "values": " ".join(points)})
    return out


def render_template(template: str, labels: dict[str, str]) -> str:
    """An annotation as Prometheus renders it, for the templates these rules use: {{ $labels.X }}."""
    rest = re.sub(r"\{\{\s*\$labels\.(\w+)\s*\}\}", lambda m: labels.get(m[1], ""), template)
    if "{{" in rest:
        raise AssertionError(f"a template beyond $labels: {template!r}")
    return rest


def expected_alert(alertname: str, labels: dict[str, str]) -> dict:
    """An exp_alerts entry: the series' labels and the rule's, the annotations rendered with them."""
    rule = alert_rules()[alertname]
    all_labels = {k: v for k, v in labels.items() if k != "__name__"}
    all_labels.update(rule.get("labels", {}))
    annotations = {
        k: render_template(v, {**all_labels, "alertname": alertname}) for k, v in rule["annotations"].items()
    }
    return {"exp_labels": all_labels, "exp_annotations": annotations}


def run_promtool_tests(tests: list[dict], workdir: Path, interval: str = "15s") -> subprocess.CompletedProcess:
    """promtool test rules on the PrometheusRule's groups and ``tests`` (promtool's test cases)."""
    rules = workdir / "rules.yaml"
    rules.write_text(yaml.safe_dump(rule_groups(), sort_keys=False))
    test_file = workdir / "rules_test.yaml"
    test_file.write_text(
        yaml.safe_dump(
            {"rule_files": [rules.name], "evaluation_interval": interval, "tests": tests},
            sort_keys=False,
            width=1 << 20,
        )
    )
    return subprocess.run(
        [promtool_binary() or "promtool", "test", "rules", test_file.name],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
