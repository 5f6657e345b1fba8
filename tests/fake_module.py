# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one stand-in for AnsibleModule in unit tests (tests/ is on sys.path: ``from fake_module
import FakeModule``). It sits at the Runner's edge only: it records the argv the Runner would run
and answers every command with ``rc`` and ``stderr``; everything above it is the real code."""

from __future__ import annotations


class FakeModule:
    def __init__(self, check_mode=False, rc=0, stderr="", diff=False, params=None):
        self.check_mode = check_mode
        self._diff = diff
        self.params = dict(params or {})
        self.ran = []
        self._rc, self._stderr = rc, stderr

    def get_bin_path(self, name, required=False, opt_dirs=None):
        return "/usr/sbin/" + name

    def run_command(self, argv, **kwargs):
        self.ran.append(argv)
        return self._rc, "", self._stderr
