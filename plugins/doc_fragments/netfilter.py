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
      - Make the rules survive a reboot, with oneshot units of the collection's own (never the
        distribution's C(nftables.service), whose stop flushes every table and which firewalld
        conflicts with). They run after C(nftables.service), C(firewalld), C(libvirtd) and C(docker)
        where those exist, and do nothing when stopped.
      - With nftables, the table goes to C(hypervisor-network-<module>.nft) in O(persist_dir) and
        C(hypervisor-network-nftables.service) loads every such file with C(nft -f); each file
        replaces only its own table.
      - With iptables, a restore file per IP family, named after the iptables variant
        (C(hypervisor-network-<module>.nft-v4), C(.legacy-v6), ...), goes to O(persist_dir) and
        C(hypervisor-network-iptables.service) loads each with its variant's C(iptables-restore
        --noflush); the unit is the same whichever module writes it.
      - A unit fails (and C(systemctl status) shows it) when a file did not load; the other files
        are loaded all the same.
      - The files are written beside their targets first and renamed into place only after the
        rules were applied; a failure on the way (full disk, read-only directory, a refused rule)
        leaves the rules and the files as they were.
      - RV(persisted) names the files.
    type: bool
    default: true
  persist_dir:
    description:
      - Directory of the persistent files. Defaults to C(/etc/nftables.d) (nftables) or
        C(/etc/iptables) (iptables). Any characters but control characters.
    type: path
  nftables_conf:
    description:
      - The system's nftables configuration. Earlier versions of the collection appended an
        C(include) of O(persist_dir) to it and enabled C(nftables.service); that include line is
        removed (every other line stays) and a warning says that C(nftables.service) stays
        enabled, since nothing recorded whether it was enabled before. Nothing else is written to it.
        Defaults to C(/etc/nftables.conf), or C(/etc/sysconfig/nftables.conf) where that exists instead.
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
  rollback_timeout:
    description:
      - Seconds (1 to 3600). Apply the rules, then put the previous ones back after this time
        unless the controller confirms over a new connection, as C(community.general.iptables_state)
        does for iptables. For changes that could cut the controller off (a forward of the port
        it connects to, a masquerade on its route).
      - The action plugin of the module confirms by itself right after the apply; the boot files
        are written only by that confirmation, so a reboot never loads unconfirmed rules.
      - If the host cannot be reached again, the task fails and the host restores the rules of
        this module that were there before the task, by itself, under the host lock.
      - While a rollback is pending, other runs of the same module on the host are refused. A
        watcher that was killed before its timeout blocks nothing; the next run warns that the
        previous rules were not put back, removes the watcher's state file and goes on.
      - Unset (the default), the rules are applied and persisted at once.
    type: int
  _rollback_confirm:
    description:
      - Internal. The token with which the module's action plugin confirms a O(rollback_timeout)
        over a fresh connection. A task that sets it is refused.
    type: str
"""
