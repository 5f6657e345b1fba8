# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one command runner: argv lists, C locale, no shell, and the one check-mode guard."""

from __future__ import annotations

import json
import os
import tempfile

from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
)

C_LOCALE = {"LC_ALL": "C", "LANG": "C", "LANGUAGE": "C"}


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
            path = self.module.get_bin_path(name, required=False)
            if not path and required:
                raise HypervisorNetworkError(
                    "the command %r is not installed on this host (looked in PATH, /usr/sbin, /sbin)" % name
                )
            self._bins[name] = path
        return self._bins[name]

    def has(self, name):
        return self.binary(name, required=False) is not None

    def _run(self, argv, data=None, check_rc=True):
        argv = [self.binary(argv[0])] + list(argv[1:])
        rc, out, err = self.module.run_command(
            argv, data=data, binary_data=data is not None, environ_update=C_LOCALE, check_rc=False
        )
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

    def read_json(self, argv):
        _rc, out, _err = self.read(argv)
        try:
            return json.loads(out) if out.strip() else None
        except ValueError as exc:
            raise CommandError(argv, 0, out, "", msg="%s printed no valid JSON: %s" % (argv[0], exc))

    def change(self, argv, data=None, shown=None):
        """Run a command that alters the host, unless in check mode.

        ``shown`` is what goes into ``commands`` when the literal argv is not the readable form
        (for example the script fed to ``nft -f -``).
        """
        self.commands.append(shown if shown is not None else " ".join(argv))
        if self.check_mode:
            return 0, "", ""
        self._reads.clear()
        return self._run(argv, data=data)

    def write_file(self, path, content, mode=0o644):
        """Write ``content`` to ``path`` atomically, only when it differs. Returns True if changed."""
        try:
            with open(path, "r", encoding="utf-8") as handle:
                if handle.read() == content:
                    return False
        except FileNotFoundError:
            pass
        self.commands.append("write %s" % path)
        if self.check_mode:
            return True
        directory = os.path.dirname(path) or "."
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".hnet-")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        os.chmod(tmp, mode)
        self.module.atomic_move(tmp, path)
        # atomic_move gives a new file the umask's permissions: apply ``mode`` after it (a
        # NetworkManager keyfile that is not 0600 is ignored).
        os.chmod(path, mode)
        return True

    def remove_file(self, path):
        if not os.path.exists(path):
            return False
        self.commands.append("remove %s" % path)
        if not self.check_mode:
            os.unlink(path)
        return True
