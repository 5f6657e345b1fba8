"""Renderers and parsers of both backends, from real `nft -j` and `iptables-save` output
captured in a namespace after the modules applied /tmp-free fixtures (see fixtures/)."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import nft
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.backend import NftBackend, Paths
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"

# What the fixtures were made from.
FORWARDS = [
    {"host_port": "8080", "destination": "10.0.0.2", "destination_port": "80", "comment": "web",
     "allowed_sources": ["198.51.100.0/24", "203.0.113.7"], "hairpin": True, "hairpin_sources": ["10.0.0.0/24"]},
    {"protocol": "both", "host_port": "53", "destination": "10.0.0.3", "in_interface": "eth0"},
    {"host_port": "2222", "destination": "fd00:10::5", "destination_port": "22", "host_address": "2001:db8::1"},
    {"protocol": "udp", "host_port": "60000-60010", "destination": "10.0.0.4", "destination_port": "61000-61010"},
]
MASQUERADES = [
    {"source": "10.0.0.0/24", "out_interface": "eth0", "comment": "lab"},
    {"source": "fd00:10::/64"},
    {"source": "10.1.0.0/16", "exclude_own_subnet": False},
]


def forwards():
    return model.sort_items([model.complete_port_forward("c", model.parse_port_forward(i, r), None, ()) for i, r in enumerate(FORWARDS)])


def masquerades():
    return model.sort_items([model.complete_masquerade(model.parse_masquerade(i, r)) for i, r in enumerate(MASQUERADES)])


def test_nft_read_back_is_the_model():
    document = json.loads((FIXTURES / "nft_port_forward.json").read_text())
    exists, rules = nft.parse_table(document, "hypervisor_network_port_forward")
    assert exists
    assert ir.canonical(rules) == ir.compile_port_forwards(forwards())
    items, unexplained = ir.decompile_port_forwards(rules)
    assert items == forwards() and unexplained == []


def test_nft_masquerade_read_back():
    document = json.loads((FIXTURES / "nft_masquerade.json").read_text())
    _exists, rules = nft.parse_table(document, "hypervisor_network_masquerade")
    items, unexplained = ir.decompile_masquerades(rules)
    assert items == masquerades() and unexplained == []


def test_iptables_read_back_is_the_model_for_both_families():
    rules = []
    for family in (4, 6):
        text = (FIXTURES / ("iptables_save_v%d.txt" % family)).read_text()
        family_rules, jumps = ipt.parse_save("port_forward", family, text)
        rules.extend(family_rules)
        assert ("nat", "PREROUTING", "HNET-PF-PREROUTING") in jumps
        assert ("filter", "FORWARD", "HNET-PF-FORWARD") in jumps
    assert ir.canonical(rules) == ir.compile_port_forwards(forwards())
    masq_rules = []
    for family in (4, 6):
        masq_rules += ipt.parse_save("masquerade", family, (FIXTURES / ("iptables_save_v%d.txt" % family)).read_text())[0]
    assert ir.decompile_masquerades(masq_rules)[0] == masquerades()


def test_unknown_rule_in_our_table_is_drift():
    document = json.loads((FIXTURES / "nft_port_forward.json").read_text())
    rule = next(item["rule"] for item in document["nftables"] if "rule" in item)
    rule["expr"].insert(0, {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 1}})
    _exists, rules = nft.parse_table(document, "hypervisor_network_port_forward")
    assert any(r.action == "unknown" for r in rules)
    assert ir.canonical(rules) != ir.compile_port_forwards(forwards())


def test_nft_script_replaces_only_our_table_in_one_transaction():
    script = nft.render_table("hypervisor_network_port_forward", ir.compile_port_forwards(forwards()))
    lines = script.splitlines()
    assert lines[:2] == ["table inet hypervisor_network_port_forward", "delete table inet hypervisor_network_port_forward"]
    assert "flush ruleset" not in script
    assert '    ip saddr { 198.51.100.0/24, 203.0.113.7 } fib daddr type local tcp dport 8080 dnat ip to 10.0.0.2:80 comment "web"' in lines
    assert "    ip6 daddr 2001:db8::1 tcp dport 2222 dnat ip6 to [fd00:10::5]:22" in lines
    assert '    iifname "eth0" meta nfproto ipv4 fib daddr type local udp dport 53 dnat ip to 10.0.0.3' not in lines
    assert '    meta nfproto ipv4 iifname "eth0" fib daddr type local udp dport 53 dnat ip to 10.0.0.3' in lines
    assert nft.render_table("t", []) == "table inet t\ndelete table inet t\n"


def test_nft_definition_is_the_script_without_its_delete_and_empty_without_rules():
    rules = ir.compile_port_forwards(forwards())
    definition = nft.render_definition("t", rules)
    assert definition.startswith("table inet t {\n") and definition.endswith("}\n")
    assert nft.render_table("t", rules) == nft.render_delete("t") + definition
    assert nft.render_definition("t", []) == ""


def test_iptables_restore_inserts_jumps_once_and_removes_cleanly():
    rules = ir.compile_port_forwards(forwards())
    fresh = ipt.render_restore("port_forward", 4, rules, have_jumps=set())
    assert "-I PREROUTING 1 -j HNET-PF-PREROUTING" in fresh and "-I FORWARD 1 -j HNET-PF-FORWARD" in fresh
    assert fresh.count("-s 198.51.100.0/24") == 2 and fresh.count("-s 203.0.113.7/32") == 2
    jumps = {("nat", "PREROUTING", "HNET-PF-PREROUTING"), ("nat", "OUTPUT", "HNET-PF-OUTPUT"),
             ("nat", "POSTROUTING", "HNET-PF-POSTROUTING"), ("filter", "FORWARD", "HNET-PF-FORWARD")}
    again = ipt.render_restore("port_forward", 4, rules, have_jumps=jumps)
    assert "-I " not in again
    removal = ipt.render_restore("port_forward", 4, [], have_jumps=jumps)
    assert "-D PREROUTING -j HNET-PF-PREROUTING" in removal and "-X HNET-PF-PREROUTING" in removal
    assert "-A " not in removal and "\n-F " not in removal
    assert "-m comment --comment web" in fresh


def test_iptables_comment_with_spaces_round_trips():
    fwd = model.complete_port_forward("c", model.parse_port_forward(0, {"host_port": "80", "destination": "10.0.0.2", "comment": "guest web 'blue'"}), None, ())
    rules = ir.compile_port_forwards([fwd])
    lines = ipt.render_lines("port_forward", 4, rules)
    text = "*nat\n%s\nCOMMIT\n*filter\n%s\nCOMMIT\n" % (
        "\n".join(lines[("nat", "HNET-PF-PREROUTING")]), "\n".join(lines[("filter", "HNET-PF-FORWARD")]))
    parsed, _jumps = ipt.parse_save("port_forward", 4, text)
    assert ir.decompile_port_forwards(parsed)[0] == [fwd]


def test_connected_subnets_from_ip_route_json():
    routes = [
        {"dst": "default", "gateway": "203.0.113.254", "dev": "eth0"},
        {"dst": "10.0.0.0/24", "dev": "br0", "protocol": "kernel", "scope": "link", "prefsrc": "10.0.0.1"},
        {"dst": "10.9.0.0/16", "gateway": "10.0.0.254", "dev": "br0"},
        {"dst": "203.0.113.5", "dev": "eth0", "scope": "link"},
    ]
    assert [str(n) for n in ir.connected_subnets(routes)] == ["10.0.0.0/24"]


def test_route_device_is_the_longest_prefix_match():
    routes = [
        {"dst": "default", "gateway": "203.0.113.254", "dev": "eth0"},
        {"dst": "10.0.0.0/16", "dev": "br-wide"},
        {"dst": "10.0.5.0/24", "dev": "br0", "scope": "link"},
        {"dst": "fd00::/64", "dev": "br6"},
    ]
    assert ir.route_device(routes, "10.0.5.9") == "br0"
    assert ir.route_device(routes, "10.0.9.9") == "br-wide"
    assert ir.route_device(routes, "192.0.2.1") == "eth0"
    assert ir.route_device(routes, "fd00::5") == "br6"
    assert ir.route_device(routes, "2001:db8::1") is None
    routes.append({"dst": "default", "dev": "uplink6", "family": 6})
    assert ir.route_device(routes, "2001:db8::1") == "uplink6"


def _our_rule(*exprs, comment=None):
    obj = {"family": "inet", "table": "t", "chain": "prerouting", "handle": 7, "expr": list(exprs)}
    if comment:
        obj["comment"] = comment
    return {"nftables": [{"table": {"family": "inet", "name": "t"}}, {"rule": obj}]}


_DPORT = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}
_LOCAL = {"match": {"op": "==", "left": {"fib": {"result": "type", "flags": ["daddr"]}}, "right": "local"}}
_DNAT = {"dnat": {"family": "ip", "addr": "10.0.0.2", "port": {"range": [80, 90]}}}


def test_nft_read_back_of_one_rule_goes_through_the_one_json_parser():
    _exists, rules = nft.parse_table(_our_rule(_LOCAL, _DPORT, {"counter": None}, _DNAT, comment="web"), "t")
    assert rules == [ir.Rule(chain="prerouting", family=4, action=ir.DNAT, proto="tcp", dport=(8080, 8080),
                             daddr_local=True, to_addr="10.0.0.2", to_port=(80, 90), comment="web")]


def test_nft_rules_we_never_write_read_back_as_not_understood():
    less = {"match": {"op": "<", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 8080}}
    for exprs in ([_LOCAL, less, _DNAT], [_LOCAL, _DPORT, {"log": None}, _DNAT], [_DPORT, {"drop": None}]):
        _exists, rules = nft.parse_table(_our_rule(*exprs), "t")
        assert [(r.action, r.comment) for r in rules] == [("unknown", "handle 7")], exprs


def test_one_dnat_target_splitter_for_both_families():
    assert nf.split_target("10.0.0.2:80-90") == ("10.0.0.2", "80-90")
    assert nf.split_target("[fd00::5]:22") == ("fd00::5", "22")
    assert nf.split_target("fd00::5") == ("fd00::5", "")
    assert nf.split_target("10.0.0.2") == ("10.0.0.2", "")


def test_nft_script_is_rendered_once_for_the_boot_file_and_the_apply(monkeypatch, tmp_path):
    """A run writes the same rules into the boot file and into `nft -f`: one render (about 40 ms
    at 1000 forwards), and a new one as soon as the rules differ."""
    renders = []
    real = nft.render_table
    monkeypatch.setattr(nft, "render_table", lambda table, rules: renders.append(len(rules)) or real(table, rules))
    module = SimpleNamespace(check_mode=True)
    backend = NftBackend(Runner(module), "port_forward", Paths(persist_dir=str(tmp_path), unit_dir=str(tmp_path)))
    rules = ir.compile_port_forwards(forwards())
    ops, _persisted, _warning = backend.persist_ops(rules)
    backend.apply(list(rules))  # an equal list, not the same object
    assert renders == [len(rules)]
    script = real("hypervisor_network_port_forward", rules)
    assert ops[0].content.endswith(script) and backend.runner.commands == ["nft -f - <<EOF\n%sEOF" % script]
    fewer = rules[3:]
    assert backend.script(fewer) == real("hypervisor_network_port_forward", fewer) and renders == [len(rules), len(fewer)]


def _without_metainfo(document):
    return {"nftables": [entry for entry in document["nftables"] if "metainfo" not in entry]}


def test_our_table_from_a_ruleset_listing_is_what_listing_the_table_prints():
    """The snapshot a run takes from its `nft -j list ruleset` is the table's own listing: its
    table, chains and rules and nothing of the tables around it."""
    forwards_table = json.loads((FIXTURES / "nft_port_forward.json").read_text())
    masquerade_table = json.loads((FIXTURES / "nft_masquerade.json").read_text())
    foreign = [{"table": {"family": "ip", "name": "filter", "handle": 1}},
               {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1}},
               {"set": {"family": "inet", "table": "hypervisor_network_port_forward_x", "name": "s", "handle": 2}}]
    ruleset = {"nftables": [{"metainfo": {"json_schema_version": 1}}] + foreign[:2]
               + _without_metainfo(forwards_table)["nftables"] + foreign[2:] + _without_metainfo(masquerade_table)["nftables"]}
    assert nft.table_document(ruleset, "hypervisor_network_port_forward") == _without_metainfo(forwards_table)
    assert nft.table_document(ruleset, "hypervisor_network_masquerade") == _without_metainfo(masquerade_table)
    assert nft.table_document(ruleset, "hypervisor_network_absent") is None
    assert nft.table_document(None, "hypervisor_network_port_forward") is None


class _CountingRunner:
    """Answers `nft -j list table` with ``listing`` and counts the reads; changes are recorded."""

    check_mode = False

    def __init__(self, listing):
        self.listing = listing
        self.reads = []
        self.commands = []

    def read(self, argv, check_rc=True, cached=False):
        self.reads.append(argv)
        return 0, json.dumps(self.listing), ""

    def change(self, argv, data=None, shown=None):
        self.commands.append(argv)


def test_snapshot_before_the_first_change_reuses_the_run_s_reading_of_the_table(tmp_path):
    """The snapshot that puts our table back is the run's own reading of it (no second listing of
    3000 rules); once the run has changed the table, a snapshot lists it again."""
    forwards_table = json.loads((FIXTURES / "nft_port_forward.json").read_text())
    runner = _CountingRunner(forwards_table)
    backend = NftBackend(runner, "port_forward", Paths(persist_dir=str(tmp_path), unit_dir=str(tmp_path)))
    backend.gather({"nftables": [{"metainfo": {}}] + forwards_table["nftables"]})
    assert backend.snapshot() == _without_metainfo(forwards_table) and runner.reads == []

    backend.apply([])
    assert backend.snapshot() == _without_metainfo(forwards_table) and len(runner.reads) == 1

    fresh = NftBackend(_CountingRunner(forwards_table), "port_forward", Paths(persist_dir=str(tmp_path), unit_dir=str(tmp_path)))
    assert fresh.gather({"nftables": []}) == [] and fresh.snapshot() is None and fresh.runner.reads == []
    unread = NftBackend(_CountingRunner(forwards_table), "port_forward", Paths(persist_dir=str(tmp_path), unit_dir=str(tmp_path)))
    assert unread.snapshot() == _without_metainfo(forwards_table) and len(unread.runner.reads) == 1
