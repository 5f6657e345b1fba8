# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one command runner: argv lists, C locale, no shell, and the one check-mode guard."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import tempfile
from dataclasses import dataclass

from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
)

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}


def _fsync_directory(directory):
    """Make a rename in ``directory`` durable (the new directory entry reaches the disk)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a directory; the rename is still atomic
    finally:
        os.close(fd)


@dataclass(frozen=True)
class Completed:
    """What ``Runner.change`` did. ``ran`` is False in check mode, where nothing ran (rc 0, no
    output): a caller that keeps account of the host (the jumps it put in place, a value to read
    back) asks this instead of the check mode, so the Runner stays the one check-mode guard."""

    ran: bool
    rc: int = 0
    out: str = ""
    err: str = ""


class Runner:
    """Runs commands for a module.

    ``read`` always runs (gathering state is safe in check mode). ``change`` is the only way to
    alter the host: in check mode it records the command and runs nothing. ``commands`` holds
    every change, run or not, for the result contract.
    """

    def __init__(self, module):
        self.module = module
        self.commands = []
        self._bins = {}
        self._reads = {}

    @property
    def check_mode(self):
        return bool(self.module.check_mode)

    def binary(self, name, required=True):
        if name not in self._bins:
            self._bins[name] = self.module.get_bin_path(name, required=False)
        path = self._bins[name]
        if not path and required:
            # also when an earlier question (``has``) found it missing
            raise HypervisorNetworkError(
                "the command %r is not installed on this host (looked in PATH, /usr/sbin, /sbin)" % name
            )
        return path

    def has(self, name):
        return self.binary(name, required=False) is not None

    def _run(self, argv, data=None, check_rc=True):
        argv = [self.binary(argv[0])] + list(argv[1:])
        # expand_user_and_vars off: run_command would otherwise expand '$VAR' and '~' in every
        # argv element, so a user's value would not reach the command as given
        # handle_exceptions off: run_command would otherwise fail_json itself when the command
        # cannot be run or stops reading its input (a broken pipe), and end the module before a
        # caller could put back what it had changed; here that is a CommandError like any other
        try:
            rc, out, err = self.module.run_command(
                argv, data=data, binary_data=data is not None, environ_update=C_LOCALE, check_rc=False,
                expand_user_and_vars=False, handle_exceptions=False,
            )
        except OSError as exc:
            raise CommandError(argv, exc.errno or 257, "", str(exc),
                               msg="could not run %s: %s" % (" ".join(argv), exc))
        if check_rc and rc != 0:
            raise CommandError(argv, rc, out, err)
        return rc, out, err

    def read(self, argv, check_rc=True, cached=False):
        """Run a command that only reads. With ``cached``, the same read twice in one task with
        no change in between is answered from memory (two gatherers often need one
        `iptables-save`); polling loops leave it off."""
        key = tuple(argv)
        if not cached or key not in self._reads:
            self._reads[key] = self._run(argv, check_rc=False)
        rc, out, err = self._reads[key]
        if check_rc and rc != 0:
            raise CommandError([self.binary(argv[0])] + list(argv[1:]), rc, out, err)
        return rc, out, err

    def prefetch(self, argvs):
        """Start several reads at once and keep their answers for ``read(..., cached=True)``.
        A run's first reads (the whole ruleset, the routes of each family) each wait for a
        process to start and finish; one after another they cost the sum, at once about the
        longest. Same argv, C locale and no shell as ``read``. A command that is not installed
        or cannot start is left to ``read``, which reports it."""
        started = []
        for argv in argvs:
            key = tuple(argv)
            path = self.binary(argv[0], required=False)
            if key in self._reads or path is None:
                continue
            try:
                process = subprocess.Popen(  # pylint: disable=consider-using-with
                    [path] + list(argv[1:]), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE, env=dict(os.environ, **C_LOCALE), close_fds=True,
                )
            except OSError:
                continue
            started.append((key, process))
        for key, process in started:
            out, err = process.communicate()
            self._reads[key] = (process.returncode, out.decode("utf-8", "surrogateescape"),
                                err.decode("utf-8", "surrogateescape"))

    def read_json(self, argv, cached=False):
        _rc, out, _err = self.read(argv, cached=cached)
        try:
            return json.loads(out) if out.strip() else None
        except ValueError as exc:
            raise CommandError(argv, 0, out, "", msg="%s printed no valid JSON: %s" % (argv[0], exc))

    def change(self, argv, data=None, shown=None):
        """Run a command that alters the host, unless in check mode; returns a Completed, whose
        ``ran`` says which it was.

        ``shown`` is what goes into ``commands`` when the literal argv is not the readable form
        (for example the script fed to ``nft -f -``).
        """
        self.commands.append(shown if shown is not None else " ".join(argv))
        if self.check_mode:
            return Completed(ran=False)
        self._reads.clear()
        rc, out, err = self._run(argv, data=data)
        return Completed(True, rc, out, err)

    def call(self, shown, action, *args):
        """Alter the host through an API rather than a command (a libvirt call, a staged file set):
        record ``shown`` in ``commands`` and run ``action(*args)`` unless in check mode. Returns what
        ``action`` returns, or None in check mode. This keeps the Runner the one check-mode guard
        for every kind of change. ``shown`` None records nothing: the collection's own bookkeeping
        on the host (a rollback watcher and its state file), which is not a command of the
        result."""
        if shown is not None:
            self.commands.append(shown)
        if self.check_mode:
            return None
        self._reads.clear()
        return action(*args)

    def write_file(self, path, content, mode=None):
        """Write ``content`` to ``path`` atomically, only when it differs. Returns True if changed.

        ``mode`` None keeps an existing file's mode (a file an admin made 0600 stays 0600) and
        gives a new file 0644; a given ``mode`` is enforced, also when only the mode is wrong (a
        NetworkManager keyfile that is not 0600 is ignored). The data is fsynced before the
        rename, so a crash leaves the old file or the new one, never an empty one.
        """
        try:
            current_mode = stat.S_IMODE(os.stat(path).st_mode)
        except FileNotFoundError:
            current_mode = None
        same = False
        if current_mode is not None:
            try:
                with open(path, "r", encoding="utf-8") as handle:
                    same = handle.read() == content
            except UnicodeDecodeError:
                same = False
        wanted_mode = mode if mode is not None else (0o644 if current_mode is None else current_mode)
        if same:
            if current_mode == wanted_mode:
                return False
            self.commands.append("chmod %04o %s" % (wanted_mode, path))
            if not self.check_mode:
                os.chmod(path, wanted_mode)
            return True
        self.commands.append("write %s" % path)
        if self.check_mode:
            return True
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hnet-")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(content)
                handle.flush()
                os.fsync(handle.fileno())
            os.chmod(tmp, wanted_mode)
            self.module.atomic_move(tmp, path)
        finally:
            if os.path.exists(tmp):  # atomic_move failed: leave no temp file behind
                os.unlink(tmp)
        # atomic_move copies the old file's attributes, or gives a new file the umask's
        # permissions: set the wanted mode after it
        os.chmod(path, wanted_mode)
        _fsync_directory(directory)
        return True

    def remove_file(self, path):
        if not os.path.exists(path):
            return False
        self.commands.append("remove %s" % path)
        if not self.check_mode:
            os.unlink(path)
        return True
