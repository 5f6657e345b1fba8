# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side of the two netfilter backends: gather, apply in one transaction, persist."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Optional

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import nft
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import persist
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rollback
from ansible_collections.hypervisor.network.plugins.module_utils._errors import (
    CommandError,
    HypervisorNetworkError,
)

NFT_CONF_CANDIDATES = ("/etc/nftables.conf", "/etc/sysconfig/nftables.conf")
IPTABLES_UNIT = persist.IPTABLES_UNIT


@dataclass(frozen=True)
class Paths:
    """Where a backend keeps its boot files: ``persist_dir`` (None: the backend's own default),
    ``nftables_conf`` (the system's nftables configuration an earlier version included us in)
    and ``unit_dir`` (our oneshot units)."""

    persist_dir: Optional[str] = None
    nftables_conf: Optional[str] = None
    unit_dir: str = "/etc/systemd/system"

    @classmethod
    def from_params(cls, params):
        return cls(params.get("persist_dir"), params.get("nftables_conf"),
                   params.get("systemd_unit_dir") or "/etc/systemd/system")


def select_backend(runner, requested, variant, rule_set, paths, listing=None):
    """The backend that holds the rule set ``rule_set`` on this host: ``requested``, or with "auto" nftables
    where nft works (``listing``, `nft -j list ruleset` read already, says so), else iptables of
    ``variant``."""
    if requested == "nftables" or (requested == "auto" and (listing is not None or _nft_works(runner))):
        return NftBackend(runner, rule_set, paths)
    if requested == "auto" and not (runner.has("iptables-restore") or runner.has("iptables-legacy-restore")):
        raise HypervisorNetworkError("neither a working nft nor iptables-restore was found on this host; install nftables")
    return IptablesBackend(runner, rule_set, paths, variant)


def requested_backend(runner, requested, variant, rule_set, paths):
    """The backend named by ``requested`` without asking the host ("auto" renders for nftables):
    state=rendered works on any machine."""
    if requested == "iptables":
        return IptablesBackend(runner, rule_set, paths, variant)
    return NftBackend(runner, rule_set, paths)


def placements(runner, rule_set, paths, legacy, listing=None):
    """Every place on this host where the rule set ``rule_set`` can be: the nftables table where nft is
    installed, the iptables-nft chains where iptables-nft is, the iptables-legacy chains where
    legacy tables are loaded (``legacy``: their saves, already read; listing a legacy table would
    load it). ``listing`` is `nft -j list ruleset` where the run read it."""
    owners = []
    if runner.has("nft"):
        owners.append(NftBackend(runner, rule_set, paths))
    if runner.has("iptables-nft-save"):
        owners.append(IptablesBackend(runner, rule_set, paths, "nft", saved=unlisted_iptables_nft(listing)))
    if legacy:
        owners.append(IptablesBackend(runner, rule_set, paths, "legacy", saved=legacy))
    return owners


def unlisted_iptables_nft(listing):
    """{} (saves known to be empty, no process needed) where ``listing`` (`nft -j list ruleset`)
    holds none of the tables iptables-nft keeps our chains in, else None (read them)."""
    if listing is None:
        return None
    for entry in listing.get("nftables", []):
        table = entry.get("table")
        if table and table.get("family") in ("ip", "ip6") and table.get("name") in ipt.TABLES:
            return None
    return {}


def _nft_works(runner):
    if not runner.has("nft"):
        return False
    rc, _out, _err = runner.read(["nft", "list", "tables"], check_rc=False)
    return rc == 0


class _Backend:
    """What both backends share: the places they are not."""

    runner = rule_set = paths = placement = None

    def elsewhere(self, legacy, listing=None):
        """The other places where this rule set may be left from an earlier run (the host
        switched backend or iptables variant): they are emptied in the same apply."""
        return [owner for owner in placements(self.runner, self.rule_set, self.paths, legacy, listing)
                if owner.placement != self.placement]


# NftBackend._read before the run has read our table (None means it read that there is none)
_UNREAD = object()


