# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Boot persistence of the netfilter modules: our own oneshot units, and the files they load
written as one transaction.

Why units of our own: the distribution's nftables.service loads /etc/nftables.conf, whose stock
content starts with `flush ruleset`, and its ExecStop flushes every table (libvirt's, Docker's);
firewalld Conflicts= it. Our units load our files only and do nothing on stop.

Why a transaction: a task that applied its rules and then failed to write the boot files would
leave a host whose next boot differs from what runs. Every file is first written in full next to
its target (a full disk or a read-only directory fails there, before any rule changes), the rules
are applied, and only then are the files renamed into place; a failing rename puts the earlier
ones back.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from typing import Optional

from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    HypervisorNetworkError,
    ValidationError,
)

NFT_UNIT = "hypervisor-network-nftables.service"
IPTABLES_UNIT = "hypervisor-network-iptables.service"
# The owners a boot must come after: their start (re)writes tables or flushes the ruleset
# (nftables.service's stock configuration starts with `flush ruleset`). After= on a unit that is
# not installed is ignored by systemd, so one text serves every host.
AFTER = "network-pre.target nftables.service firewalld.service libvirtd.service docker.service"
# What an earlier version added to the system's nftables configuration, for any persist_dir.
OLD_INCLUDE = re.compile(r'include "[^"\n]*/hypervisor-network-\*\.nft"')


@dataclass(frozen=True)
class FileOp:
    """Make ``path`` hold ``content`` with ``mode``; ``content`` None removes it."""

    path: str
    content: Optional[str]
    mode: int = 0o644


@dataclass(frozen=True)
class LinkOp:
    """A symlink ``path`` -> ``target`` (what `systemctl enable` makes)."""

    path: str
    target: str


