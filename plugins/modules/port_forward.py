#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: port_forward
short_description: DNAT port forwards to guests with their forward-accept rules, atomically
version_added: 0.1.0
description:
  - Manages port forwards from the host to guests (DNAT), together with the rules that accept
    the forwarded traffic, and optionally hairpin NAT so the host itself and guests on the
    destination's subnet can use the forward too.
  - The whole set is applied in one transaction (one C(nft -f), or one C(iptables-restore
    --noflush) per IP family) into a table or chains the collection owns; nothing of libvirt,
    firewalld, Docker or ufw is flushed or rewritten.
  - A forward is identified by O(config[].protocol), O(config[].host_address),
    O(config[].in_interface) and O(config[].host_port). Two forwards that would catch the same
    packets but send them to different places are refused before anything changes.
  - Only packets addressed to the host itself are forwarded (C(fib daddr type local) or the
    C(addrtype) match) unless O(config[].host_address) names one address.
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes
  - hypervisor.network.netfilter
options:
  config:
    description: The port forwards.
    type: list
    elements: dict
    suboptions:
      protocol:
        description:
          - C(both) makes a TCP and a UDP forward.
          - Two forwards that catch the same packets (a C(both) forward and a C(udp) forward of
            the same host port, say) must be one forward given twice, with the same target,
            O(config[].allowed_sources), O(config[].hairpin), O(config[].hairpin_sources) and
            O(config[].comment); otherwise the run is refused before anything changes, naming
            the entry and the field; give one forward all its sources instead.
        type: str
        choices: [tcp, udp, both]
        default: tcp
      host_port:
        description: Port on the host, or a range C(LOW-HIGH).
        type: str
        required: true
      destination:
        description:
          - Address of the guest, IPv4 or IPv6. Required unless O(state=deleted).
          - Unspecified (C(0.0.0.0), C(::)), broadcast, multicast and loopback addresses are refused.
        type: str
      destination_port:
        description:
          - Port on the guest, or a range as long as O(config[].host_port). Defaults to the host port.
        type: str
      in_interface:
        description:
          - Only forward what arrives on this interface (the uplink).
          - A Linux interface name that both backends can hold exactly, else it is refused before
            anything changes; no double quote, backslash, white space or control character, and
            no trailing C(*) or C(+) (a wildcard in nft or iptables).
        type: str
      host_address:
        description: Only forward what is addressed to this host address.
        type: str
      allowed_sources:
        description:
          - Only these source networks (CIDR) are forwarded; other sources reach the host itself,
            not the guest. Empty means everybody. With O(state=merged) the lists are united.
        type: list
        elements: str
      hairpin:
        description:
          - Let the host itself (traffic to its own address) and the guests on the destination's
            subnet use the forward too, by DNAT of locally generated traffic and masquerade of
            the guests' hairpin connections.
        type: bool
      hairpin_sources:
        description:
          - Networks whose connections through the forward are masqueraded for hairpin.
            Defaults to the host's directly connected subnet that holds the destination.
          - Of the same IP version as O(config[].destination).
        type: list
        elements: str
      comment:
        description: A comment stored with the rules (no double quotes, backslashes or newlines; 128 bytes).
        type: str
  coexistence:
    description:
      - What to do when another rule owner would drop the forwarded traffic. Every forward is
        walked through the forward-hook chains of the others (libvirt, Docker, ufw, firewalld,
        any nftables table, iptables-nft chains, and iptables-legacy chains, which nftables does
        not show but the kernel runs too); an accept in our table cannot beat a drop in theirs.
        The same walk is the C(forward_path) check of M(hypervisor.network.diagnose).
      - C(open) opens drops in an iptables C(FORWARD) chain (libvirt's reject rules, Docker's
        DROP policy, ufw) with a chain of ours jumped to from the top of C(FORWARD), which those
        managers leave in place when they rebuild their own chains. With the nftables backend
        that chain goes into the iptables variant that holds the drop (iptables-nft, or
        iptables-legacy, persisted as C(hypervisor-network-port-forward-accept.<variant>-v4|-v6)
        loaded by C(hypervisor-network-iptables.service)); with the iptables backend it is
        the backend's own chain, so a drop in the other iptables variant is refused with what to
        run. For a drop elsewhere (such as firewalld's table) the task fails before changing
        anything and says what to run.
      - C(fail) fails on any drop, with the same instructions. C(ignore) only reports.
      - RV(coexistence) says what was found and done.
    type: str
    choices: [open, fail, ignore]
    default: open
  allow_local_port_takeover:
    description:
      - A forward catches new connections to the host's addresses before any program of the host
        sees them. A forward being added or changed whose host port a process of the host listens
        on (TCP or UDP, as C(ss -l) lists them in the host's network namespace) is refused, naming
        the process, unless its scope leaves that listener alone - O(config[].host_address) other
        than the listener's address, or O(config[].in_interface) where the listener is bound to
        another interface or to an address not on that interface (a listener on every address is
        reachable through every interface), or a loopback listener without O(config[].hairpin).
        This keeps a forward of port 22 from cutting the SSH session Ansible runs on.
      - C(true) forwards the port anyway.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Web server of a guest reachable on the host's port 8080
  hypervisor.network.port_forward:
    config:
      - host_port: 8080
        destination: 10.10.0.10
        destination_port: 80
        in_interface: eth0
        hairpin: true
        comment: guest web

- name: DNS of a guest, TCP and UDP, only from the office network
  hypervisor.network.port_forward:
    config:
      - protocol: both
        host_port: 5353
        destination: 10.10.0.11
        destination_port: 53
        allowed_sources:
          - 198.51.100.0/24

- name: Exactly these forwards; every other forward of this module is removed
  hypervisor.network.port_forward:
    state: overridden
    config:
      - host_port: 2222
        destination: 10.10.0.10
        destination_port: 22

- name: What would be loaded, without touching the host
  hypervisor.network.port_forward:
    state: rendered
    backend: iptables
    config:
      - host_port: 8443
        destination: 10.10.0.12
        destination_port: 443
  register: preview
"""

RETURN = r"""
# The same for masquerade and port_forward (kept in step with the netfilter doc fragment).
changed:
  description: Whether the rules, the persistent files or another manager's rules changed.
  returned: always
  type: bool
commands:
  description: What was run, or in check mode what would be run (the whole C(nft -f) or
    C(iptables-restore) script, file writes, links).
  returned: always
  type: list
  elements: str
before:
  description: The items before the task, as read back from the host.
  returned: when the host was read
  type: list
  elements: dict
after:
  description:
    - The items after the task, as loaded in the one transaction (in check mode, as planned).
    - Left out when nothing changed (as the resource modules of ansible.netcommon do); RV(before) is then
      the state, and a no-change run across a fleet does not carry every item twice.
  returned: when state is merged, replaced, overridden or deleted and something changed (in check
    mode, would change)
  type: list
  elements: dict
gathered:
  description: The items on the host.
  returned: when state is gathered
  type: list
  elements: dict
rendered:
  description: The nft script or iptables-restore lines for O(config).
  returned: when state is rendered
  type: list
  elements: str
backend:
  description: The backend used, C(nftables) or C(iptables).
  returned: always
  type: str
persisted:
  description: The persistent file(s), the configuration or unit that loads them at boot, and
    the enabled service link; C(companion) and C(legacy_companion) for the iptables-nft and
    iptables-legacy chains that open other owners' drops next to the nftables backend.
  returned: when O(persist) is true and the rules were applied
  type: dict
rollback:
  description:
    - With O(rollback_timeout), what became of it. C(pending) is true while the previous rules
      would still come back (the confirmation failed); C(confirmed) is true once the controller
      confirmed; C(state) is the watcher's state file next to the lock, and C(watcher_pid) its process.
    - After a failed confirmation the previous rules come back within O(rollback_timeout);
      C(<state>.done) records what the watcher ran.
  returned: when O(rollback_timeout) is set and the rules changed
  type: dict
  sample: {"pending": false, "confirmed": true, "timeout": 30, "token": "3f1c...", "watcher_pid": 4242,
           "state": "/run/hypervisor-network/netns-4026531840.lock.rollback-masquerade-3f1c....json"}
removed_stale:
  description: Rules of this module found where this run does not put them (the host switched
    O(backend) or O(iptables_variant)), removed in the same run; each entry names the module and
    where the rules were, for example C(port_forward (iptables-legacy)).
  returned: when state is merged, replaced, overridden or deleted
  type: list
  elements: str
  sample: ["port_forward (iptables-nft)"]
coexistence:
  description: What was found of other rule owners (libvirt, Docker, firewalld, ufw) on the
    forward path, and what was done about it.
  returned: when state is merged, replaced, overridden or deleted
  type: list
  elements: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.port_forward_module import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
