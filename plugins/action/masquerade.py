# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Controller side of masquerade and port_forward: the confirmation of ``rollback_timeout``.

Without ``rollback_timeout`` the module runs as any other. With it, the module applies the rules,
leaves a watcher on the host that puts the previous rules back when the timeout ends, and returns
a token. This plugin then drops the connection and confirms over a new one: only a controller
that can still reach the host after the change keeps it. A rule that cut the way in (a forward of
the SSH port, a masquerade that breaks the route back) makes the confirmation fail, and the host
undoes the change by itself. The confirming run writes the boot files, so a reboot never loads
rules that were not confirmed.
"""

from __future__ import annotations

from ansible.errors import AnsibleError
from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = False

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        del tmp
        args = dict(self._task.args)
        if "_rollback_confirm" in args:
            result.update(failed=True, msg="_rollback_confirm is set by the collection itself, not by a task")
            return result
        applied = self._execute_module(module_args=args, task_vars=task_vars)
        result.update(applied)
        armed = applied.get("rollback") or {}
        if applied.get("failed") or not armed.get("pending"):
            return result

        confirm_args = {name: value for name, value in args.items() if name != "rollback_timeout"}
        confirm_args["_rollback_confirm"] = armed["token"]
        try:
            # A fresh connection: a persistent one (SSH ControlPersist) would outlive a rule that
            # blocks new connections, and confirm what the next play cannot use.
            self._connection.reset()
            confirmed = self._execute_module(module_args=confirm_args, task_vars=task_vars)
        except AnsibleError as exc:
            # No clean-up over a connection that just failed: it would turn this explanation
            # into a bare "unreachable".
            self._connection._shell.tmpdir = None
            result.update(
                failed=True,
                msg="the rules were applied, but the host could not be reached again to confirm them (%s); "
                    "the previous rules come back by themselves within rollback_timeout (%s s), and nothing "
                    "was persisted" % (exc, armed.get("timeout")),
            )
            return result
        if confirmed.get("failed"):
            result.update(failed=True, msg=confirmed.get("msg"), confirmation=confirmed)
            return result
        result["commands"] = list(applied.get("commands", [])) + list(confirmed.get("commands", []))
        result["persisted"] = confirmed.get("persisted")
        result["rollback"] = dict(armed, pending=False, confirmed=True)
        return result
