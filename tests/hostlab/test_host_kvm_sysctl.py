# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""kvm_host's socket buffer limits on a real host: the role's own sysctl task file, with the
role's defaults, sets the global keys net.core.rmem_max and wmem_max in a Debian 12 and a Debian 13 VM (never on
this machine) through hypervisor.network.sysctl, next to ip_forward in the same sysctl.d file;
the values come back after a real reboot (systemd-sysctl reads the file) and the first converge
after the boot changes nothing."""

from __future__ import annotations

import pytest

from hostlab.fixtures import bookworm_image, trixie_image  # noqa: F401  # pylint: disable=unused-import
from hostlab.lab import HostLab

pytestmark = pytest.mark.hostlab

FILE = "/etc/sysctl.d/90-hypervisor-network.conf"

PLAY = """
- hosts: all
  gather_facts: false
  tasks:
    - name: Forwarding, as kvm_host sets it
      hypervisor.network.ip_forward:
        ipv4: true
    - name: The role's kernel keys, with its defaults
      ansible.builtin.include_role:
        name: hypervisor.network.kvm_host
        tasks_from: sysctl.yml
"""


def values(hostlab, vm):
    out = hostlab.ssh(vm, "sysctl -n net.core.rmem_max net.core.wmem_max net.ipv4.ip_forward").stdout.split()
    return [int(word) for word in out]


@pytest.mark.parametrize("suite", ["bookworm", "trixie"])
def test_socket_buffer_limits_are_set_persisted_and_survive_a_reboot(request, suite):
    hostlab = HostLab(request.getfixturevalue("%s_image" % suite))
    try:
        vm = hostlab.start(hostlab.add_vm())
        before = values(hostlab, vm)
        assert before[:2] != [8388608, 8388608], "the image already has the role's values: the test would prove nothing"
        hostlab.ssh(vm, "printf '# by hand\\nvm.swappiness = 10\\n' >> %s" % FILE)

        _proc, first = hostlab.playbook(PLAY)
        assert first[vm.name]["failed"] == 0 and first[vm.name]["changed"] == 2
        assert values(hostlab, vm) == [8388608, 8388608, 1]
        text = hostlab.ssh(vm, "cat %s" % FILE).stdout
        assert text == ("# by hand\nvm.swappiness = 10\nnet.ipv4.ip_forward = 1\n"
                        "net.core.rmem_max = 8388608\nnet.core.wmem_max = 8388608\n"), text

        hostlab.reboot(vm)
        assert values(hostlab, vm) == [8388608, 8388608, 1]
        assert hostlab.ssh(vm, "sysctl -n vm.swappiness").stdout.strip() == "10"
        proc, again = hostlab.playbook(PLAY)
        assert again[vm.name]["changed"] == 0, proc.stdout[-6000:]
    finally:
        hostlab.close()
