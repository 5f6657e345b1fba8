# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""IP forwarding and bridge netfilter sysctls: want, have, plan, apply.

Runtime values live in /proc/sys (per network namespace, bridge-nf-call-* too on current
kernels); persistence is one file in /etc/sysctl.d plus, for bridge-nf-call-*, a
modules-load.d file so br_netfilter is loaded before systemd-sysctl applies the file at boot.

The module owns keys, not files: it edits the lines of the keys a task manages in place (as
ansible.posix.sysctl does for one key) and keeps every other line, comment and their order, so
two tasks that share a file (bridge_host's bridge-nf-call-* and a later ip_forward-only task), or
a file such as /etc/sysctl.conf, keep what the other wrote. A file is removed only when it
carries our header and nothing else is left in it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from ansible.module_utils.parsing.convert_bool import boolean

from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
    ValidationError,
)
from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

PROC_SYS = "/proc/sys"

IPV4_FORWARD = "net.ipv4.ip_forward"
IPV6_FORWARD = "net.ipv6.conf.all.forwarding"
BRIDGE_NF_IPTABLES = "net.bridge.bridge-nf-call-iptables"
BRIDGE_NF_IP6TABLES = "net.bridge.bridge-nf-call-ip6tables"
BRIDGE_NF_ARPTABLES = "net.bridge.bridge-nf-call-arptables"

# Module option -> sysctl key, in the order they are written and rendered. net.ipv4.ip_forward,
# not net.ipv4.conf.all.forwarding: writing ip_forward sets every conf.*.forwarding as well,
# and the kernel resets conf.all.forwarding whenever ip_forward is written.
OPTION_KEYS = (
    ("ipv4", IPV4_FORWARD),
    ("ipv6", IPV6_FORWARD),
    ("bridge_nf_call_iptables", BRIDGE_NF_IPTABLES),
    ("bridge_nf_call_ip6tables", BRIDGE_NF_IP6TABLES),
    ("bridge_nf_call_arptables", BRIDGE_NF_ARPTABLES),
)
KNOWN_KEYS = tuple(key for _option, key in OPTION_KEYS)
BRIDGE_KEYS = (BRIDGE_NF_IPTABLES, BRIDGE_NF_IP6TABLES, BRIDGE_NF_ARPTABLES)
BR_NETFILTER = "br_netfilter"

MANAGED_HEADER = "# Managed by hypervisor.network (ip_forward module). Local changes are overwritten.\n"
# The header of a file the sysctl module creates. Each module edits only its own keys' lines, so
# both can share one file whichever of them created it; an empty file under either header goes.
KEYS_HEADER = "# Managed by hypervisor.network (sysctl module). Local changes to its keys are overwritten.\n"
OUR_HEADERS = (MANAGED_HEADER, KEYS_HEADER)
# Marks the br_netfilter line the module adds to a modules-load file it did not create, so that
# line, and no line someone else wrote, is what it takes out again.
MODULE_MARK = "# br_netfilter: for net.bridge.bridge-nf-call-* (hypervisor.network ip_forward module)\n"

DEFAULT_SYSCTL_FILE = "/etc/sysctl.d/90-hypervisor-network.conf"
DEFAULT_MODULES_LOAD_FILE = "/etc/modules-load.d/hypervisor-network.conf"

ARGUMENT_SPEC = dict(
    state=dict(type="str", default="present", choices=["present", "absent"]),
    # raw, not bool: Ansible refuses an explicit null for a bool option that has a default, and
    # null is how a task says "leave IPv4 forwarding alone" (want_from_params converts the value)
    ipv4=dict(type="raw", default=True),
    ipv6=dict(type="bool"),
    bridge_nf_call_iptables=dict(type="bool"),
    bridge_nf_call_ip6tables=dict(type="bool"),
    bridge_nf_call_arptables=dict(type="bool"),
    persist=dict(type="bool", default=True),
    sysctl_file=dict(type="path", default=DEFAULT_SYSCTL_FILE),
    modules_load_file=dict(type="path", default=DEFAULT_MODULES_LOAD_FILE),
)


# -- model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Want:
    state: str
    settings: dict  # sysctl key -> True, False or None (leave alone)
    persist: bool
    sysctl_file: str
    modules_load_file: str


@dataclass(frozen=True)
class Have:
    values: dict  # sysctl key -> int, or None when the key does not exist in this kernel/netns
    sysctl_file_text: str | None = None
    modules_load_file_text: str | None = None


