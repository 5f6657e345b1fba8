"""Issue 11 item 3: no string reaches an nft script or an iptables-restore file out of its place.

For every string field of masquerade and port_forward (interfaces, comments), arbitrary text is
either refused by the model with the field named, or rendered, loaded by the REAL nft and
iptables-restore in a namespace of ours, read back, and found only where it was put: the read-back
rules equal the compiled ones (so the rule count and every verdict are unchanged), no other
table, chain or built-in rule appeared. Table and chain names are constants of the collection,
never user input. One namespace serves every example.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import iptables as ipt
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import nft
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as ir
from ansible_collections.hypervisor.network.plugins.module_utils._errors import ValidationError
from netlab import Lab

# Printable text with the characters that matter to the two grammars drawn often.
HOSTILE = '"\\\';#{}$@*+!- \t\n'
ANY = st.text(st.one_of(st.sampled_from(HOSTILE), st.characters(blacklist_categories=("Cs",))), max_size=20)
# ... and text a model could accept, so that most examples get loaded into the kernel.
PLAUSIBLE = st.text(st.one_of(st.sampled_from("';#{}$@!-.,%&()[]<>|~^=?é*+"), st.characters(whitelist_categories=("L", "N", "P", "S"))),
                    min_size=1, max_size=15)
TEXT = st.one_of(ANY, PLAUSIBLE)
SETTINGS = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def netns():
    lab = Lab(tag="inj")
    name = lab.ns("inj")
    yield lab, name
    lab.close()


def _forward(field, value):
    raw = {"host_port": "8080", "destination": "10.0.0.2", "destination_port": "80", "hairpin": True,
           "hairpin_sources": ["10.0.0.0/24"], field: value}
    return "port_forward", [model.complete_port_forward("config[0]", model.parse_port_forward(0, raw), None, ())]


def _masquerade(field, value):
    raw = {"source": "10.0.0.0/24", field: value}
    return "masquerade", [model.complete_masquerade(model.parse_masquerade(0, raw))]


def _ruleset(lab, ns):
    return json.loads(lab.run(ns, ["nft", "-j", "list", "ruleset"]).stdout)["nftables"]


def _nft_round_trip(lab, ns, rule_set, rules):
    table = "hypervisor_network_%s" % rule_set
    lab.run(ns, ["nft", "-f", "-"], input=nft.render_table(table, rules))
    document = _ruleset(lab, ns)
    _exists, read = nft.parse_table({"nftables": document}, table)
    assert ir.canonical(read) == rules
    # Nothing outside our table; in it, exactly the compiled rules and our jumps.
    tables = {(item["table"]["family"], item["table"]["name"]) for item in document if "table" in item}
    assert ("inet", table) in tables
    ours = [item["rule"] for item in document if "rule" in item and item["rule"]["table"] == table]
    jumps = sum(1 for rule in ours if any("jump" in expr for expr in rule["expr"]))
    assert len(ours) - jumps == len(rules)
    chains = {item["chain"]["name"] for item in document if "chain" in item and item["chain"]["table"] == table}
    assert chains <= set(nft.BASE_CHAINS) | set(nft.JUMPS)


def _saves(lab, ns):
    return "".join(lab.run(ns, ["iptables-save", "-t", t]).stdout for t in ipt.TABLES)


def _iptables_round_trip(lab, ns, rule_set, rules):
    _old, jumps = ipt.parse_save(rule_set, 4, _saves(lab, ns))
    lab.run(ns, ["iptables-restore", "--noflush"], input=ipt.render_restore(rule_set, 4, rules, jumps))
    text = _saves(lab, ns)
    read, jumps = ipt.parse_save(rule_set, 4, text)
    assert ir.canonical(read) == rules
    lines = [line for line in text.splitlines() if line.startswith("-A ")]
    ours = {chain for _table, chain, _parent in ipt.CHAINS[rule_set].values()}
    expected = sum(len(v) for v in ipt.render_lines(rule_set, 4, rules).values())
    assert len([line for line in lines if line.split()[1] in ours and not line.split()[-1] in ours]) == expected
    # Built-in chains hold our jumps and nothing else (only our rules were ever loaded here).
    every = {chain for chains in ipt.CHAINS.values() for _table, chain, _parent in chains.values()}
    builtin = [line for line in lines if line.split()[1] in ipt.BUILTIN]
    assert all(line.split()[2:-1] == ["-j"] and line.split()[-1] in every for line in builtin), builtin


def _check(netns, build, field, value):
    lab, ns = netns
    try:
        rule_set, items = build(field, value)
    except ValidationError as exc:
        assert exc.field == "config[0].%s" % field
        assert exc.value == value
        event("refused")
        return
    event("accepted and loaded")
    rules = (ir.compile_port_forwards if rule_set == "port_forward" else ir.compile_masquerades)(items)
    decompile = ir.decompile_port_forwards if rule_set == "port_forward" else ir.decompile_masquerades
    assert decompile(rules) == (items, [])
    _nft_round_trip(lab, ns, rule_set, rules)
    _iptables_round_trip(lab, ns, rule_set, rules)


@SETTINGS
@given(TEXT)
@example('x";drop;#')
@example("x' accept #")
@example("!")
@example("-j")
@example("a*b")
@example("é")
def test_port_forward_in_interface(netns, value):
    _check(netns, _forward, "in_interface", value)


@SETTINGS
@given(TEXT)
@example('web" drop comment "x')
@example("guest 'db' #2; {x}")
@example("-j DROP")
@example("!")
def test_port_forward_comment(netns, value):
    _check(netns, _forward, "comment", value)


@SETTINGS
@given(TEXT)
@example('x";drop;#')
def test_masquerade_out_interface(netns, value):
    _check(netns, _masquerade, "out_interface", value)


@SETTINGS
@given(TEXT)
@example('lab" drop #')
def test_masquerade_comment(netns, value):
    _check(netns, _masquerade, "comment", value)


@pytest.mark.parametrize("backend", ["nftables", "iptables"])
@pytest.mark.parametrize("module, item", [
    ("port_forward", {"host_port": "8080", "destination": "10.0.0.2", "in_interface": 'x";drop;#'}),
    ("masquerade", {"source": "10.0.0.0/24", "out_interface": 'x";drop;#'}),
])
def test_the_module_refuses_naming_the_field_and_changes_nothing(lab, backend, module, item):
    """Through the module, on both backends: the iptables one named no field before (a raw
    IFNAMSIZ error of iptables-restore), the nftables one loaded a bare `drop`."""
    hv = lab.ns("hv")
    before = (lab.run(hv, ["nft", "list", "ruleset"]).stdout, lab.run(hv, ["iptables-save"]).stdout)
    field = "in_interface" if module == "port_forward" else "out_interface"
    result = lab.module(hv, module, {"config": [item], "backend": backend, "persist": False,
                                     "lock_file": str(lab.tmp / "lock")}, expect_fail=True)
    assert "config[0].%s" % field in result["msg"] and 'x";drop;#' in result["msg"]
    assert result.get("field") == "config[0].%s" % field
    assert (lab.run(hv, ["nft", "list", "ruleset"]).stdout, lab.run(hv, ["iptables-save"]).stdout) == before
