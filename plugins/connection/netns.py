# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: netns
short_description: Run tasks inside a Linux network namespace of the controller
description:
  - Runs a host's tasks on the machine that runs Ansible, inside a named network namespace
    (C(ip netns exec)), so that a namespace can stand in for a hypervisor or a guest.
  - Optionally enters a mount namespace too, for sandbox hypervisors whose libvirtd keeps its
    sockets and state in a private mount namespace.
  - A namespace that does not exist is a clear error before anything runs.
author:
  - hypervisor.network developers (@hypervisor-network)
version_added: 0.1.0
extends_documentation_fragment:
  - connection_pipelining
options:
  netns_name:
    description:
      - Name of the network namespace, as listed by C(ip netns list).
      - Defaults to the inventory host name (of the variables listed, the last one set wins).
    type: str
    vars:
      - name: inventory_hostname
      - name: ansible_netns_name
  netns_mount_namespace:
    description:
      - Path of a mount namespace to enter as well, such as C(/proc/PID/ns/mnt) of a process
        started in it, or a file that namespace was bind-mounted on.
      - When set, the task runs through C(nsenter) with both namespaces instead of C(ip netns exec).
    type: path
    vars:
      - name: ansible_netns_mount_namespace
notes:
  - Needs root on the controller, as C(ip netns exec) does.
  - Files are copied on the controller's own file system, which the namespace shares.
  - A network namespace has its own interfaces, routes and netfilter tables, but not its own
    files. The modules persist by default, and through this connection they write into the
    B(controller's real) C(/etc) (C(/etc/sysctl.d), the nftables include and iptables restore
    files, C(/etc/systemd/system) units, network configuration files), where they would load at
    the controller's next boot. For a namespace that stands in for a host, turn persistence off
    or point it at a directory of its own, as the sandbox does, for example
    O(hypervisor.network.port_forward#module:persist=false), O(hypervisor.network.ip_forward#module:persist=false),
    O(hypervisor.network.bridge#module:persist=none), or the path options such as
    O(hypervisor.network.port_forward#module:persist_dir), O(hypervisor.network.port_forward#module:nftables_conf),
    O(hypervisor.network.port_forward#module:systemd_unit_dir) and O(hypervisor.network.ip_forward#module:sysctl_file).
  - With O(netns_mount_namespace), the task sees that mount namespace's files instead (the sandbox
    bind-mounts per-host directories over the libvirt paths there).
"""

EXAMPLES = r"""
# inventory.yml: a namespace standing in for a hypervisor
# all:
#   hosts:
#     hv1:
#       ansible_connection: hypervisor.network.netns
#       ansible_netns_name: sandbox-hv1
#       ansible_python_interpreter: "{{ ansible_playbook_python }}"

# Keep what the modules persist out of the controller's own /etc
- name: Port forwards in the namespace only, nothing for the controller's boot
  hypervisor.network.port_forward:
    config:
      - {host_port: 8080, destination: 10.0.0.2, destination_port: 80}
    persist: false

- name: Or persisted into a directory of the namespace's own
  hypervisor.network.ip_forward:
    ipv4: true
    sysctl_file: /srv/sandbox/hv1/sysctl.d/90-hypervisor-network.conf
    modules_load_file: /srv/sandbox/hv1/modules-load.d/hypervisor-network.conf
"""

import os
import shlex

from ansible.errors import AnsibleConnectionFailure
from ansible.plugins.connection.local import Connection as LocalConnection
from ansible.utils.display import Display

display = Display()

NETNS_RUN_DIR = "/run/netns"


class Connection(LocalConnection):
    """Local execution wrapped in ``ip netns exec`` (or ``nsenter``)."""

    transport = "hypervisor.network.netns"

    def _namespace_path(self):
        name = self.get_option("netns_name")
        if not name or "/" in name or name in (".", ".."):
            raise AnsibleConnectionFailure("netns: invalid network namespace name %r (set ansible_netns_name)" % (name,))
        path = os.path.join(NETNS_RUN_DIR, name)
        if not os.path.exists(path):
            known = sorted(os.listdir(NETNS_RUN_DIR)) if os.path.isdir(NETNS_RUN_DIR) else []
            raise AnsibleConnectionFailure(
                "netns: network namespace %r does not exist (known: %s); create it with 'ip netns add %s' "
                "or point ansible_netns_name at an existing one" % (name, ", ".join(known) or "none", name)
            )
        return name, path

    def _connect(self):
        self._namespace_path()
        return super()._connect()

    def wrap(self, cmd):
        """The argv that runs ``cmd`` (a shell string) inside the namespace(s)."""
        name, path = self._namespace_path()
        mount_ns = self.get_option("netns_mount_namespace")
        if mount_ns:
            if not os.path.exists(mount_ns):
                raise AnsibleConnectionFailure("netns: mount namespace %r does not exist" % mount_ns)
            return ["nsenter", "--net=%s" % path, "--mount=%s" % mount_ns, "--", "/bin/sh", "-c", cmd]
        return ["ip", "netns", "exec", name, "/bin/sh", "-c", cmd]

    def exec_command(self, cmd, in_data=None, sudoable=True):
        argv = self.wrap(cmd)
        display.vvv("NETNS EXEC %s" % argv[:-1], host=self._play_context.remote_addr)
        # The local plugin runs strings through its configured shell; a quoted string keeps that.
        return super().exec_command(shlex.join(argv), in_data=in_data, sudoable=sudoable)