@dataclass(frozen=True)
class FileChange:
    path: str
    before: str | None  # None: the file does not exist
    after: str | None  # None: remove the file


@dataclass(frozen=True)
class Plan:
    targets: dict  # every key this run manages -> the value it should have (0 or 1)
    load_modules: tuple = ()
    writes: tuple = ()  # (key, value) in order
    module_at_boot: bool = False  # br_netfilter is listed in the modules-load file after the plan
    file_changes: tuple = field(default_factory=tuple)

    @property
    def changed(self):
        return bool(self.load_modules or self.writes or self.file_changes)


# -- want -----------------------------------------------------------------------------------

def _conf_path(field_name, value):
    """A persistence path: absolute, one line, and a *.conf file, the only files that
    systemd-sysctl and systemd-modules-load read."""
    if not isinstance(value, str) or not value:
        raise ValidationError(field_name, value, "a path is required")
    if not value.isprintable():
        raise ValidationError(field_name, value, "a path cannot contain control characters such as newlines")
    if not os.path.isabs(value):
        raise ValidationError(field_name, value, "the path must be absolute")
    if not value.endswith(".conf") or value.endswith("/.conf"):
        raise ValidationError(field_name, value, "the file name must end in .conf, or it is not read at boot")
    return os.path.normpath(value)


