#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: bridge
short_description: Linux bridges with ports, STP, MTU, addresses and VLAN filtering
version_added: 0.1.0
description:
  - Creates, updates or removes a Linux bridge at runtime with C(ip) and C(bridge), and writes its persistent
    configuration for systemd-networkd, NetworkManager or ifupdown.
  - Runtime state is read as JSON (C(ip -j), C(bridge -j)). The module gathers the host state, plans the commands
    and applies them once, under a per-host lock. In check mode it returns the same commands without running them.
  - When a port to enslave carries the host's addresses or routes (an uplink such as C(eno1)), they move to the
    bridge in one C(ip -batch) step; then the module checks that O(uplink_check_target) answers ICMP echo and, if
    it does not within O(uplink_check_timeout) seconds, undoes the run (all but VLAN table changes) and fails.
  - Ports this module enslaved are marked with the interface alias C(hypervisor.network:bridge=NAME); a marked port
    that leaves O(ports) is released. Ports it did not enslave are left alone unless O(exclusive_ports=true).
    After a reboot, the ports the bridge's own persistent files list count as marked, so the first run after a
    boot changes nothing.
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
options:
  name:
    description: Name of the bridge, at most 15 bytes.
    type: str
    required: true
  state:
    description: Whether the bridge should exist. V(absent) deletes it, its persistent files, and the VLAN
      sub-interfaces listed in O(ports) with O(ports[].vlan_parent).
    type: str
    choices: [present, absent]
    default: present
  ports:
    description:
      - The bridge's ports. Left out, ports are not managed.
      - A port must exist, unless O(ports[].vlan_parent) is given, which creates it as an 802.1Q sub-interface.
    type: list
    elements: dict
    suboptions:
      name:
        description: Interface name of the port.
        type: str
        required: true
      vlan_parent:
        description: Create the port as a VLAN sub-interface of this interface.
        type: str
      vlan_id:
        description: VLAN id of the sub-interface, 1-4094. Defaults to the number after the last dot of O(ports[].name).
        type: int
      vlans:
        description: VLAN ids (V(10)) and ranges (V(20-29)) the port carries tagged. Needs O(vlan_filtering=true).
        type: list
        elements: str
      pvid:
        description: The port's PVID, the VLAN untagged frames arriving on it belong to.
        type: int
      untagged:
        description: VLANs that leave the port untagged. Defaults to the PVID.
        type: list
        elements: str
  exclusive_ports:
    description: Release every port of the bridge that is not in O(ports), not only the ones this module enslaved.
    type: bool
    default: false
  steal:
    description: Take a port that is already a port of another bridge.
    type: bool
    default: false
  stp:
    description: Spanning tree on or off. Left out, it is not changed.
    type: bool
  forward_delay:
    description: STP forward delay in seconds (2-30 with STP on).
    type: int
  ageing_time:
    description:
      - How long, in seconds (0-1000000), a learned MAC address stays in the bridge's forwarding database
        after the last frame from it; 0 makes the bridge flood every frame like a hub. The kernel's
        default is 300.
      - Given in seconds; C(ip link) and the kernel count hundredths of a second (C(ageing_time 30000)).
      - Persisted as C(AgeingTimeSec=) (systemd-networkd), C(ageing-time=) (NetworkManager) or the
        C(ageing_time) option of the C(ip link add) line (ifupdown). Left out, it is neither changed nor persisted.
      - During an STP topology change the kernel reports a short ageing time (twice O(forward_delay)) instead
        of the configured one; RV(before) and RV(after) then show C(ageing_time) as null, and a given
        O(ageing_time) is set again, since the configured value cannot be read then.
    type: int
  mtu:
    description: MTU of the bridge and of its listed ports.
    type: int
  mac:
    description: MAC address of the bridge.
    type: str
  addresses:
    description: IPv4 and IPv6 addresses with prefix length. Given, the bridge has exactly these global addresses.
    type: list
    elements: str
  vlan_filtering:
    description: Make the bridge VLAN-aware.
    type: bool
  default_pvid:
    description: PVID a port gets when it joins, 0 for none.
    type: int
  vlans:
    description: The bridge's own VLANs (the ones the host itself talks on through the bridge device).
    type: list
    elements: str
  pvid:
    description: The bridge device's own PVID.
    type: int
  untagged:
    description: The bridge device's own untagged VLANs. Defaults to O(pvid).
    type: list
    elements: str
  persist:
    description:
      - Where the configuration is made persistent. V(auto) uses the network manager running on the host
        (NetworkManager, then systemd-networkd, then ifupdown) and says which in RV(persist); V(none) is runtime only.
    type: str
    choices: [auto, networkd, networkmanager, ifupdown, none]
    default: auto
  networkd_dir:
    description: Directory for the systemd-networkd C(.netdev) and C(.network) files.
    type: path
    default: /etc/systemd/network
  networkmanager_dir:
    description: Directory for the NetworkManager keyfile profiles.
    type: path
    default: /etc/NetworkManager/system-connections
  ifupdown_dir:
    description: Directory for the ifupdown stanza (sourced by C(/etc/network/interfaces)).
    type: path
    default: /etc/network/interfaces.d
  uplink_check_target:
    description: Address that must answer ICMP echo after an uplink move. Defaults to the moved default gateway.
    type: str
  uplink_check_timeout:
    description: Seconds to wait for O(uplink_check_target) before rolling back.
    type: int
    default: 30
