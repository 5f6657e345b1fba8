# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one builder of a module's result, so every module keeps the same contract.

``changed`` and ``commands`` always; ``before`` always; ``after`` only when something changed or
would change (ansible.netcommon's resource-module convention: a no-change run across a fleet
returns ``before`` alone); ``diff`` only when Ansible runs with ``--diff``. Module-specific keys
follow as keyword arguments.
"""

from __future__ import annotations


def build_result(module, changed, commands, before, after=None, diff=None, **extra):
    """Return the result dict for ``module``.

    ``after`` and ``diff`` may be callables, evaluated only when they are needed (reading the host
    back or rendering a diff costs time that a no-change run should not spend).
    """
    result = {"changed": bool(changed), "commands": list(commands), "before": before}
    if changed:
        result["after"] = after() if callable(after) else after
    if getattr(module, "_diff", False) and diff is not None:
        result["diff"] = diff() if callable(diff) else diff
    result.update(extra)
    return result