class NftBackend(_Backend):
    name = "nftables"

    def __init__(self, runner, rule_set, paths):
        self.runner = runner
        self.rule_set = rule_set
        self.paths = paths
        self.table = nft.table_name(rule_set)
        self.persist_dir = paths.persist_dir or "/etc/nftables.d"
        self.nftables_conf = paths.nftables_conf
        self.unit_dir = paths.unit_dir
        self._script = None  # (rules, script) of the last render
        # Our table as this run last read it (`nft -j` form, None where it does not exist), until
        # the run changes it: the snapshot taken before the change, without a second listing.
        self._read = _UNREAD

    def gather(self, ruleset=None):
        """Our rules, from ``ruleset`` (`nft -j list ruleset`, when the caller read it anyway)
        or from listing our table."""
        if ruleset is None:
            ruleset = self._list_table()
        self._read = nft.table_document(ruleset, self.table)
        _exists, rules = nft.parse_table(self._read, self.table)
        return rules

    def _list_table(self):
        """`nft -j list table` of ours, or None where it does not exist."""
        argv = ["nft", "-j", "list", "table", nft.FAMILY, self.table]
        rc, out, err = self.runner.read(argv, check_rc=False)
        if rc != 0:
            if "No such file or directory" in err:
                return None
            raise CommandError(argv, rc, out, err)
        return json.loads(out)

    @property
    def placement(self):
        return self.name

    # our rules are in no iptables variant
    iptables_variant = None

    def holds_rules(self):
        return bool(self.gather())

    def companion_variants(self, legacy):
        """The iptables variants a companion chain can go into next to this backend: nft where its
        restore is installed, legacy only where legacy tables are loaded (``legacy``, the saves
        read for the coexistence walk) and its restore is installed."""
        variants = []
        if self.runner.has("iptables-nft-restore"):
            variants.append("nft")
        if legacy and self.runner.has("iptables-legacy-restore"):
            variants.append("legacy")
        return variants

    def rendered(self, rules):
        """What state=rendered returns: the whole script, as one string."""
        return [self.script(rules)]

    def script(self, rules):
        """The `nft -f` script for ``rules``. A run renders the same rules for its boot file and
        then for `nft -f`: the second time is answered from the first (about 40 ms at 3000
        rules), after comparing the rules, which costs a tenth of rendering them."""
        rules = tuple(rules)
        if self._script is None or self._script[0] != rules:
            self._script = (rules, nft.render_table(self.table, rules))
        return self._script[1]

    def show(self, rules):
        """Our table's definition alone, for the diff."""
        return nft.render_definition(self.table, rules)

    def apply(self, rules):
        """Load ``rules`` as our table in one transaction."""
        script = self.script(rules)
        self._read = _UNREAD
        self.runner.change(["nft", "-f", "-"], data=script, shown="nft -f - <<EOF\n%sEOF" % script)

    def persist_ops(self, rules):
        """The boot files for ``rules``: our table's file, our own oneshot unit that loads it
        (never the distribution's nftables.service), and the removal of the include line an
        earlier version added to the system's nftables configuration. (file operations, what
        `persisted` reports, a warning or None)."""
        path = os.path.join(self.persist_dir, "hypervisor-network-%s.nft" % self.rule_set.replace("_", "-"))
        if rules:
            ops = [persist.FileOp(path, "# Managed by hypervisor.network; edits are overwritten.\n" + self.script(rules))]
        else:
            ops = [persist.FileOp(path, None)]
        unit = os.path.join(self.unit_dir, persist.NFT_UNIT)
        ops += persist.unit_ops(self.unit_dir, persist.NFT_UNIT, persist.nft_unit_text(self.persist_dir))
        conf = self.nftables_conf or next((c for c in NFT_CONF_CANDIDATES if os.path.exists(c)), NFT_CONF_CANDIDATES[0])
        migration = persist.migration_ops(conf)
        ops += migration
        warning = persist.migration_warning(conf, self.unit_dir) if migration else None
        return ops, {"file": path if rules else None, "loader": unit, "service": unit}, warning

    def snapshot(self):
        """Our table as `nft -j` lists it (None where it does not exist), to put it back. Taken
        under the host lock before the run's first change to the table: the run's own reading
        of it where there is one (a second listing would say the same: nothing of ours changed
        in between, and it cost as much as the run's whole read at 1000 forwards)."""
        if self._read is _UNREAD:
            return nft.table_document(self._list_table(), self.table)
        return self._read

    def restore_steps(self, snapshot):
        """One `nft -j -f -` that makes our table what ``snapshot`` holds (JSON: no quoting)."""
        document = rollback.nft_restore_document(nft.FAMILY, self.table, snapshot)
        return [rollback.Step(("nft", "-j", "-f", "-"), json.dumps(document))]


