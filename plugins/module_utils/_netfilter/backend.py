# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side of the two netfilter backends: gather, apply in one transaction, persist."""

from __future__ import annotations

import json
import os

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import nft
from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
)

NFT_CONF_CANDIDATES = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
SYSTEM_UNIT_DIRS = ("/lib/systemd/system", "/usr/lib/systemd/system")
IPTABLES_UNIT = "hypervisor-network-iptables.service"


def select_backend(runner, requested, kind, params):
    if requested == "nftables" or (requested == "auto" and _nft_works(runner)):
        return NftBackend(runner, kind, params)
    if requested == "auto" and not (runner.has("iptables-restore") or runner.has("iptables-legacy-restore")):
        raise HypervisorNetworkError("neither a working nft nor iptables-restore was found on this host; install nftables")
    return IptablesBackend(runner, kind, params)


def _nft_works(runner):
    if not runner.has("nft"):
        return False
    rc, _out, _err = runner.read(["nft", "list", "tables"], check_rc=False)
    return rc == 0


def _enable_unit(runner, unit_dir, unit, target, source=None):
    """`systemctl enable` without systemd running: the symlink it would make. ``source`` is
    given for our own unit, which in check mode is not written yet."""
    source = source or next(
        (os.path.join(d, unit) for d in (unit_dir,) + SYSTEM_UNIT_DIRS if os.path.exists(os.path.join(d, unit))), None
    )
    if source is None:
        return None
    link = os.path.join(unit_dir, "%s.wants" % target, unit)
    if os.path.islink(link) or os.path.exists(link):
        return link
    runner.commands.append("ln -s %s %s" % (source, link))
    if not runner.check_mode:
        os.makedirs(os.path.dirname(link), exist_ok=True)
        os.symlink(source, link)
    return link


class NftBackend:
    name = "nftables"

    def __init__(self, runner, kind, params):
        self.runner = runner
        self.kind = kind
        self.table = "hypervisor_network_%s" % kind
        self.persist_dir = params.get("persist_dir") or "/etc/nftables.d"
        self.nftables_conf = params.get("nftables_conf")
        self.unit_dir = params.get("systemd_unit_dir") or "/etc/systemd/system"

    def gather(self, ruleset=None):
        """Our rules, from ``ruleset`` (`nft -j list ruleset`, when the caller read it anyway)
        or from listing our table."""
        if ruleset is None:
            argv = ["nft", "-j", "list", "table", nft.FAMILY, self.table]
            rc, out, err = self.runner.read(argv, check_rc=False)
            if rc != 0:
                if "No such file or directory" in err:
                    return []
                raise CommandError(argv, rc, out, err)
            ruleset = json.loads(out)
        _exists, rules = nft.parse_table(ruleset, self.table)
        return rules

    def script(self, rules):
        return nft.render_table(self.table, rules)

    def show(self, rules):
        return "" if not rules else self.script(rules).split("\n", 2)[2]

    def apply(self, rules):
        script = self.script(rules)
        self.runner.change(["nft", "-f", "-"], data=script, shown="nft -f - <<EOF\n%sEOF" % script)

    def persist(self, rules):
        """Write our table to its include file and make the system's nftables service load it."""
        path = os.path.join(self.persist_dir, "hypervisor-network-%s.nft" % self.kind.replace("_", "-"))
        changed = False
        if rules:
            changed |= self.runner.write_file(path, "# Managed by hypervisor.network; edits are overwritten.\n" + self.script(rules))
        else:
            changed |= self.runner.remove_file(path)
        conf = self.nftables_conf or next((c for c in NFT_CONF_CANDIDATES if os.path.exists(c)), NFT_CONF_CANDIDATES[0])
        include = 'include "%s/hypervisor-network-*.nft"' % self.persist_dir
        try:
            with open(conf, "r", encoding="utf-8") as handle:
                current = handle.read()
        except FileNotFoundError:
            current = "#!/usr/sbin/nft -f\n"
        if include not in current.splitlines():
            changed |= self.runner.write_file(conf, current.rstrip("\n") + "\n" + include + "\n", mode=0o755)
        service = _enable_unit(self.runner, self.unit_dir, "nftables.service", "sysinit.target")
        return changed, {"file": path if rules else None, "loader": conf, "service": service}


