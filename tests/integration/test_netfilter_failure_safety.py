"""A run that fails half-way leaves the host as it was (issue 11, item 7).

Failures are injected for real: a restore command that exits 1 placed first on PATH, a persist
dir that is a read-only bind mount, a persist dir on a tiny tmpfs filled up. Each test compares
the whole netfilter state (nft list ruleset shows iptables-nft too) and the persist dir, byte
for byte, before and after the failed run.
"""

from __future__ import annotations

import contextlib
import json
import os

from netfilter_topology import BACKENDS, build, persist_args
from netlab import sh

MASQ_OLD = [{"source": "10.9.0.0/24", "out_interface": "eth0"}]
MASQ_NEW = [{"source": "10.0.0.0/24", "out_interface": "eth0"}, {"source": "fd00:10::/64"}]


def failing_tool(lab, name):
    """A directory holding an executable ``name`` that fails like a refusing kernel would."""
    fakebin = lab.tmp / "fakebin"
    fakebin.mkdir(exist_ok=True)
    tool = fakebin / name
    # It reads its input first, as the real one does (exiting unread would break the pipe).
    tool.write_text("#!/bin/sh\ncat >/dev/null\necho \"%s: injected failure\" >&2\nexit 1\n" % name)
    tool.chmod(0o755)
    return {"PATH": "%s:%s" % (fakebin, os.environ["PATH"])}


def masquerade(lab, ns, backend, config, env=None, expect_fail=False, **extra):
    args = dict(BACKENDS[backend], config=config, **dict(persist_args(lab), **extra))
    return lab.module(ns, "masquerade", args, env=env, expect_fail=expect_fail)


def netfilter(lab, ns):
    """Every table, chain and rule of the namespace, nft (iptables-nft included) and
    iptables-legacy: rules in their order within each chain, chains in any order (the order in
    which chains were created is no part of what the kernel does), handles and counter values
    left out."""
    document = json.loads(lab.run(ns, ["nft", "-j", "list", "ruleset"]).stdout)
    objects = []
    for obj in document["nftables"]:
        kind, body = next(iter(obj.items()))
        if kind == "metainfo":
            continue
        body = {k: v for k, v in body.items() if k != "handle"}
        if "expr" in body:  # counters count whatever the namespace sent meanwhile
            body["expr"] = [{"counter": {}} if "counter" in e else e for e in body["expr"]]
        objects.append((kind, json.dumps(body, sort_keys=True)))
    rules = {}
    for kind, body in objects:
        if kind == "rule":
            rule = json.loads(body)
            rules.setdefault("%s %s %s" % (rule["family"], rule["table"], rule["chain"]), []).append(body)
    legacy = [lab.run(ns, [tool], check=False).stdout for tool in ("iptables-legacy-save", "ip6tables-legacy-save")]
    # rules and user chains; built-in chains of a legacy table that is loaded but empty are not
    # rules (loading a legacy table is all a read of it does)
    lines = [line for text in legacy for line in text.splitlines()
             if line.startswith("-A") or (line.startswith(":") and line.split()[1] == "-")]
    return sorted(o for o in objects if o[0] != "rule"), rules, lines


def tree(path):
    """{relative path: (content, mode)} of every file under ``path``, links as their target."""
    found = {}
    for root, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(root, name)
            rel = os.path.relpath(full, path)
            if os.path.islink(full):
                found[rel] = ("->", os.readlink(full))
            else:
                with open(full, "rb") as handle:
                    found[rel] = (handle.read(), os.stat(full).st_mode & 0o7777)
    return found


@contextlib.contextmanager
def mounted(*argv_and_target):
    target = argv_and_target[-1]
    sh(["mount"] + list(argv_and_target))
    try:
        yield target
    finally:
        sh(["umount", "-l", target], check=False)


