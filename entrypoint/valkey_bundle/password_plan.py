"""Plan the password: requirepass and masterauth through a generated config include.

A ``--requirepass`` argument would show the secret in every process list; an
include file (mode 0600, in a private directory of the server's uid) does not.
The include sits among the generated args, so it overrides a requirepass in the
config file (warned) and the user's own arguments override it (warned too).
"""

from .errors import UsageError


class PasswordPlan:
    """Where the generated include with requirepass/masterauth goes; the secret never prints."""

    __slots__ = ("include", "password")

    def __init__(self, include, password):
        self.include, self.password = include, password

    def as_dict(self):
        return {"from": self.password.variable, "include": self.include}


class Runtime:
    """Facts about this start, gathered before planning when a password include is needed.

    ``tmp_dirs``: [(directory, usable)] in order of preference ($TMPDIR, /tmp, /dev/shm).
    """

    __slots__ = ("euid", "pid", "tmp_dirs")

    def __init__(self, pid, euid, tmp_dirs):
        self.pid, self.euid, self.tmp_dirs = pid, euid, tmp_dirs


def plan_password(plan, password, config, runtime, identity):
    """requirepass + masterauth through a generated include, so no argv ever shows the secret."""
    variable = password.variable
    skipped = []
    for base, usable in runtime.tmp_dirs:
        if usable:
            break
        skipped.append(base)
    else:
        raise UsageError(
            f"{variable}: no writable directory for the generated password include (tried {', '.join(skipped)}); "
            "mount a tmpfs at /tmp or set TMPDIR"
        )
    if skipped:
        plan.warnings.append(f"{' and '.join(skipped)} not writable: the password include goes to {base}")
    uid = plan.run_as[0] if plan.run_as else (identity[0] if identity else runtime.euid)
    include = f"{base.rstrip('/')}/valkey-bundle-{uid}/generated-{runtime.pid}.conf"
    plan.password = PasswordPlan(include, password)
    for name in ("requirepass", "masterauth", "primaryauth"):
        current = config.settings.get(name)
        if current is None:
            continue
        origin = current[1]
        if name in config.late:
            plan.warnings.append(f"{variable}: {name} set by {origin} (the command line) wins over it")
        elif current[0] != [password.value]:
            plan.warnings.append(f"{variable} overrides {name} from {origin}")
    plan.notes.append(f"password from {variable}: requirepass and masterauth through {include}")
    return ["--include", include]