class IptablesBackend:
    name = "iptables"

    def __init__(self, runner, kind, params, saved=None):
        """``saved`` ({"ip": text, "ip6": text}, whole iptables-save output already read) is
        parsed instead of listing table by table: listing a legacy table loads it."""
        self.runner = runner
        self.kind = kind
        self.requested_variant = params.get("iptables_variant") or "auto"
        suffix = "" if self.requested_variant == "auto" else "-%s" % self.requested_variant
        self.tools = {
            4: ("iptables%s-save" % suffix, "iptables%s-restore" % suffix),
            6: ("ip6tables%s-save" % suffix, "ip6tables%s-restore" % suffix),
        }
        self.persist_dir = params.get("persist_dir") or "/etc/iptables"
        self.unit_dir = params.get("systemd_unit_dir") or "/etc/systemd/system"
        self.jumps = {4: set(), 6: set()}
        self.saved = saved

    @property
    def variant(self):
        """'nft' or 'legacy': with 'auto', the one the system's iptables-restore is (Debian's
        alternatives link to xtables-legacy-multi or xtables-nft-multi), without a process."""
        if self.requested_variant != "auto":
            return self.requested_variant
        return self._plain_variant("iptables-restore") or "nft"

    def _plain_variant(self, command):
        """The variant the unsuffixed ``command`` runs, or None where it is not installed."""
        path = self.runner.binary(command, required=False)
        if not path:
            return None
        return "legacy" if "legacy" in os.path.basename(os.path.realpath(path)) else "nft"

    def gather(self, ruleset=None):
        rules = []
        for family, (save, _restore) in self.tools.items():
            if self.saved is not None:
                text = self.saved.get("ip" if family == 4 else "ip6", "")
            elif family == 6 and not self.runner.has(save):
                continue
            else:
                text = "".join(self.runner.read([save, "-t", table], cached=True)[1] for table in ipt.TABLES)
            family_rules, self.jumps[family] = ipt.parse_save(self.kind, family, text)
            rules.extend(family_rules)
        return rules

    def show(self, rules):
        out = []
        for family in (4, 6):
            for (_table, _chain), lines in sorted(ipt.render_lines(self.kind, family, rules).items()):
                out.extend(lines)
        return "\n".join(out) + ("\n" if out else "")

    def apply(self, rules):
        for family, (_save, restore) in self.tools.items():
            has_family = any(r.family == family for r in rules) or self.jumps[family]
            if not has_family:
                continue
            script = ipt.render_restore(self.kind, family, rules, self.jumps[family])
            self.runner.change([restore, "--noflush"], data=script, shown="%s --noflush <<EOF\n%sEOF" % (restore, script))
            if not self.runner.check_mode:
                # what is there now, so that a rollback after a later failure removes our jumps
                self.jumps[family] = ipt.jumps_of(self.kind, family, rules)

    def persist(self, rules):
        """Write a boot-time restore file per family, named after the variant that must load
        it, and the oneshot unit that loads them all."""
        changed = False
        files = []
        base = os.path.join(self.persist_dir, "hypervisor-network-%s" % self.kind.replace("_", "-"))
        variant = self.variant
        for family in self.tools:
            path = "%s.%s-v%d" % (base, variant, family)
            script = ipt.boot_script(self.kind, family, rules)
            if script:
                changed |= self.runner.write_file(path, script, mode=0o600)
                files.append(path)
            else:
                changed |= self.runner.remove_file(path)
        unit = os.path.join(self.unit_dir, IPTABLES_UNIT)
        changed |= self.runner.write_file(unit, self.unit_text())
        _enable_unit(self.runner, self.unit_dir, IPTABLES_UNIT, "multi-user.target", source=unit)
        return changed, {"file": files or None, "loader": unit, "service": unit}

    def _restore_for(self, variant, family):
        """The restore command of ``variant`` on this host, or None where it has none."""
        prefix = "iptables" if family == 4 else "ip6tables"
        if self.runner.has("%s-%s-restore" % (prefix, variant)):
            return "%s-%s-restore" % (prefix, variant)
        return "%s-restore" % prefix if self._plain_variant("%s-restore" % prefix) == variant else None

    def unit_text(self):
        """The same text whichever module and variant writes it (every module of the host
        shares the unit), so that runs of different variants do not undo each other."""
        loops = []
        for variant in ("nft", "legacy"):
            for family in (4, 6):
                restore = self._restore_for(variant, family)
                if restore:
                    loops.append('for f in %s/hypervisor-network-*.%s-v%d; do [ -e "$f" ] && %s --noflush "$f"; done' % (
                        self.persist_dir, variant, family, restore))
        return (
            "# Managed by hypervisor.network.\n[Unit]\nDescription=hypervisor.network iptables rules\n"
            "# After libvirtd and Docker, so that our FORWARD jumps stand above theirs.\n"
            "After=network-pre.target libvirtd.service docker.service\n\n"
            "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/sh -c '%s; true'\n\n"
            "[Install]\nWantedBy=multi-user.target\n" % "; ".join(loops)
        )
