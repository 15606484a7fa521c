"""The cluster half: what the entrypoint adds in cluster mode, and the helper that forms the
cluster beside the server.  Facts -> decisions -> actions, as the single-node half does:

facts      settings.py    VALKEY_CLUSTER_* read into the bundle's settings (syntax only)
           view.py        what members answer (CLUSTER INFO, CLUSTER NODES), read into data
           nodes_conf.py  this node's nodes.conf: its peers, whether it has any, their new IPs
decisions  plan.py        at the start: the announce settings, who creates the cluster (pure)
           decisions.py   in the helper: create, wait, join, forget, replicate, lost slots (pure)
actions    link.py        reaching the members: connect, ask, wait against one deadline; log
           bootstrap.py   the helper's steps in order, forked beside the server by start_helper
           form.py        the creator's steps: wait for every member, create the cluster
           join.py        the other members' steps: wait to be added, or join a formed cluster
           handover.py    bundle-healthcheck prestop: a primary hands its slots to a replica

The single-node half comes in here only, by the names in WAY_IN (``from .cluster import
plan_cluster``); each loads its module when first asked for, so a start outside cluster mode
loads none of them.  Nothing in this package imports the modules that come in.
"""

# name -> the module of this package that holds it
WAY_IN = {
    "read_cluster_env": "settings",
    "plan_cluster": "plan",
    "parse_nodes": "view",
    "refresh_file": "nodes_conf",
    "peerless": "nodes_conf",
    "needs_helper": "nodes_conf",
    "start_helper": "bootstrap",
    "hand_over": "handover",
}


def __getattr__(name):
    module = WAY_IN.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import sys

    # __import__, not importlib: importlib would load the warnings module on every start.
    __import__(f"{__name__}.{module}")
    return getattr(sys.modules[f"{__name__}.{module}"], name)