def _switch(field_name, value):
    """True, False or None (leave alone), from what Ansible accepts as a boolean."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return boolean(value, strict=True)
    except TypeError:
        raise ValidationError(field_name, value, "must be true, false or null (null leaves it alone)")


def want_from_params(params):
    """Validate module parameters and build the desired state, before anything is touched."""
    settings = dict((key, _switch(option, params.get(option))) for option, key in OPTION_KEYS)
    sysctl_file = _conf_path("sysctl_file", params["sysctl_file"])
    modules_load_file = _conf_path("modules_load_file", params["modules_load_file"])
    if sysctl_file == modules_load_file:
        raise ValidationError("modules_load_file", params["modules_load_file"], "it must differ from sysctl_file")
    if params["state"] == "present" and all(value is None for value in settings.values()):
        raise ValidationError(
            "ipv4", None,
            "with state=present at least one of %s must be true or false" % ", ".join(o for o, _k in OPTION_KEYS),
        )
    return Want(
        state=params["state"],
        settings=settings,
        persist=params["persist"],
        sysctl_file=sysctl_file,
        modules_load_file=modules_load_file,
    )


# -- have -----------------------------------------------------------------------------------

def proc_path(key, root=PROC_SYS):
    return os.path.join(root, *key.split("."))


def read_value(key, root=PROC_SYS):
    """The integer value of a sysctl, or None if this kernel or namespace does not have it."""
    try:
        with open(proc_path(key, root), "r", encoding="ascii") as handle:
            return int(handle.read().strip())
    except FileNotFoundError:
        return None


def read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def gather(want, root=PROC_SYS):
    """Read the current state. Only reads, so it is the same in check mode."""
    return Have(
        values=dict((key, read_value(key, root)) for key in KNOWN_KEYS),
        sysctl_file_text=read_text(want.sysctl_file),
        modules_load_file_text=read_text(want.modules_load_file),
    )


# -- render and parse -----------------------------------------------------------------------

def sysctl_line(key, value):
    """Our line for one key. A line that turns something off starts with '-' so that
    systemd-sysctl and `sysctl -p` ignore a key the kernel lacks (br_netfilter not loaded, IPv6
    disabled): a missing switch is off."""
    return "%s%s = %d\n" % ("" if value else "-", key, int(value))


def render_sysctl_file(targets, order=KNOWN_KEYS, line=sysctl_line, header=MANAGED_HEADER):
    """A new sysctl.d file for ``targets`` (key -> value): ``header``, keys in ``order``, each
    rendered by ``line`` (ip_forward's 0/1 switches by default)."""
    return header + "".join(line(key, targets[key]) for key in order if key in targets)


def render_modules_load_file():
    return MANAGED_HEADER + BR_NETFILTER + "\n"


def _line_key(line):
    """The sysctl key a line of a sysctl.d file sets, dotted, or None for a comment or blank."""
    text = line.strip()
    if not text or text[0] in "#;" or "=" not in text:
        return None
    return text.split("=", 1)[0].strip().lstrip("-").strip().replace("/", ".")


def parse_sysctl_keys(text):
    """The keys this module knows that a sysctl.d file sets (so absent knows what it managed)."""
    keys = []
    for line in (text or "").splitlines():
        key = _line_key(line)
        if key in KNOWN_KEYS and key not in keys:
            keys.append(key)
    return keys


def parse_sysctl_values(text):
    """Known key -> the value the file sets (the last line wins, as in sysctl -p)."""
    values = {}
    for line in (text or "").splitlines():
        key = _line_key(line)
        if key in KNOWN_KEYS:
            try:
                values[key] = int(line.split("=", 1)[1].strip())
            except ValueError:
                values[key] = None
    return values


def is_ours(text):
    return text is not None and text.startswith(MANAGED_HEADER)


def _only_header_left(text):
    """A file of ours (either module's header) with nothing but the header left."""
    return text is not None and any(
        text.startswith(header) and not text[len(header):].strip() for header in OUR_HEADERS
    )


def edit_sysctl_text(text, targets, remove=False, order=KNOWN_KEYS, line=sysctl_line, header=MANAGED_HEADER):
    """``text`` with the lines of ``targets``' keys set (or, with ``remove``, taken out) and every
    other line as it was. The first line of a key is edited in place and later lines of the same
    key go (they would win at boot); a key without a line is added at the end, in ``order``. A
    file that does not exist is created with ``header``. ``line`` renders one key's line. Returns
    None for a file to remove: ours (either header) and empty."""
    if text is None:
        return None if remove or not targets else render_sysctl_file(targets, order, line, header)
    lines, done = [], set()
    for old_line in text.splitlines(True):
        key = _line_key(old_line)
        if key not in targets:
            lines.append(old_line)
        elif not remove and key not in done:
            lines.append(line(key, targets[key]))
            done.add(key)
    missing = [key for key in order if key in targets and key not in done and not remove]
    if missing and lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.extend(line(key, targets[key]) for key in missing)
    result = "".join(lines)
    return None if _only_header_left(result) else result


def edit_modules_load_text(text, needed):
    """``text`` with br_netfilter listed when ``needed``; when not, with the line we added taken
    out (in our own file, any br_netfilter line; in another file, only the one after our mark).
    Returns None for a file to remove: ours and empty."""
    lines = (text or "").splitlines(True)
    listed = any(line.strip() == BR_NETFILTER for line in lines)
    if needed:
        if listed:
            return text
        if text is None:
            return render_modules_load_file()
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        return "".join(lines) + ("" if is_ours(text) else MODULE_MARK) + BR_NETFILTER + "\n"
    if text is None:
        return None
    kept = []
    for line in lines:
        if line.strip() == BR_NETFILTER and (is_ours(text) or (kept and kept[-1] == MODULE_MARK)):
            if kept and kept[-1] == MODULE_MARK:
                kept.pop()
            continue
        kept.append(line)
    result = "".join(kept)
    return None if _only_header_left(result) else result


def render_values(values, keys=None):
    """Values as `key = value` lines for the diff, in ``keys``' order (by default the forwarding
    keys' own order); a missing key shows as absent."""
    keys = [key for key in KNOWN_KEYS if key in values] if keys is None else keys
    return "".join("%s = %s\n" % (key, "(absent)" if values.get(key) is None else values[key]) for key in keys)


# -- plan -----------------------------------------------------------------------------------

def _targets(want, have):
    if want.state == "present":
        return dict((key, int(value)) for key, value in want.settings.items() if value is not None)
    # absent turns off what the options name and what the module's own file recorded earlier,
    # so `state: absent` alone undoes an earlier run with other options.
    managed = set(key for key, value in want.settings.items() if value is not None)
    if is_ours(have.sysctl_file_text):  # in a file of ours every known key was set by a task
        managed.update(parse_sysctl_keys(have.sysctl_file_text))
    return dict((key, 0) for key in KNOWN_KEYS if key in managed)


def plan(want, have):
    """Pure: what to load, write and persist to go from ``have`` to ``want``."""
    targets = _targets(want, have)
    missing = set(key for key in targets if have.values.get(key) is None)
    # br_netfilter's switches appear only once it is loaded, and then they default to on, so a
    # bridge switch wanted off must be written too whenever this run loads the module.
    load_modules = [BR_NETFILTER] if any(targets[key] for key in BRIDGE_KEYS if key in missing) else []
    writes = []
    for key in KNOWN_KEYS:
        if key not in targets:
            continue
        target, current = targets[key], have.values.get(key)
        if key in missing and key in BRIDGE_KEYS and load_modules:
            writes.append((key, target))
        elif key in missing:
            if not target:
                continue  # the switch does not exist, so it is off already
            if key == IPV6_FORWARD:
                raise HypervisorNetworkError(
                    "ipv6: this host has no %s (IPv6 is disabled, for example by ipv6.disable=1 on the "
                    "kernel command line); enable IPv6 or set ipv6 to false or leave it out" % IPV6_FORWARD
                )
            raise HypervisorNetworkError("this kernel has no %s (no %s)" % (key, proc_path(key)))
        elif current != target:
            writes.append((key, target))

    file_changes = []
    needs_module_at_boot = False
    if want.state == "absent" or want.persist:
        # only the lines of the keys this run manages change; br_netfilter is needed at boot
        # while any bridge switch in the resulting file (from this task or another) is on
        sysctl_after = edit_sysctl_text(have.sysctl_file_text, targets, remove=want.state == "absent")
        needs_module_at_boot = any(parse_sysctl_values(sysctl_after).get(key) for key in BRIDGE_KEYS)
        wanted_files = (
            (want.sysctl_file, have.sysctl_file_text, sysctl_after),
            (want.modules_load_file, have.modules_load_file_text,
             edit_modules_load_text(have.modules_load_file_text, needs_module_at_boot)),
        )
    else:
        wanted_files = ()  # runtime only: files are left as they are
    for path, before, after in wanted_files:
        if before != after:
            file_changes.append(FileChange(path=path, before=before, after=after))

    return Plan(targets=targets, load_modules=tuple(load_modules), writes=tuple(writes),
                module_at_boot=needs_module_at_boot, file_changes=tuple(file_changes))


def predicted_values(plan_, have):
    """What /proc/sys will hold after the plan; the `after` of check mode."""
    values = dict((key, have.values.get(key)) for key in plan_.targets)
    values.update(dict(plan_.writes))
    return values


# -- apply ----------------------------------------------------------------------------------

def _load_module(runner, name, root=PROC_SYS):
    try:
        loaded = runner.change(["modprobe", name]).ran
    except CommandError as exc:
        raise HypervisorNetworkError(
            "bridge_nf_call_*: the kernel module %s is needed and could not be loaded (%s); install the "
            "kernel's modules package or leave the bridge_nf_call_* options out" % (name, exc.msg),
            **exc.details
        )
    except HypervisorNetworkError as exc:  # modprobe itself is not installed
        raise HypervisorNetworkError(
            "bridge_nf_call_*: the kernel module %s is needed and could not be loaded: %s" % (name, exc.msg)
        )
    if loaded and read_value(BRIDGE_NF_IPTABLES, root) is None:
        raise HypervisorNetworkError(
            "bridge_nf_call_*: modprobe %s succeeded but %s still does not exist in this network "
            "namespace (the kernel may be too old for per-namespace bridge netfilter settings)"
            % (name, proc_path(BRIDGE_NF_IPTABLES, root))
        )


def apply(runner, plan_, root=PROC_SYS):
    """Carry out the plan through the runner; in check mode the runner only records."""
    for name in plan_.load_modules:
        _load_module(runner, name, root)
    for key, value in plan_.writes:
        runner.change(["sysctl", "-w", "%s=%d" % (key, value)])
    for change in plan_.file_changes:
        if change.after is None:
            runner.remove_file(change.path)
        else:
            runner.write_file(change.path, change.after)


# -- the module -----------------------------------------------------------------------------

def values_diff(plan_, before, after, keys=None):
    """The --diff entries of a sysctl run: the values, then each file it changes."""
    diffs = [dict(before_header="sysctl values", after_header="sysctl values",
                  before=render_values(before, keys), after=render_values(after, keys))]
    for change in plan_.file_changes:
        diffs.append(dict(before_header=change.path, after_header=change.path,
                          before=change.before or "", after=change.after or ""))
    return diffs


def run(module, root=PROC_SYS):
    """The work of the ip_forward module: want -> have -> plan -> apply; returns the result."""
    want = want_from_params(module.params)
    runner = Runner(module)
    with host_lock():
        have = gather(want, root)
        plan_ = plan(want, have)
        apply(runner, plan_, root)
        before = dict((key, have.values.get(key)) for key in plan_.targets)
        if runner.check_mode:
            after = predicted_values(plan_, have)
        else:
            after = dict((key, read_value(key, root)) for key in plan_.targets)
    persisted = want.state == "present" and want.persist
    return build_result(
        module, plan_.changed, runner.commands, before, after=after,
        diff=lambda: values_diff(plan_, before, after),
        sysctl_file=want.sysctl_file if persisted else None,
        modules_load_file=want.modules_load_file if persisted and plan_.module_at_boot else None,
    )
