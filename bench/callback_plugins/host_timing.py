# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Per host and task wall-clock seconds, written as JSON for bench/fleet_bench.py.

Not part of the collection (bench/ is not shipped): a callback the fleet benchmark enables with
ANSIBLE_CALLBACK_PLUGINS and ANSIBLE_CALLBACKS_ENABLED, so that the table of where the time goes
per host is measured from the run itself rather than guessed.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: host_timing
type: aggregate
short_description: Per host and task seconds, as JSON (HN_TIMING_OUT)
description:
  - Writes a JSON object of seconds per task per host to the file named by HN_TIMING_OUT at the end of the run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "host_timing"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self._started = {}
        self._seconds = {}

    def v2_runner_on_start(self, host, task):
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _done(self, result):
        key = (result._host.get_name(), result._task._uuid)
        started = self._started.pop(key, None)
        if started is None:
            return
        per_host = self._seconds.setdefault(key[0], {})
        name = result._task.get_name()
        per_host[name] = per_host.get(name, 0.0) + time.monotonic() - started

    v2_runner_on_ok = v2_runner_on_failed = v2_runner_on_skipped = v2_runner_on_unreachable = _done

    def v2_playbook_on_stats(self, stats):
        path = os.environ.get("HN_TIMING_OUT")
        if path:
            with open(path, "w") as handle:
                json.dump(self._seconds, handle, indent=1, sort_keys=True)
