"""Boot units, the migration edit and the file transaction, on real files in a tmp dir."""

from __future__ import annotations

import os
from types import SimpleNamespace

import pytest

from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError, ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import persist
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner


def recorder(check_mode=False):
    """The real Runner over the one thing the transaction asks of a module: check_mode."""
    return Runner(SimpleNamespace(check_mode=check_mode))


def test_unit_command_keeps_persist_dir_one_argument():
    text = persist.nft_unit_text("/etc/a dir/'q'\"d\"$x%y\\z")
    line = [l for l in text.splitlines() if l.startswith("ExecStart=")][0]
    assert line.endswith(' hypervisor-network "/etc/a dir/\'q\'\\"d\\"$$x%%y\\\\z"')
    assert "; true" not in line and "exit $$rc" in line
    assert "ExecStop" not in "\n".join(l for l in text.splitlines() if not l.startswith("#"))


def test_control_characters_in_persist_dir_are_refused_naming_the_field():
    with pytest.raises(ValidationError) as err:
        persist.iptables_unit_text("/etc/x\ny", [("nft-v4", "iptables-nft-restore")])
    assert err.value.field == "persist_dir"


def test_only_the_old_include_lines_go():
    text = '#!/usr/sbin/nft -f\nflush ruleset\ninclude "/etc/other/*.nft"\ninclude "/etc/nftables.d/hypervisor-network-*.nft"\n'
    assert persist.without_old_include(text) == '#!/usr/sbin/nft -f\nflush ruleset\ninclude "/etc/other/*.nft"\n'
    assert persist.without_old_include("table inet x {\n}\n") is None
    assert persist.without_old_include('include "/srv/my dir/hypervisor-network-*.nft"') == ""


def test_transaction_stages_then_commits_and_rolls_back(tmp_path):
    old = tmp_path / "a.conf"
    old.write_text("old\n")
    gone = tmp_path / "b.conf"
    gone.write_text("remove me\n")
    ops = [persist.FileOp(str(old), "new\n", 0o600), persist.FileOp(str(gone), None),
           persist.FileOp(str(tmp_path / "sub" / "c.conf"), "c\n"),
           persist.LinkOp(str(tmp_path / "wants" / "x.service"), str(old))]
    runner = recorder()
    txn = persist.FileTransaction(runner, ops)
    txn.stage()
    assert old.read_text() == "old\n" and gone.exists(), "staging changes no target"
    txn.commit()
    assert old.read_text() == "new\n" and (old.stat().st_mode & 0o777) == 0o600 and not gone.exists()
    assert os.readlink(tmp_path / "wants" / "x.service") == str(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.conf", "sub", "wants"], "no temporary file left"

    again = persist.FileTransaction(recorder(), ops)
    assert not again.changed


def test_commit_failure_puts_the_earlier_files_back(tmp_path):
    first = tmp_path / "first"
    first.write_text("1\n")
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the link's directory should be\n")
    ops = [persist.FileOp(str(first), "2\n"), persist.LinkOp(str(blocked / "x.service"), str(first))]
    txn = persist.FileTransaction(recorder(), ops)
    txn.stage()
    with pytest.raises(HypervisorNetworkError):
        txn.commit()
    assert first.read_text() == "1\n" and blocked.is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blocked", "first"]


def test_check_mode_records_and_writes_nothing(tmp_path):
    runner = recorder(check_mode=True)
    txn = persist.FileTransaction(runner, [persist.FileOp(str(tmp_path / "x"), "x\n")])
    txn.stage()
    txn.commit()
    assert runner.commands == ["write %s" % (tmp_path / "x")] and not list(tmp_path.iterdir())
