# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Typed errors raised by helpers; only a module's main() turns them into fail_json."""

from __future__ import annotations

import gc


class HypervisorNetworkError(Exception):
    """A problem the user can act on; ``msg`` says what and how."""

    def __init__(self, msg, **details):
        super().__init__(msg)
        self.msg = msg
        self.details = details

    def fail_kwargs(self):
        kwargs = dict(self.details)
        kwargs["msg"] = self.msg
        return kwargs


class ValidationError(HypervisorNetworkError):
    """Bad input; raised before anything on the host is touched."""

    def __init__(self, field, value, reason):
        super().__init__(
            "%s: %r is not valid: %s" % (field, value, reason),
            field=field,
        )
        self.field = field
        self.value = value


class CommandError(HypervisorNetworkError):
    """A command the collection ran failed."""

    def __init__(self, cmd, rc, stdout, stderr, msg=None):
        text = msg or "command failed (rc=%s): %s: %s" % (rc, " ".join(cmd), (stderr or stdout).strip())
        super().__init__(text, cmd=cmd, rc=rc, stdout=stdout, stderr=stderr)


def run_module_main(module, work):
    """Call ``work(module)`` and report its result or its typed error.

    The one place where HypervisorNetworkError becomes fail_json, so helpers stay free of
    AnsibleModule plumbing.
    """
    try:
        result = work(module)
    except HypervisorNetworkError as exc:
        report, kwargs = module.fail_json, exc.fail_kwargs()
    else:
        report, kwargs = module.exit_json, result
    # The process ends as soon as the result is printed. On its way out Python walks every
    # tracked object once more in a last collection, and ansible-core's result scrub and JSON
    # encoding allocate enough to start full collections too: at 1000 port forwards the last
    # walk alone took 20 to 30 ms of a module run. Frozen objects are still freed with the
    # process; only the walks are skipped.
    gc.freeze()
    report(**kwargs)
