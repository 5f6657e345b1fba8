# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""port_forward confirms ``rollback_timeout`` the way masquerade does (see masquerade.py)."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.action.masquerade import ActionModule as _Confirming


class ActionModule(_Confirming):
    pass
