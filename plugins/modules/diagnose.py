#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: diagnose
short_description: Read-only health checks of a hypervisor host's guest networking, with fixes
version_added: 0.1.0
description:
  - Looks at the libvirt networks and bridges of a host and returns a list of findings. Each
    finding has a check id, a status (V(ok), V(warn), V(fail)), the evidence it saw, the fix in
    words and, where a module of this collection can apply it, the module call that would.
  - "Checks: C(libvirt_connection); C(bridge_exists), C(bridge_up), C(bridge_ports), C(bridge_mtu);
    C(ip_forward) (IPv4 and IPv6); C(masquerade) for each NAT subnet; C(forward_path) of each
    port forward (DNAT) through every base chain of the forward hook, policies and libvirt's
    reject rules included; C(outbound_path), the guests' own outbound connections and their
    replies through the same chains; C(input_path), the guests' DNS (UDP, TCP), DHCP and ping
    to the gateway through every base chain of the input hook (nft, iptables-nft, iptables-legacy,
    ufw's chains), with the rule that drops them and the command that lets them in;
    C(port_forward_duplicates) (a host port forwarded twice);
    C(dnsmasq_listening) on each gateway's port 53 (UDP, TCP) and 67;
    C(port53) taken by another server; C(nameservers) (each host nameserver probed for the
    networks' domains and a public test name, a REFUSED first nameserver detected and per-domain
    forwarders proposed); C(tap_drops) on bridge ports; C(libvirtd_log) messages, from log
    files and the journal; C(dhcp_duplicates); C(firewalld_zone) of each bridge; C(neighbours),
    failed or incomplete ARP entries on each bridge (a guest the host cannot reach);
    C(edns_size), answers for O(large_answer_name) larger than a network's dnsmasq
    C(edns-packet-max), or a path that drops fragments."
  - Networks come from libvirt (through libvirt-python) when it answers. Every other bridge of
    the host is looked at too, as a network of its own; NAT and a DNS/DHCP server on it are then
    assumed from a private address on the bridge, and what is missing is a V(warn), not a V(fail).
  - Changes nothing and always returns C(changed=false). The only packets it sends are DNS
    queries to the nameservers of O(resolv_conf).
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes.READ_ONLY
requirements:
  - iproute2 (C(ip)); nft and iptables-save when present; libvirt-python to read libvirt networks.
options:
  uri:
    description: libvirt connection URI.
    type: str
    default: qemu:///system
  libvirt:
    description: Ask libvirt for its networks. V(false) looks at the host's bridges only.
    type: bool
    default: true
  networks:
    description: Names of the libvirt networks to look at. Default all.
    type: list
    elements: str
  bridges:
    description: Names of the bridges to look at (libvirt networks on them included). Default all.
    type: list
    elements: str
  checks:
    description:
      - Run only these checks, named as the findings name them (their C(check) key). Default all.
      - V(bridge) is the group of V(bridge_exists), V(bridge_up), V(bridge_ports) and V(bridge_mtu).
    type: list
    elements: str
    choices: [bridge, bridge_exists, bridge_mtu, bridge_ports, bridge_up, dhcp_duplicates, dnsmasq_listening,
              edns_size, firewalld_zone, forward_path, input_path, ip_forward, libvirt_connection, libvirtd_log, masquerade,
              nameservers, neighbours, outbound_path, port53, port_forward_duplicates, tap_drops]
  resolv_conf:
    description: The resolv.conf whose nameservers are probed (the one libvirt's dnsmasq reads).
    type: path
    default: /etc/resolv.conf
  probe_dns:
    description: Send DNS probes to the nameservers of O(resolv_conf). V(false) sends no packet at all.
    type: bool
    default: true
  public_test_name:
    description: A public name every working upstream resolves, asked of each nameserver.
    type: str
    default: example.com
  large_answer_name:
    description:
      - A name with a large answer (a long TXT record, a zone's DNSKEY set) to ask each host
        nameserver for, over UDP with a 1232 and a 4096-byte EDNS payload and over TCP, for the
        C(edns_size) check. Not set, that check is not probed.
    type: str
  dns_domains:
    description:
      - Private domains to probe on each nameserver, besides the networks' domains and the
        C(search) domains of O(resolv_conf). The domains a REFUSED-first nameserver answers
        become per-domain forwarders in the proposed fix.
    type: list
    elements: str
    default: []
  probe_timeout:
    description: Seconds to wait for each DNS answer.
    type: float
    default: 2.0
  probe_budget:
    description: Seconds all DNS probes together may take; probes beyond it are reported as C(SKIPPED).
    type: float
    default: 20.0
  drop_threshold:
    description: Drops on a bridge port (rx plus tx) above this count are a V(warn).
    type: int
    default: 0
  counters_baseline:
    description:
      - The C(counters) of an earlier run. Drops are then counted since that run, not since the
        device was created, so a fix can be verified.
    type: dict
  log_files:
    description:
      - libvirtd log files to search for known error messages (the last MiB of each).
      - The journal is searched too (lines of libvirtd, virtnetworkd, virtqemud and dnsmasq) where
        C(journalctl) finds one. With neither a log file nor a journal, C(libvirtd_log) warns.
    type: list
    elements: path
    default: [/var/log/libvirt/libvirtd.log]
  log_max_age_hours:
    description: Ignore log lines with an older timestamp, and journal lines older than this.
    type: int
    default: 24
seealso:
  - module: hypervisor.network.guest_probe
"""

EXAMPLES = r"""
- name: Diagnose every network of the host
  hypervisor.network.diagnose:
  register: diag

- name: Fail the play on problems
  ansible.builtin.assert:
    that: diag.summary.fail == 0
    fail_msg: "{{ diag.findings | selectattr('status', 'equalto', 'fail') | map(attribute='summary') | list }}"

- name: One network; probe the private domain too
  hypervisor.network.diagnose:
    networks: [default]
    dns_domains: [corp.example]
    public_test_name: www.debian.org
"""

RETURN = r"""
findings:
  description: Findings, problems first (fail, then warn, then ok).
  returned: always
  type: list
  elements: dict
  contains:
    check:
      description: Check id.
      type: str
      sample: ip_forward
    status:
      description: V(ok), V(warn) or V(fail).
      type: str
      sample: fail
    subject:
      description: What the finding is about, such as a network, bridge, address or port forward.
      type: str
    summary:
      description: One line in words.
      type: str
    evidence:
      description: What was seen.
      type: list
      elements: str
    fix:
      description: The fix in words; null when there is nothing to fix.
      type: str
    fix_module:
      description: The collection module call that applies the fix (C(module), C(args)), or null.
      type: dict
      sample: {"module": "hypervisor.network.ip_forward", "args": {"ipv4": true}}
summary:
  description: Counts of findings per status and in total.
  returned: always
  type: dict
  sample: {"ok": 12, "warn": 1, "fail": 2, "total": 15}
networks:
  description:
    - The networks looked at, with their bridge, addresses, ports and guests (static hosts and
      leases), domain and DNS forwarders (libvirt networks).
  returned: always
  type: list
  elements: dict
uplink:
  description: The device of the host's IPv4 default route (null without one); the picture draws it as the way out.
  returned: always
  type: str
counters:
  description: Drop and packet counters of every bridge port; pass them back as O(counters_baseline).
  returned: always
  type: dict
dns_probes:
  description: Every DNS probe sent, with the server, name, answer code and time in ms.
  returned: always
  type: list
  elements: dict
port_forwards:
  description: The port forwards (DNAT rules) found in netfilter, one entry per rule.
  returned: always
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.module import ARGUMENT_SPEC, run
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
