# -*- coding: utf-8 -*-
"""Test-only: the netns connection, except that after a reset() the host can no longer be
reached, as a controller that lost its host through a rule it just applied would find it."""

from __future__ import annotations

from ansible.errors import AnsibleConnectionFailure
from ansible_collections.hypervisor.network.plugins.connection import netns

DOCUMENTATION = netns.DOCUMENTATION.replace("name: netns", "name: lossy_netns", 1)


class Connection(netns.Connection):
    transport = "lossy_netns"

    def reset(self):
        self._lost = True
        super().reset()

    def exec_command(self, cmd, in_data=None, sudoable=True):
        if getattr(self, "_lost", False):
            raise AnsibleConnectionFailure("lossy_netns: %s cannot be reached any more" % self.get_option("netns_name"))
        return super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