def _current(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read(), os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        return None, None


def needed(op):
    """Whether ``op`` changes anything on the host."""
    if isinstance(op, LinkOp):
        return not (os.path.islink(op.path) or os.path.exists(op.path))
    content, mode = _current(op.path)
    if op.content is None:
        return content is not None or os.path.lexists(op.path)
    return content != op.content or mode != op.mode


# -- the units ----------------------------------------------------------------------------------


def systemd_word(value, field):
    """``value`` as one double-quoted word of a unit's command line: systemd unescapes C-style
    backslashes inside quotes, expands `%` specifiers and `$` variables, so each is escaped.
    Control characters have no safe spelling in every systemd version: refused."""
    if any(ord(char) < 32 or ord(char) == 127 for char in value):
        raise ValidationError(field, value, "control characters cannot be written into a systemd unit")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%").replace("$", "$$")
    return '"%s"' % escaped


def _unit(description, loops, persist_dir):
    """A oneshot unit whose command is `/bin/sh -c SCRIPT hypervisor-network PERSIST_DIR`: the
    directory reaches the script as "$1" (never spliced into the script's text), every file is
    tried, and the unit fails when one did not load (no `; true` hiding it)."""
    script = "rc=0; %s; exit $rc" % "; ".join(loops)
    if "'" in script or "\\" in script or "%" in script:
        raise AssertionError("the boot script must not need escaping: %r" % script)
    return (
        "# Managed by hypervisor.network.\n"
        "[Unit]\n"
        "Description=%s\n"
        "# After the other rule owners, so that a flush or rewrite of theirs at start-up comes first\n"
        "# and our FORWARD jumps stand above theirs. No ExecStop: stopping flushes nothing.\n"
        "After=%s\n"
        "\n"
        "[Service]\n"
        "Type=oneshot\n"
        "RemainAfterExit=yes\n"
        "ExecStart=/bin/sh -c '%s' hypervisor-network %s\n"
        "\n"
        "[Install]\n"
        "WantedBy=multi-user.target\n"
    ) % (description, AFTER, script.replace("$", "$$"), systemd_word(persist_dir, "persist_dir"))


def _loop(pattern, command):
    return 'for f in "$1"/%s; do [ -e "$f" ] || continue; %s "$f" || rc=1; done' % (pattern, command)


def nft_unit_text(persist_dir):
    """Loads every hypervisor-network-*.nft of ``persist_dir`` with `nft -f`: each file replaces
    only its own table (`table`, `delete table`, definition), so nothing else is flushed."""
    return _unit("hypervisor.network nftables tables", [_loop("hypervisor-network-*.nft", "nft -f")], persist_dir)


def iptables_unit_text(persist_dir, restores):
    """``restores``: [(file suffix such as 'nft-v4', restore command)] in load order."""
    loops = [_loop("hypervisor-network-*.%s" % suffix, "%s --noflush" % restore) for suffix, restore in restores]
    return _unit("hypervisor.network iptables rules", loops or ["true"], persist_dir)


def unit_ops(unit_dir, unit, text, target="multi-user.target"):
    path = os.path.join(unit_dir, unit)
    return [FileOp(path, text), LinkOp(os.path.join(unit_dir, "%s.wants" % target, unit), path)]


# -- migration from the versions that used nftables.service -------------------------------------


def without_old_include(text):
    """``text`` without the include lines an earlier version appended; None when it had none.
    Every other byte stays."""
    lines = text.splitlines(keepends=True)
    kept = [line for line in lines if not OLD_INCLUDE.fullmatch(line.rstrip("\n"))]
    return None if len(kept) == len(lines) else "".join(kept)


def migration_ops(conf):
    """Remove what an earlier version added to ``conf`` (its include line), nothing else.

    nftables.service is left as it is: earlier versions enabled it without recording whether it
    was enabled before, and it cannot be told apart from a service the administrator enabled.
    Disabling it could drop the administrator's own firewall at the next boot; leaving it costs
    nothing at boot (our unit loads after it). The result says so (see warning())."""
    content, mode = _current(conf)
    if content is None:
        return []
    kept = without_old_include(content)
    return [] if kept is None else [FileOp(conf, kept, mode)]


def migration_warning(conf, unit_dir):
    """What to tell the user after the include was removed, if nftables.service is enabled."""
    for target in ("sysinit.target", "multi-user.target"):
        link = os.path.join(unit_dir, "%s.wants" % target, "nftables.service")
        if os.path.lexists(link):
            return (
                "removed the include of hypervisor.network's files from %s (our own %s loads them now); "
                "nftables.service stays enabled because an earlier version of this collection may or may "
                "not have enabled it; if nothing else needs it, run 'systemctl disable nftables' (its stop "
                "flushes every table, libvirt's and Docker's included)" % (conf, NFT_UNIT)
            )
    return None


# -- the transaction ----------------------------------------------------------------------------


class FileTransaction:
    """Write several files as one: stage() writes every new content to a temporary file beside
    its target, commit() renames them into place (after the rules were applied), rollback()
    undoes a commit or drops what was staged.

    The check-mode guard is the Runner's (Runner.call): in check mode, staging records the
    commands and writes nothing, and commit has nothing to rename.
    """

    def __init__(self, runner, ops):
        self.runner = runner
        seen = {}
        for op in ops:
            seen[op.path] = op
        self.ops = [op for op in seen.values() if needed(op)]
        self.staged = {}
        self.prepared = []
        self.undo = []
        self.created = []

    @property
    def changed(self):
        return bool(self.ops)

    def stage(self):
        """Record every file operation and prepare it, through the Runner (in check mode it
        records and prepares nothing): a new content goes to a temporary file beside its
        target, a removal or a link checks that its directory is writable."""
        try:
            for op in self.ops:
                self.runner.call(_shown(op), self._prepare, op)
        except OSError as exc:
            self.rollback()
            raise _file_error(exc, "nothing was changed")

    def _prepare(self, op):
        if isinstance(op, FileOp) and op.content is not None:
            self.created.extend(_makedirs(os.path.dirname(op.path)))
            self.staged[op.path] = _write_temp(op)
        else:
            _check_writable(os.path.dirname(op.path))
        self.prepared.append(op)

    def commit(self):
        """Put every prepared operation in place (none in check mode: none was prepared)."""
        try:
            for op in self.prepared:
                self._commit_one(op)
        except OSError as exc:
            self.rollback()
            raise _file_error(exc, "the files written before were put back")
        for backup in [b for _what, _path, b in self.undo if b]:
            _unlink(backup)
        self.prepared = []
        self.undo = []
        self.created = []

    def _commit_one(self, op):
        backup = None
        if os.path.lexists(op.path) and not isinstance(op, LinkOp):
            backup = _temp_name(op.path, ".hnet-old-")
            os.link(op.path, backup)
        if isinstance(op, LinkOp):
            self.created.extend(_makedirs(os.path.dirname(op.path)))
            os.symlink(op.target, op.path)
            self.undo.append(("link", op.path, None))
        elif op.content is None:
            os.unlink(op.path)
            self.undo.append(("file", op.path, backup))
        else:
            os.replace(self.staged.pop(op.path), op.path)
            self.undo.append(("file", op.path, backup))

    def rollback(self):
        """Put back what commit() renamed, and drop staged files. Safe to call twice."""
        for _what, path, backup in reversed(self.undo):
            if backup:
                os.replace(backup, path)
            else:
                _unlink(path)
        self.undo = []
        for temp in self.staged.values():
            _unlink(temp)
        self.staged = {}
        self.prepared = []
        for directory in reversed(self.created):
            try:
                os.rmdir(directory)
            except OSError:
                pass
        self.created = []


def _shown(op):
    if isinstance(op, LinkOp):
        return "ln -s %s %s" % (op.target, op.path)
    return ("write %s" if op.content is not None else "remove %s") % op.path


def _temp_name(path, prefix):
    directory, base = os.path.split(path)
    fd, name = tempfile.mkstemp(dir=directory or ".", prefix=prefix + base + ".")
    os.close(fd)
    os.unlink(name)
    return name


def _write_temp(op):
    directory = os.path.dirname(op.path) or "."
    fd, temp = tempfile.mkstemp(dir=directory, prefix=".hnet-new-%s." % os.path.basename(op.path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(op.content)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, op.mode)
    except OSError:
        _unlink(temp)
        raise
    return temp


def _makedirs(directory):
    """Create ``directory`` and missing parents; the ones created, outermost first."""
    missing = []
    while directory and not os.path.isdir(directory):
        missing.insert(0, directory)
        directory = os.path.dirname(directory)
    for path in missing:
        os.mkdir(path)
    return missing


def _check_writable(directory):
    while directory and not os.path.isdir(directory):
        directory = os.path.dirname(directory)
    if directory and not os.access(directory, os.W_OK):
        raise PermissionError(13, "not writable", directory)


def _unlink(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def _file_error(exc, outcome):
    where = exc.filename or "a persistent file"
    return HypervisorNetworkError(
        "could not write the boot persistence (%s: %s); %s and the rules were left as they were"
        % (where, exc.strerror or exc, outcome),
        path=where,
    )
