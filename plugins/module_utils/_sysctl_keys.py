# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The sysctl module: any kernel keys a task names, runtime and persistent; want, have, plan, apply.

Built on the _sysctl engine that ip_forward uses, with the same ownership rule: the module owns
keys, not files. It edits only the lines of the keys a task names and keeps every other line, so
it and ip_forward (or two sysctl tasks) can share one file.

Bad input is found before anything is written: a key with no /proc/sys path in this kernel or
network namespace, or a value whose shape the kernel will not take (words where the key holds
integers, two integers where it holds one). What only the kernel can judge (a range, an order)
is found by writing: a refused write, or a value the kernel stores differently from what was
written, puts back every key this run already wrote and fails naming the key and the value.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
    ValidationError,
)
from ansible_collections.hypervisor.network.plugins.module_utils._lock import host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner
from ansible_collections.hypervisor.network.plugins.module_utils._sysctl import (
    DEFAULT_SYSCTL_FILE,
    KEYS_HEADER,
    PROC_SYS,
    _conf_path,
    edit_sysctl_text,
    proc_path,
    read_text,
    values_diff,
)

ARGUMENT_SPEC = dict(
    values=dict(type="dict", required=True),
    state=dict(type="str", default="present", choices=["present", "absent"]),
    persist=dict(type="bool", default=True),
    sysctl_file=dict(type="path", default=DEFAULT_SYSCTL_FILE),
)

# dotted components of letters, digits, '_' and '-' (net.bridge.bridge-nf-call-iptables)
KEY_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_-]*(\.[A-Za-z0-9_-]+)+\Z")
INT_RE = re.compile(r"^-?[0-9]+\Z")


# -- model ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Want:
    state: str
    values: dict  # key -> normalised value text (words joined by one space), in task order
    persist: bool
    sysctl_file: str


@dataclass(frozen=True)
class Have:
    values: dict  # key -> normalised value text, or None when /proc/sys has no such key
    sysctl_file_text: str | None = None
    read_only: frozenset = frozenset()  # keys this kernel or namespace shows but does not let us write


@dataclass(frozen=True)
class FileChange:
    path: str
    before: str | None
    after: str | None


@dataclass(frozen=True)
class Plan:
    targets: dict  # key -> the value it gets (present) or the keys whose lines go (absent)
    writes: tuple = ()  # (key, value) in task order
    file_changes: tuple = field(default_factory=tuple)

    @property
    def changed(self):
        return bool(self.writes or self.file_changes)


# -- want -----------------------------------------------------------------------------------

def _field(key):
    return "values[%s]" % key


