# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  state:
    description:
      - C(merged) adds the listed items and updates listed ones in place (list-valued
        fields of an item are united), leaving the others alone.
      - C(replaced) replaces each listed item (same key) as a whole, leaving the others alone.
      - C(overridden) makes the listed items the only ones; every other item of this module goes.
      - C(deleted) removes the listed items (matched by key), or all of them when O(config) is empty.
      - C(gathered) reads the current items into RV(gathered) and changes nothing.
      - C(rendered) returns in RV(rendered) what would be loaded for O(config), without touching
        the host's rules and without root.
    type: str
    choices: [merged, replaced, overridden, deleted, gathered, rendered]
    default: merged
  backend:
    description:
      - C(nftables) keeps the rules in a table of their own (C(inet hypervisor_network_<module>)),
        replaced as a whole in one C(nft -f) transaction and read back with C(nft -j).
      - C(iptables) keeps them in chains of their own (C(HNET-*)) loaded with one
        C(iptables-restore --noflush) per IP family.
      - C(auto) uses nftables when C(nft) works on the host, iptables otherwise.
    type: str
    choices: [auto, nftables, iptables]
    default: auto
  iptables_variant:
    description:
      - With O(backend=iptables), which iptables to call. C(auto) is whatever C(iptables-restore)
        is on the host (the alternatives system on Debian); C(nft) and C(legacy) force one.
    type: str
    choices: [auto, nft, legacy]
    default: auto
  persist:
    description:
      - Make the rules survive a reboot. With nftables, the table goes to an include file in
        O(persist_dir) that the system's nftables configuration (O(nftables_conf)) includes, and
        the C(nftables) service is enabled. With iptables, a restore file per IP family, named after
        the iptables variant (C(hypervisor-network-<module>.nft-v4), C(.legacy-v6), ...), goes to
        O(persist_dir) and a C(hypervisor-network-iptables.service) unit loads each at boot with
        its variant's C(iptables-restore); the unit is the same whichever module writes it.
      - RV(persisted) names the files.
    type: bool
    default: true
  persist_dir:
    description:
      - Directory of the persistent files. Defaults to C(/etc/nftables.d) (nftables) or
        C(/etc/iptables) (iptables).
    type: path
  nftables_conf:
    description:
      - The nftables configuration the system loads at boot, which gets an C(include) line for
        O(persist_dir). Defaults to C(/etc/nftables.conf), or C(/etc/sysconfig/nftables.conf)
        where that exists instead.
    type: path
  systemd_unit_dir:
    description: Where units are written and enabled.
    type: path
    default: /etc/systemd/system
  lock_file:
    description:
      - The lock held during an apply, so two plays on one host cannot interleave. Defaults to a
        lock per network namespace under C(/run/hypervisor-network).
    type: path
"""