class IptablesBackend(_Backend):
    name = "iptables"

    def __init__(self, runner, rule_set, paths, variant="auto", saved=None):
        """``variant`` is "nft", "legacy" or "auto" (the one the host's iptables-restore is).
        ``saved`` ({"ip": text, "ip6": text}, whole iptables-save output already read) is
        parsed instead of listing table by table: listing a legacy table loads it."""
        self.runner = runner
        self.rule_set = rule_set
        self.paths = paths
        self.requested_variant = variant or "auto"
        suffix = "" if self.requested_variant == "auto" else "-%s" % self.requested_variant
        self.tools = {
            4: ("iptables%s-save" % suffix, "iptables%s-restore" % suffix),
            6: ("ip6tables%s-save" % suffix, "ip6tables%s-restore" % suffix),
        }
        self.persist_dir = paths.persist_dir or "/etc/iptables"
        self.unit_dir = paths.unit_dir
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

    @property
    def placement(self):
        return "iptables-%s" % self.variant

    @property
    def iptables_variant(self):
        return self.variant

    def holds_rules(self):
        return bool(self.gather()) or any(self.jumps.values())

    def companion_variants(self, legacy):
        """None: our FORWARD accepts are in iptables already, at the top of its FORWARD chain."""
        return []

    def rendered(self, rules):
        """What state=rendered returns: the iptables-restore lines."""
        return self.show(rules).splitlines()

    def gather(self, ruleset=None):
        """Our rules, from iptables-save (``ruleset``, nft's JSON, is of no use here)."""
        rules = []
        for family, (save, _restore) in self.tools.items():
            if self.saved is not None:
                text = self.saved.get("ip" if family == 4 else "ip6", "")
            elif family == 6 and not self.runner.has(save):
                continue
            else:
                text = "".join(self.runner.read([save, "-t", table], cached=True)[1] for table in ipt.TABLES)
            family_rules, self.jumps[family] = ipt.parse_save(self.rule_set, family, text)
            rules.extend(family_rules)
        return rules

    def show(self, rules):
        out = []
        for family in (4, 6):
            for (_table, _chain), lines in sorted(ipt.render_lines(self.rule_set, family, rules).items()):
                out.extend(lines)
        return "\n".join(out) + ("\n" if out else "")

    def apply(self, rules):
        """One `iptables-restore --noflush` per family that holds our rules or jumps."""
        for family, (_save, restore) in self.tools.items():
            has_family = any(r.family == family for r in rules) or self.jumps[family]
            if not has_family:
                continue
            script = ipt.render_restore(self.rule_set, family, rules, self.jumps[family])
            done = self.runner.change([restore, "--noflush"], data=script, shown="%s --noflush <<EOF\n%sEOF" % (restore, script))
            if done.ran:
                # what is there now, so that a rollback after a later failure removes our jumps
                # (in check mode nothing changed: the jumps stay those gathered)
                self.jumps[family] = ipt.jumps_of(self.rule_set, family, rules)

    def persist_ops(self, rules):
        """A boot-time restore file per family, named after the variant that must load it, and
        the oneshot unit that loads them all."""
        ops, files = [], []
        base = os.path.join(self.persist_dir, "hypervisor-network-%s" % self.rule_set.replace("_", "-"))
        variant = self.variant
        for family in self.tools:
            path = "%s.%s-v%d" % (base, variant, family)
            script = ipt.boot_script(self.rule_set, family, rules)
            ops.append(persist.FileOp(path, script, mode=0o600))
            if script:
                files.append(path)
        unit = os.path.join(self.unit_dir, IPTABLES_UNIT)
        ops += persist.unit_ops(self.unit_dir, IPTABLES_UNIT, self.unit_text())
        return ops, {"file": files or None, "loader": unit, "service": unit}, None

    def snapshot(self):
        """{family: iptables-save text of our tables}, to put our chains back as they were."""
        return {family: self._save_text(family, cached=True) for family in self.tools if self._family_present(family)}

    def restore_steps(self, snapshot):
        """Per family, the `iptables-restore --noflush` script that turns what is there now back
        into ``snapshot``: our chains' lines as they were saved, our jumps from the built-in
        chains, nothing of anybody else's."""
        steps = []
        for family, before in sorted(snapshot.items()):
            script = rollback.iptables_restore_script(ipt.CHAINS[self.rule_set], before, self._save_text(family))
            if script:
                steps.append(rollback.Step((self.tools[family][1], "--noflush"), script))
        return steps

    def _family_present(self, family):
        if self.saved is not None:
            return ("ip" if family == 4 else "ip6") in self.saved
        return family == 4 or self.runner.has(self.tools[family][0])

    def _save_text(self, family, cached=False):
        save = self.tools[family][0]
        if self.saved is not None:
            if cached:
                return self.saved.get("ip" if family == 4 else "ip6", "")
            return self.runner.read([save])[1]
        return "".join(self.runner.read([save, "-t", table], cached=cached)[1] for table in ipt.TABLES)

    def _restore_for(self, variant, family):
        """The restore command of ``variant`` on this host, or None where it has none."""
        prefix = "iptables" if family == 4 else "ip6tables"
        if self.runner.has("%s-%s-restore" % (prefix, variant)):
            return "%s-%s-restore" % (prefix, variant)
        return "%s-restore" % prefix if self._plain_variant("%s-restore" % prefix) == variant else None

    def unit_text(self):
        """The same text whichever module and variant writes it (every module of the host
        shares the unit), so that runs of different variants do not undo each other."""
        restores = []
        for variant in ("nft", "legacy"):
            for family in (4, 6):
                restore = self._restore_for(variant, family)
                if restore:
                    restores.append(("%s-v%d" % (variant, family), restore))
        return persist.iptables_unit_text(self.persist_dir, restores)
