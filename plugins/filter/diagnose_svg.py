# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: diagnose_svg
short_description: Draw a host's guest networking from a diagnose result, as inline SVG
version_added: 0.2.0
description:
  - Turns the result of M(hypervisor.network.diagnose) into one C(<svg>) element - the uplink,
    each network (bridge, addresses, forward mode, DNS forwarders), its ports and guests (static
    DHCP hosts and leases), NAT paths and port forwards, each coloured by the worst status of the
    findings that concern it.
  - No scripts and no external resources, so it can be put into an HTML page as it is;
    C(playbooks/diagnose.yml) does so in its report.
positional: host, standalone
options:
  _input:
    description: A registered result of M(hypervisor.network.diagnose).
    type: dict
    required: true
  host:
    description: The host name shown in the picture.
    type: str
    default: host
  standalone:
    description:
      - Declare the SVG namespace on the C(svg) element, as an C(.svg) file needs. V(false) for
        SVG inside an HTML page, where the HTML parser places it in that namespace by itself.
    type: bool
    default: true
author:
  - hypervisor.network developers (@hypervisor-network)
"""

EXAMPLES = r"""
- name: Write the picture of the host
  ansible.builtin.copy:
    content: "{{ diag | hypervisor.network.diagnose_svg(inventory_hostname) }}"
    dest: /tmp/host.svg
    mode: "0644"
  delegate_to: localhost
"""

RETURN = r"""
_value:
  description: The SVG document as a string (one C(svg) element in the SVG namespace).
  type: str
"""

from ansible_collections.hypervisor.network.plugins.module_utils._diagnose.picture import render


def diagnose_svg(result, host="host", standalone=True):
    return render(result, host, standalone=bool(standalone))


class FilterModule:
    def filters(self):
        return {"diagnose_svg": diagnose_svg}
