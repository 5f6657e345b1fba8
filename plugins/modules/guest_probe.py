#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: guest_probe
short_description: Measure a guest's network from inside the guest (DNS rate and latency, reachability)
version_added: 0.1.0
description:
  - Runs inside a guest (over SSH, or through the C(hypervisor.network.netns) connection for
    sandbox guests) and measures what the guest sees.
  - Sends O(count) DNS queries to O(server) (default the IPv4 default gateway, which is where
    libvirt's dnsmasq answers) and reports the success rate, the answer codes and latency
    percentiles (p50, p90, p99, max). Built on the standard library; no dig needed.
  - Pings the default gateway and every address of O(upstream).
  - Returns findings in the same form as M(hypervisor.network.diagnose) (C(guest_route),
    C(guest_gateway), C(guest_dns), C(guest_upstream)). Changes nothing.
author:
  - hypervisor.network developers (@hypervisor-network)
extends_documentation_fragment:
  - hypervisor.network.attributes.READ_ONLY
options:
  server:
    description: DNS server to query. Default the guest's IPv4 default gateway.
    type: str
  names:
    description: Names to query, in turn.
    type: list
    elements: str
    default: [example.com]
  count:
    description: Number of DNS queries.
    type: int
    default: 20
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 1.0
  interval:
    description: Seconds between queries.
    type: float
    default: 0.0
  edns:
    description:
      - Send queries with an EDNS0 record, as dig, systemd-resolved and most current stub
        resolvers do. dnsmasq answers such clients differently in some cases (with an extended
        error instead of silence when every upstream refuses), so probe the way the guest's
        resolver asks.
    type: bool
    default: true
  min_success_rate:
    description: Share of answered queries (NOERROR or NXDOMAIN) below which C(guest_dns) fails.
    type: float
    default: 0.95
  upstream:
    description: Addresses beyond the gateway that the guest should reach (ping).
    type: list
    elements: str
    default: []
seealso:
  - module: hypervisor.network.diagnose
"""

EXAMPLES = r"""
- name: 50 DNS queries through the gateway, and reach the upstream resolver
  hypervisor.network.guest_probe:
    names: [www.debian.org, db.corp.example]
    count: 50
    upstream: [198.51.100.53]
  register: probe
"""

RETURN = r"""
gateway:
  description: The IPv4 default gateway; null when there is none.
  returned: always
  type: str
server:
  description: The DNS server queried.
  returned: always
  type: str
dns:
  description: queries, answered, success_rate, rcodes (count per answer code) and latency_ms (p50, p90, p99, max).
  returned: always
  type: dict
gateway_reachable:
  description: Ping result of the gateway (address, reachable, rtt_ms).
  returned: always
  type: dict
upstream:
  description: Ping result per upstream address.
  returned: always
  type: list
  elements: dict
findings:
  description: Findings in the form diagnose returns them.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts per status.
  returned: always
  type: dict
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.hypervisor.network.plugins.module_utils._errors import run_module_main
from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.probe import ARGUMENT_SPEC, run


def main():
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    run_module_main(module, run)


if __name__ == "__main__":
    main()
