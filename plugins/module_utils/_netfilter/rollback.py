# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Putting our rules back: after a failure half-way through a run, and after a
``rollback_timeout`` that the controller did not confirm.

Every owner a run changes (our nftables table, our iptables chains of one variant) is read before
its first change (``snapshot``); ``restore_steps`` are the commands that make it that again,
whatever the failed run left. They touch our table or our chains and jumps only.

``rollback_timeout``: after the apply, the steps go to a state file next to the host lock and a
detached watcher process (plain Python, no collection code: the module's files are gone when it
runs) waits. The controller confirms over a fresh connection (plugins/action/*.py), which leaves
a marker under the lock; without it, the watcher takes the host lock and runs the steps when the
timeout ends. The watcher holds a lock on its state file for as long as it lives: a state file
that nobody holds was left by a watcher that died (killed, out of memory) and will never act.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from typing import Optional, Tuple

from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError


@dataclass(frozen=True)
class Step:
    """A command that restores, and what it reads on stdin."""

    argv: Tuple[str, ...]
    data: Optional[str] = None


def run_step(runner, step):
    shown = "%s <<EOF\n%sEOF" % (" ".join(step.argv), step.data) if step.data is not None else " ".join(step.argv)
    runner.change(list(step.argv), data=step.data, shown=shown)


# -- what restores an owner ---------------------------------------------------------------------

_ORDER = {"table": 0, "chain": 1, "set": 2, "map": 2, "flowtable": 2, "element": 3, "rule": 4}


def nft_restore_document(family, table, snapshot):
    """`nft -j -f` input that replaces ``table`` with what ``snapshot`` (its `nft -j list table`
    output, None where it did not exist) held: one transaction, other tables untouched."""
    ref = {"family": family, "name": table}
    commands = [{"add": {"table": dict(ref)}}, {"delete": {"table": dict(ref)}}]
    objects = [obj for obj in (snapshot or {}).get("nftables", []) if "metainfo" not in obj]
    objects.sort(key=lambda obj: _ORDER.get(next(iter(obj)), 5))
    commands.extend({"add": obj} for obj in objects)
    return {"nftables": commands}


def _sections(chains, text):
    """{table: (our chains declared, in order; -A lines of our chains; Counter of (parent, chain)
    jumps from other chains to ours)} from iptables-save output."""
    ours = {(table, chain) for table, chain, _parent in chains.values()}
    names = {chain for _table, chain in ours}
    found = {}
    table = None
    for line in text.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
            continue
        if table is None:
            continue
        declared, lines, jumps = found.setdefault(table, ([], [], Counter()))
        if line.startswith(":"):
            name = line[1:].split(" ", 1)[0]
            if (table, name) in ours:
                declared.append(name)
        elif line.startswith("-A "):
            words = line.split()
            if (table, words[1]) in ours:
                lines.append(line)
            elif len(words) == 4 and words[2] == "-j" and words[3] in names:
                jumps[(words[1], words[3])] += 1
    return found


def iptables_restore_script(chains, before, now):
    """The `iptables-restore --noflush` script that turns our chains (``chains``: the rule set's
    {role: (table, chain, parent)}) and their jumps from ``now`` (iptables-save text) back into
    ``before``: the saved lines verbatim, so a rule we would not render comes back too. Empty
    when nothing differs. A re-inserted jump goes to the top, where we always put it."""
    old, new = _sections(chains, before), _sections(chains, now)
    empty = ([], [], Counter())
    out = []
    for table in sorted(set(old) | set(new)):
        b_chains, b_lines, b_jumps = old.get(table, empty)
        n_chains, n_lines, n_jumps = new.get(table, empty)
        if (b_chains, b_lines, b_jumps) == (n_chains, n_lines, n_jumps):
            continue
        out.append("*%s" % table)
        for (parent, chain), count in sorted((n_jumps - b_jumps).items()):
            out.extend(["-D %s -j %s" % (parent, chain)] * count)
        for chain in b_chains + [c for c in n_chains if c not in b_chains]:
            out.append(":%s - [0:0]" % chain)
        out.extend(b_lines)
        for (parent, chain), count in sorted((b_jumps - n_jumps).items()):
            out.extend(["-I %s 1 -j %s" % (parent, chain)] * count)
        out.extend("-X %s" % chain for chain in n_chains if chain not in b_chains)
        out.append("COMMIT")
    return "\n".join(out) + "\n" if out else ""


class RuntimeGuard:
    """Snapshots of the owners a run changes, each taken just before its first change."""

    def __init__(self, runner):
        self.runner = runner
        self.owners = []

    def before_change(self, owner):
        if not any(known is owner for known, _snapshot in self.owners):
            self.owners.append((owner, owner.snapshot()))

    def steps(self):
        """What puts every owner back, read against what is there now (last changed first)."""
        steps = []
        for owner, snapshot in reversed(self.owners):
            steps.extend(owner.restore_steps(snapshot))
        return steps

    def rollback(self, error):
        """Put every owner back after ``error``; if that fails too, say both."""
        try:
            for step in self.steps():
                run_step(self.runner, step)
        except HypervisorNetworkError as exc:
            raise HypervisorNetworkError(
                "%s; putting the previous rules back failed too: %s" % (error.msg, exc.msg), **error.details
            ) from exc


# -- rollback_timeout: the watcher and the confirmation -----------------------------------------

# Runs detached, after the module's own files are gone: standard library only. Waits for the
# confirmation marker until the timeout, then takes the host lock (so it never interleaves with a
# task) and, unconfirmed, runs the steps and leaves their outcome in "<state>.done". File
# descriptor argv[2] is its state file, locked by the run that armed it and handed over: the
# watcher keeps it open, and with it the lock, until it exits.
WATCHER = r"""
import fcntl, json, os, subprocess, sys, time
state_path = sys.argv[1]
held = int(sys.argv[2])
with open(state_path) as handle:
    state = json.load(handle)
confirmed = state_path + ".confirmed"
deadline = time.monotonic() + state["timeout"]
while time.monotonic() < deadline and not os.path.exists(confirmed):
    time.sleep(0.2)
with open(state["lock"], "a+") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not os.path.exists(confirmed):
        results = []
        for step in state["steps"]:
            data = step["data"].encode() if step["data"] is not None else None
            proc = subprocess.run(step["argv"], input=data, capture_output=True,
                                  env=dict(os.environ, LC_ALL="C", LANG="C"))
            results.append({"argv": step["argv"], "rc": proc.returncode,
                            "stderr": proc.stderr.decode("utf-8", "replace")})
        with open(state_path + ".tmp", "w") as handle:
            json.dump({"token": state["token"], "status": "rolled_back", "steps": results}, handle)
        os.replace(state_path + ".tmp", state_path + ".done")
    for path in (state_path, confirmed):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
"""


def state_path(lock_path, rule_set, token):
    """One state file per armed run: a watcher only ever sees its own files."""
    return "%s.rollback-%s-%s.json" % (lock_path, rule_set, token)


def pending(lock_path, rule_set):
    """(waiting, abandoned): the state file of an unconfirmed rollback of ``rule_set`` whose
    watcher still waits, or None; and the state files whose watcher is gone (called under the
    host lock, so no watcher is starting or finishing meanwhile)."""
    prefix = "%s.rollback-%s-" % (os.path.basename(lock_path), rule_set)
    directory = os.path.dirname(lock_path) or "."
    waiting, abandoned = None, []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        if name.startswith(prefix) and name.endswith(".json"):
            path = os.path.join(directory, name)
            if _watched(path):
                waiting = waiting or path
            else:
                abandoned.append(path)
    return waiting, abandoned


def forget(paths):
    """Remove the state files of watchers that are gone (``pending``'s abandoned ones)."""
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _watched(path):
    """Does a live watcher hold ``path``? Its lock says so: taking it fails while the watcher
    lives, and succeeds once it is gone, however it died."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def arm(runner, lock_path, rule_set, timeout, steps):
    """Start the watcher for ``steps``; returns what the controller needs to confirm."""
    token = secrets.token_hex(16)
    path = state_path(lock_path, rule_set, token)
    state = {"token": token, "timeout": timeout, "lock": lock_path,
             "steps": [{"argv": [runner.binary(s.argv[0])] + list(s.argv[1:]), "data": s.data} for s in steps]}
    temp = path + ".tmp"
    with open(os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as handle:
        json.dump(state, handle)
    os.replace(temp, path)
    # locked before the watcher starts and while this run still holds the host lock: no other run
    # can see the state file unheld while its watcher is starting
    held = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen(  # pylint: disable=consider-using-with
            [sys.executable, "-c", WATCHER, path, str(held)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, close_fds=True, pass_fds=(held,), start_new_session=True, cwd="/",
        )
    finally:
        os.close(held)  # the watcher's copy keeps the lock
    return {"pending": True, "token": token, "timeout": timeout, "watcher_pid": proc.pid, "state": path}


def confirm(lock_path, rule_set, token):
    """Keep what an earlier run applied (called under the host lock). Fails when the watcher
    already put the previous rules back, or when there is nothing of ``token`` to confirm."""
    if not token or not token.isalnum():
        raise HypervisorNetworkError("_rollback_confirm: %r is not a rollback token" % (token,))
    path = state_path(lock_path, rule_set, token)
    done = path + ".done"
    if os.path.exists(done):
        with open(done, "r", encoding="utf-8") as handle:
            outcome = json.load(handle)
        os.unlink(done)
        raise HypervisorNetworkError(
            "the confirmation came after rollback_timeout: the previous %s rules were already put back "
            "and nothing was persisted; run the task again (with a longer rollback_timeout)" % rule_set,
            rollback=outcome,
        )
    try:
        with open(path, "r", encoding="utf-8") as handle:
            state = json.load(handle)
    except FileNotFoundError:
        state = {}
    if state.get("token") != token:
        raise HypervisorNetworkError(
            "no pending rollback of %s with this token under %s (the host rebooted, or another run "
            "replaced it): nothing was confirmed" % (rule_set, path)
        )
    # The marker stops the watcher; the state goes now, so that a watcher that died cannot
    # leave the rule set looking pending.
    with open(path + ".confirmed", "w", encoding="utf-8") as handle:
        handle.write(token + "\n")
    os.unlink(path)
    return {"pending": False, "confirmed": True, "timeout": state.get("timeout")}
