"""Read VALKEY_CLUSTER_* (syntax only; plan.py decides what they mean).

Imported only when one of them is set, so a plain start does not pay for it.
"""

from ..addresses import is_hostname, is_ip, parse_node_list
from ..env_values import check_text
from ..errors import UsageError

BOOTSTRAP_MODES = ("auto", "yes", "no")
_BLANKS = str.maketrans("\t\r\n", "   ")


def _value(environ, name):
    value = environ.get(name, "").strip(" \t\r\n")
    check_text(name, value)
    return value


def read_cluster_env(env, environ):
    """Fill the cluster fields of ``env`` (a settings.BundleEnv)."""
    # One member a line (a YAML block) is as good as commas or spaces.
    nodes = environ.get("VALKEY_CLUSTER_NODES", "").translate(_BLANKS).strip()
    check_text("VALKEY_CLUSTER_NODES", nodes)
    if nodes:
        try:
            env.cluster_nodes = parse_node_list(nodes, "VALKEY_CLUSTER_NODES")
        except ValueError as exc:
            raise UsageError(str(exc)) from None

    replicas = _value(environ, "VALKEY_CLUSTER_REPLICAS")
    if replicas:
        if not (replicas.isascii() and replicas.isdigit()):
            raise UsageError(f"VALKEY_CLUSTER_REPLICAS={replicas!r}: expected the replicas per primary (0, 1, ...)")
        env.cluster_replicas = int(replicas)

    bootstrap = _value(environ, "VALKEY_CLUSTER_BOOTSTRAP").lower()
    if bootstrap:
        if bootstrap not in BOOTSTRAP_MODES:
            raise UsageError(f"VALKEY_CLUSTER_BOOTSTRAP={bootstrap!r}: expected auto, yes or no")
        env.bootstrap = bootstrap

    timeout = _value(environ, "VALKEY_CLUSTER_BOOTSTRAP_TIMEOUT")
    if timeout:
        try:
            env.bootstrap_timeout = float(timeout)
        except ValueError:
            env.bootstrap_timeout = -1.0
        if not 0 < env.bootstrap_timeout < 1e7:
            raise UsageError(f"VALKEY_CLUSTER_BOOTSTRAP_TIMEOUT={timeout!r}: expected a number of seconds above 0")

    announce_ip = _value(environ, "VALKEY_CLUSTER_ANNOUNCE_IP")
    if announce_ip:
        if not is_ip(announce_ip):
            raise UsageError(f"VALKEY_CLUSTER_ANNOUNCE_IP={announce_ip!r}: not an IPv4 or IPv6 address")
        env.announce_ip = (announce_ip, "VALKEY_CLUSTER_ANNOUNCE_IP")
    elif environ.get("POD_IP"):
        env.announce_ip = (environ["POD_IP"].strip(), "POD_IP")  # checked by the plan if cluster mode uses it

    hostname = _value(environ, "VALKEY_CLUSTER_ANNOUNCE_HOSTNAME")
    if hostname:
        if not is_hostname(hostname):
            raise UsageError(
                f"VALKEY_CLUSTER_ANNOUNCE_HOSTNAME={hostname!r}: a host name has letters, digits, '-' and '.' only"
            )
        env.announce_hostname = hostname
