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
  - Sends O(count) DNS queries per query style to O(server) (default the IPv4 default gateway,
    which is where libvirt's dnsmasq answers) and reports, per style and in all, the success
    rate, the answer codes and latency percentiles (p50, p90, p99, max). Built on the standard
    library; no dig needed.
  - Styles are the ways real clients ask (O(styles)), because a forwarder answers them
    differently. libvirt's dnsmasq (strict-order) behind a first upstream that answers REFUSED
    hands that REFUSED to queries carrying an EDNS option (dig's cookie) and retries queries
    without EDNS, or with an empty EDNS0 record, on the next upstream. So dig fails where glibc
    succeeds, and both are reported.
  - A cached answer would hide the problem for its TTL, so the styles with EDNS options are
    probed first, and with O(uncached) every query after the first of a name asks for a fresh
    name under it, which no cache holds.
  - Pings the default gateway and every address of O(upstream).
  - Returns findings in the same form as M(hypervisor.network.diagnose) (C(guest_route),
    C(guest_gateway), C(guest_dns) once per style, C(guest_upstream), C(guest_resolver)).
    Changes nothing.
  - C(guest_resolver) reads the guest's resolv.conf, and systemd-resolved's upstreams when
    resolv.conf points at its stub, and warns when DNS goes anywhere but the gateway's dnsmasq
    first (the network's forwarders and domain then do not apply to the guest).
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
    description: Number of DNS queries per style of O(styles).
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
  styles:
    description:
      - Query styles to probe, each O(count) times. V(cookie) is EDNS0 with a DNS cookie
        option, as dig, host and nslookup (BIND tools) and BIND or Unbound as resolvers ask.
        V(edns) is an EDNS0 record without options, as glibc with C(options edns0) and
        systemd-resolved towards its upstreams ask. V(plain) is no EDNS, as glibc's stub
        resolver (getaddrinfo, so ping, curl, apt) and busybox ask by default.
      - They are always probed in the order V(cookie), V(edns), V(plain), whatever the order
        given, since dnsmasq answers V(edns) and V(plain) queries from a retry on the next upstream
        and caches that answer, which would then answer the V(cookie) queries too.
      - Default V([cookie, plain]); when only O(edns) is given, its one style.
    type: list
    elements: str
    choices: [cookie, edns, plain]
  uncached:
    description:
      - Ask each name of O(names) once as it is, then for fresh names under it
        (C(hnprobe-<random>.<name>)), so that dnsmasq's cache cannot answer in place of the
        upstream. A server that serves the zone answers these with NXDOMAIN (or a wildcard),
        which counts as answered; one that refuses the zone answers REFUSED.
      - V(false) asks the names themselves every time, as applications do; then a cached
        answer can hide the problem until its TTL ends.
    type: bool
    default: true
  edns:
    description:
      - Old single-style switch, used only when O(styles) is not given. V(true) probes the
        V(edns) style only (an EDNS0 record without options), V(false) the V(plain) style only.
      - An empty EDNS0 record does not show the REFUSED-first problem, since dnsmasq retries
        such a query on the next upstream like one without EDNS; the option carried by dig's
        cookie is what makes dnsmasq pass the REFUSED on. Use O(styles) instead.
    type: bool
  min_success_rate:
    description: Share of answered queries (NOERROR or NXDOMAIN) of a style below which that style's C(guest_dns) fails.
    type: float
    default: 0.95
  upstream:
    description: Addresses beyond the gateway that the guest should reach (ping).
    type: list
    elements: str
    default: []
  resolv_conf:
    description:
      - The guest's resolv.conf, read (never queried) to say whether the guest's DNS goes to the
        gateway's dnsmasq (finding C(guest_resolver)).
    type: path
    default: /etc/resolv.conf
  resolved_resolv_conf:
    description:
      - Where systemd-resolved lists its upstream servers; read when the first nameserver of
        O(resolv_conf) is resolved's stub (127.0.0.53 or 127.0.0.54).
    type: path
    default: /run/systemd/resolve/resolv.conf
seealso:
  - module: hypervisor.network.diagnose
"""

EXAMPLES = r"""
- name: 50 DNS queries per style (dig-like cookie, glibc-like plain) through the gateway, and reach the upstream resolver
  hypervisor.network.guest_probe:
    names: [www.debian.org, db.corp.example]
    count: 50
    upstream: [198.51.100.53]
  register: probe

- name: Every style, the names themselves each time (what applications see, cache included)
  hypervisor.network.guest_probe:
    names: [www.debian.org]
    styles: [cookie, edns, plain]
    uncached: false
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
  description:
    - queries, answered, success_rate, rcodes (count per answer code) and latency_ms (p50, p90,
      p99, max) of all queries; C(order), the styles in the order probed; and C(styles), the same
      figures per style with C(clients), the clients that ask in that style.
    - Null when there is no server to ask.
  returned: always
  type: dict
  sample:
    queries: 40
    answered: 20
    success_rate: 0.5
    rcodes: {REFUSED: 20, NOERROR: 20}
    order: [cookie, plain]
    styles:
      cookie: {queries: 20, answered: 0, success_rate: 0.0, rcodes: {REFUSED: 20}, clients: "EDNS0 with a DNS cookie: dig, ..."}
      plain: {queries: 20, answered: 20, success_rate: 1.0, rcodes: {NOERROR: 20}, clients: "no EDNS: glibc's stub resolver ..."}
resolver:
  description:
    - The guest's resolver, read from O(resolv_conf) - path, nameservers, search, via
      (C(resolv.conf) or C(systemd-resolved); null when unreadable), upstreams (the servers
      queries really go to) and error.
  returned: always
  type: dict
  sample: {path: /etc/resolv.conf, nameservers: [127.0.0.53], search: [], via: systemd-resolved, upstreams: [10.0.0.1], error: null}
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