def test_iptables_ipv6_failure_rolls_back_ipv4(lab):
    topo = build(lab)
    masquerade(lab, topo.hv, "iptables-nft", MASQ_OLD)
    before, files = netfilter(lab, topo.hv), tree(lab.tmp)
    env = failing_tool(lab, "ip6tables-nft-restore")
    failed = masquerade(lab, topo.hv, "iptables-nft", MASQ_NEW, env=env, expect_fail=True)
    assert "ip6tables-nft-restore" in failed["msg"] and "injected failure" in failed["msg"], failed
    assert netfilter(lab, topo.hv) == before, "IPv4 was put back after IPv6 failed"
    assert tree(lab.tmp) == dict(files, **{k: v for k, v in tree(lab.tmp).items() if k.startswith(("fakebin", "args-"))})
    # and the same run without the injected failure goes through
    assert masquerade(lab, topo.hv, "iptables-nft", MASQ_NEW)["changed"]


def test_read_only_persist_dir_changes_no_rule(lab):
    topo = build(lab)
    masquerade(lab, topo.hv, "nftables", MASQ_OLD)
    persist = str(lab.tmp / "persist")
    before, files = netfilter(lab, topo.hv), tree(persist)
    with mounted("--bind", "-o", "ro", persist, persist):
        failed = masquerade(lab, topo.hv, "nftables", MASQ_NEW, expect_fail=True)
        assert "could not write the boot persistence" in failed["msg"] and persist in failed["msg"]
        assert netfilter(lab, topo.hv) == before
    assert tree(persist) == files


def test_full_disk_changes_no_rule_and_leaves_no_file(lab):
    topo = build(lab)
    persist = lab.tmp / "persist"
    persist.mkdir()
    with mounted("-t", "tmpfs", "-o", "size=64k", "tmpfs", str(persist)):
        masquerade(lab, topo.hv, "iptables-nft", MASQ_OLD)
        sh(["dd", "if=/dev/zero", "of=%s" % (persist / "fill"), "bs=1k"], check=False)
        before, files = netfilter(lab, topo.hv), tree(persist)
        failed = masquerade(lab, topo.hv, "iptables-nft", MASQ_NEW, expect_fail=True)
        assert "No space left on device" in failed["msg"], failed["msg"]
        assert netfilter(lab, topo.hv) == before
        assert tree(persist) == files, "no half-written or temporary file is left"


def test_stale_removal_is_rolled_back_when_the_switch_fails(lab):
    """The host moves from iptables-nft to nftables: our new table is loaded, the old chains
    are being removed, and removing the IPv6 ones fails. Both go back: the old chains return,
    the new table goes."""
    topo = build(lab)
    masquerade(lab, topo.hv, "iptables-nft", MASQ_NEW)
    before, files = netfilter(lab, topo.hv), tree(lab.tmp / "persist")
    assert "HNET-MASQ-POSTROUTING" in str(before)
    env = failing_tool(lab, "ip6tables-nft-restore")
    failed = masquerade(lab, topo.hv, "nftables", MASQ_NEW, env=env, expect_fail=True)
    assert "injected failure" in failed["msg"], failed
    assert netfilter(lab, topo.hv) == before
    assert tree(lab.tmp / "persist") == files


def test_old_backends_rules_stay_when_the_new_backends_apply_fails(lab):
    """The host moves from iptables-nft to iptables-legacy and the legacy IPv6 restore fails:
    the legacy IPv4 chains just loaded go again, the iptables-nft chains were never removed."""
    topo = build(lab)
    masquerade(lab, topo.hv, "iptables-nft", MASQ_NEW)
    before, files = netfilter(lab, topo.hv), tree(lab.tmp / "persist")
    env = failing_tool(lab, "ip6tables-legacy-restore")
    failed = masquerade(lab, topo.hv, "iptables-legacy", MASQ_NEW, env=env, expect_fail=True)
    assert "injected failure" in failed["msg"], failed
    assert netfilter(lab, topo.hv) == before
    assert tree(lab.tmp / "persist") == files