def normalise(key, value):
    """A task's value as the text /proc/sys shows it, words joined by one space: an integer,
    a list of integers (ip_local_port_range) or a string. A boolean is 1 or 0."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        if not value or not all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            raise ValidationError(_field(key), value, "a list must hold integers only, such as [32768, 60999]")
        return " ".join(str(item) for item in value)
    if isinstance(value, float):
        raise ValidationError(_field(key), value, "sysctl values are integers or text, not fractions")
    if not isinstance(value, str):
        raise ValidationError(_field(key), value, "must be an integer, a list of integers or a string")
    if not value.strip():
        raise ValidationError(_field(key), value, "an empty value cannot be written")
    if not value.isprintable() and any(char not in " \t" for char in value if not char.isprintable()):
        raise ValidationError(_field(key), value, "a value cannot contain control characters such as newlines")
    words = value.split()
    if all(INT_RE.match(word) for word in words):
        return " ".join(str(int(word)) for word in words)  # "0010" is 10 to the kernel
    return " ".join(words)


def want_from_params(params):
    """Validate module parameters and build the desired state, before anything is touched."""
    raw = params.get("values")
    if not isinstance(raw, dict) or not raw:
        raise ValidationError("values", raw, "name at least one key, such as {net.ipv4.ip_local_port_range: 32768 60999}")
    values = {}
    for key, value in raw.items():
        if not isinstance(key, str) or not KEY_RE.match(key):
            raise ValidationError(
                "values", key,
                "a key is dotted words of letters, digits, '_' and '-', such as net.core.rmem_max "
                "(the slash form and interface names that contain dots are not supported)",
            )
        values[key] = normalise(key, value) if params["state"] == "present" else None
    return Want(
        state=params["state"],
        values=values,
        persist=params["persist"],
        sysctl_file=_conf_path("sysctl_file", params["sysctl_file"]),
    )


# -- have -----------------------------------------------------------------------------------

def read_key(key, root=PROC_SYS):
    """The normalised value of a key, or None if this kernel or namespace has no such key."""
    path = proc_path(key, root)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return " ".join(handle.read().split())
    except OSError as exc:
        raise HypervisorNetworkError("%s: %s cannot be read (%s); the module manages readable keys only"
                                     % (key, path, exc.strerror or exc))


def gather(want, root=PROC_SYS):
    """Read the current state. Only reads, so it is the same in check mode."""
    return Have(
        values=dict((key, read_key(key, root)) for key in want.values),
        sysctl_file_text=read_text(want.sysctl_file),
        read_only=frozenset(key for key in want.values
                            if os.path.isfile(proc_path(key, root)) and not os.access(proc_path(key, root), os.W_OK)),
    )


# -- plan -----------------------------------------------------------------------------------

def sysctl_line(key, value):
    return "%s = %s\n" % (key, value)


def _check_shape(key, wanted, current):
    """A value the kernel holds as integers must be given as the same number of integers."""
    have_words, want_words = current.split(), wanted.split()
    if not have_words or not all(INT_RE.match(word) for word in have_words):
        return
    if not all(INT_RE.match(word) for word in want_words):
        raise ValidationError(_field(key), wanted, "the kernel holds %s here (now %r): give %s" % (
            "an integer" if len(have_words) == 1 else "%d integers" % len(have_words), current,
            "an integer" if len(have_words) == 1 else "%d integers" % len(have_words)))
    if len(want_words) != len(have_words):
        raise ValidationError(_field(key), wanted, "the kernel holds %d integer(s) here (now %r), not %d" % (
            len(have_words), current, len(want_words)))


def plan(want, have, root=PROC_SYS):
    """Pure: which keys to write and how the file changes to go from ``have`` to ``want``.
    Raises ValidationError for a key the kernel lacks or a value of the wrong shape."""
    writes = []
    if want.state == "present":
        for key, wanted in want.values.items():
            current = have.values.get(key)
            if current is None:
                raise ValidationError(_field(key), wanted, "this kernel (or network namespace) has no such key: %s "
                                      "does not exist" % proc_path(key, root))
            _check_shape(key, wanted, current)
            if current != wanted and key in have.read_only:
                raise ValidationError(_field(key), wanted, "%s is read-only here (now %r); some net.core keys can only "
                                      "be set in the host's own network namespace" % (proc_path(key, root), current))
            if current != wanted:
                writes.append((key, wanted))
    file_changes = []
    if want.state == "absent" or want.persist:
        after = edit_sysctl_text(have.sysctl_file_text, want.values, remove=want.state == "absent",
                                 order=tuple(want.values), line=sysctl_line, header=KEYS_HEADER)
        if after != have.sysctl_file_text:
            file_changes.append(FileChange(want.sysctl_file, have.sysctl_file_text, after))
    return Plan(targets=dict(want.values), writes=tuple(writes), file_changes=tuple(file_changes))


# -- apply ----------------------------------------------------------------------------------

def _write(runner, key, value):
    return runner.change(["sysctl", "-w", "%s=%s" % (key, value)])


def _put_back(runner, written, have):
    """Best effort: the keys this run wrote get their old values again, newest first."""
    for key in reversed(written):
        try:
            _write(runner, key, have.values[key])
        except HypervisorNetworkError:
            pass


def apply(runner, plan_, have, root=PROC_SYS):
    """Write the keys, check what the kernel stored, then the file; a refusal puts back what this
    run wrote and fails naming the key and the value."""
    written = []
    for key, value in plan_.writes:
        try:
            done = _write(runner, key, value)
            if done.err.strip():  # procps sysctl reports some refusals on stderr with status 0
                raise CommandError(["sysctl", "-w", "%s=%s" % (key, value)], 0, "", done.err)
        except CommandError as exc:
            _put_back(runner, written, have)
            raise HypervisorNetworkError(
                "values[%s]: the kernel refused %r (%s); nothing was changed"
                % (key, value, (exc.details.get("stderr") or exc.msg).strip()), **exc.details
            )
        written.append(key)
        if done.ran:  # the kernel holds what it made of the value only where the write really ran
            stored = read_key(key, root)
            if stored != value:
                _put_back(runner, written, have)
                raise HypervisorNetworkError(
                    "values[%s]: %r was written but the kernel stored %r (it clamps or rounds this key); "
                    "give the value the kernel keeps. Nothing was changed" % (key, value, stored)
                )
    for change in plan_.file_changes:
        if change.after is None:
            runner.remove_file(change.path)
        else:
            runner.write_file(change.path, change.after)


# -- the module -----------------------------------------------------------------------------

def run(module, root=PROC_SYS):
    """The work of the sysctl module: want -> have -> plan -> apply; returns the result."""
    want = want_from_params(module.params)
    runner = Runner(module)
    with host_lock():
        have = gather(want, root)
        plan_ = plan(want, have, root)
        apply(runner, plan_, have, root)
        before = dict((key, have.values.get(key)) for key in want.values)
        if runner.check_mode:
            after = dict(before, **dict(plan_.writes))
        else:
            after = dict((key, read_key(key, root)) for key in want.values)
    return build_result(
        module, plan_.changed, runner.commands, before, after=after,
        diff=lambda: values_diff(plan_, before, after, list(want.values)),
        sysctl_file=want.sysctl_file if want.state == "present" and want.persist else None,
    )