notes:
  - Runs as root. Needs C(ip) and C(bridge) from iproute2.
  - The marks that tell which ports this module enslaved live in the kernel; after a reboot the persisted
    configuration rebuilds the bridge, and the ports listed in the bridge's own files stand for the marks.
  - The persisted configuration rebuilds the VLAN tables exactly as the module left them at runtime. With
    systemd-networkd a VLAN-filtering bridge is written with C(DefaultPVID=none) and every port's table in full (the
    kernel's default entry included where the table is not managed), because networkd only adds VLANs and never
    removes the default one; a port that joins later (a guest's tap) then carries no VLAN until it is configured.
    An explicit non-zero O(default_pvid) is written as it is.
  - With ifupdown, lines for a port that does not exist at boot (a guest's tap or veth) are skipped instead of
    failing the stanza, and a VLAN sub-interface's parent is brought up before the sub-interface is made.
"""

EXAMPLES = r"""
- name: A bridge for guests on the uplink eno1, carrying the host's address over safely
  hypervisor.network.bridge:
    name: br0
    ports:
      - name: eno1
    stp: false
    forward_delay: 0
    persist: networkd

- name: An isolated guest bridge with an address, jumbo frames and STP
  hypervisor.network.bridge:
    name: brguests
    ports:
      - name: vnet0
      - name: vnet1
    addresses: [10.20.0.1/24, fd00:20::1/64]
    mtu: 9000
    stp: true
    forward_delay: 4
    persist: none

- name: A bridge per VLAN on a tagged uplink
  hypervisor.network.bridge:
    name: br20
    ports:
      - name: eno1.20
        vlan_parent: eno1

- name: One VLAN-aware bridge; guests on VLAN 10 and 20, a trunk to the switch
  hypervisor.network.bridge:
    name: brvlan
    vlan_filtering: true
    default_pvid: 1
    ports:
      - name: eno2
        vlans: ["10", "20-29"]
      - name: vnet2
        pvid: 10
      - name: vnet3
        pvid: 20

- name: Remove a bridge and its persistent files
  hypervisor.network.bridge:
    name: brguests
    state: absent
"""

RETURN = r"""
commands:
  description: The commands run (in check mode, that would run), file writes and removals included.
  returned: always
  type: list
  elements: str
  sample: ["ip link add name br0 type bridge stp_state 0", "ip link set dev br0 up"]
before:
  description: The bridge before the task, as read back from the host.
  returned: always
  type: dict
  sample: {"name": "br0", "present": false}
after:
  description:
    - The bridge after the task, as read back (in check mode, as planned).
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when something changed (in check mode, when something would change)
  type: dict
  sample: {"name": "br0", "present": true, "stp": false, "forward_delay": 0, "ageing_time": 300, "mtu": 1500, "ports": [{"name": "eno1"}]}
persist:
  description: The persister used, the network manager whose files keep the bridge across a reboot (networkd, networkmanager, ifupdown), or none.
  returned: always
  type: str
  sample: networkd
persist_reason:
  description: Why that persister was chosen.
  returned: always
  type: str
  sample: "persist: auto found networkd active on the host"
files:
  description: The persistent configuration files that belong to the bridge.
  returned: always
  type: list
  elements: str
  sample: ["/etc/systemd/network/10-hnet-br0.netdev"]
uplink_check:
  description: The outcome of the reachability check after an uplink move.
  returned: when an uplink moved
  type: str
  sample: "10.0.0.254 answered after the move"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hypervisor.network.plugins.module_utils._bridge.module import ARGUMENT_SPEC, run
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
