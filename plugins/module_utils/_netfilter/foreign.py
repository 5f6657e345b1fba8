# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Everything netfilter holds, read into one small rule form, and a walk of the forward hook.

The one reader and walker of the collection: diagnose's forward_path check and port_forward's
coexistence check (see _netfilter/coexist.py) both ask it whether a forwarded packet gets through.

Native nftables tables come from `nft -j list ruleset`. Tables that iptables-nft owns are read
either from that same JSON (port_forward: it has the JSON anyway and must not spend another
process per run) or from `iptables-nft-save` (diagnose: nft's JSON shows their conntrack and
comment matches only as opaque "xt" expressions, while the save format spells them out), never
from both. iptables-legacy tables live in the kernel's x_tables, which nft cannot see: they come
from `iptables-legacy-save`, read only when the kernel lists legacy tables, because listing them
would otherwise load the legacy modules on a host that does not use them.

A rule is a list of matches (key, negated, value) and a verdict; a match the walk does not
understand never matches, and the walk says which rules it met that way (``notes``, and
``doubts`` for those that could have dropped or diverted the packet), so a finding never claims
more certainty than it has.
"""

from __future__ import annotations

import ipaddress

TERMINAL = ("accept", "drop", "reject")
IPTABLES_TABLES = ("filter", "nat", "mangle", "raw", "security")
# Legacy tables are keyed "legacy-filter" and so on: iptables-nft may hold a "filter" table of
# the same family at the same time, and both are walked.
LEGACY_PREFIX = "legacy-"
LEGACY_NAMES = {"ip": "/proc/net/ip_tables_names", "ip6": "/proc/net/ip6_tables_names"}
LEGACY_SAVE = {"ip": "iptables-legacy-save", "ip6": "ip6tables-legacy-save"}
# Match keys the walk cannot decide (a packet does not say whether its address is the host's own).
NOT_WALKED = ("unknown", "fib_daddr_type")
# Verdicts that, taken by a rule the walk could not decide, might have stopped the packet.
_DOUBTFUL = ("drop", "reject", "jump", "goto", "vmap", "unknown")


def rule(matches, verdict, target=None, where="", text="", nat=None, comment=None, statements=()):
    """A rule in the one small form: ``matches`` [(key, negated, values)], the ``verdict``
    (accept, drop, reject, return, jump, goto, nat, vmap, unknown or None), the jump ``target``,
    ``nat`` ({"kind", "addr", "port", "ports", "family"}), where it is and its text; ``comment``
    and ``statements`` (names of the statements that let the packet go on, counter aside) let
    nft.py tell our own rules from edited ones."""
    return {"matches": matches, "verdict": verdict, "target": target, "where": where, "text": text, "nat": nat,
            "comment": comment, "statements": tuple(statements)}


# -- nft JSON -------------------------------------------------------------------------------------

def _nft_value(right):
    """A match's right-hand side as a list of strings/ints/networks/ranges."""
    if isinstance(right, dict) and "set" in right:
        items = right["set"]
    elif isinstance(right, list):
        items = right
    else:
        items = [right]
    out = []
    for item in items:
        if isinstance(item, dict) and "prefix" in item:
            out.append(str(ipaddress.ip_network("%s/%s" % (item["prefix"]["addr"], item["prefix"]["len"]), strict=False)))
        elif isinstance(item, dict) and "range" in item:
            out.append(tuple(item["range"]))
        elif isinstance(item, (str, int)):
            out.append(item)
        else:
            out.append({"unknown": True})
    return out


def _nft_match(match):
    left, op = match["left"], match["op"]
    if op not in ("==", "!=", "in"):  # a comparison (<, >=, ...): not a set of values
        return [("unknown", False, ["%s %s" % (next(iter(left), "?"), op)])]
    negated = op == "!="
    values = _nft_value(match["right"])
    if "meta" in left:
        key = {"iifname": "iif", "oifname": "oif", "l4proto": "proto", "nfproto": "nfproto"}.get(left["meta"]["key"])
    elif "payload" in left:
        proto, field = left["payload"].get("protocol"), left["payload"].get("field")
        if proto in ("ip", "ip6") and field in ("saddr", "daddr"):
            key = field
        elif proto in ("tcp", "udp", "th") and field in ("dport", "sport"):
            key = field
            if proto != "th":
                return [("proto", False, [proto]), (field, negated, values)]
        else:
            key = None
    elif "ct" in left:
        # state (new, established, ...) and status (dnat, snat) names never overlap: one key
        key = "ct" if left["ct"]["key"] in ("state", "status") else None
    elif "fib" in left and left["fib"].get("flags") == ["daddr"] and left["fib"].get("result") == "type":
        key = "fib_daddr_type"  # `fib daddr type local`: which addresses are the host's own
    else:
        key = None
    return [(key or "unknown", negated, values)]


def nft_rule(obj, where=""):
    """One rule object of `nft -j` output in the small form: the one parser of nft's JSON rules,
    for the walk of everybody's chains and (nft.parse_table) for our own table."""
    matches, verdict, target, nat, statements = [], None, None, None, []
    xt_conntrack = False
    for expr in obj.get("expr", []):
        name = next(iter(expr))
        if name == "match":
            matches.extend(_nft_match(expr["match"]))
        elif name in ("accept", "drop", "reject", "return"):
            verdict = name
        elif name in ("jump", "goto"):
            verdict, target = name, expr[name]["target"]
        elif name in ("masquerade", "snat"):
            verdict, nat = "nat", {"kind": name}
        elif name == "dnat":
            dnat = expr["dnat"] or {}
            port = dnat.get("port")
            ports = (port, port) if isinstance(port, int) else tuple(port["range"]) if isinstance(port, dict) \
                and "range" in port else None
            verdict, nat = "nat", {"kind": "dnat", "addr": dnat.get("addr"), "port": port if isinstance(port, int) else None,
                                   "ports": ports, "family": dnat.get("family", "ip")}
        elif name == "xt":
            if expr["xt"].get("type") == "target":
                verdict = {"REJECT": "reject", "DROP": "drop", "ACCEPT": "accept"}.get(expr["xt"].get("name"), "unknown")
            elif expr["xt"].get("name") in ("conntrack", "state"):
                xt_conntrack = True
            else:
                matches.append(("unknown", False, ["xt " + str(expr["xt"].get("name"))]))
        elif name == "counter":
            continue
        elif name in ("log", "comment", "limit", "mangle"):  # statements, not matches
            statements.append(name)
        elif name == "vmap":  # a verdict map (firewalld's zone dispatch): where it jumps is not followed
            verdict = "vmap"
            matches.append(("unknown", False, ["vmap"]))
        else:
            matches.append(("unknown", False, [name]))
    if xt_conntrack:
        # iptables-nft hides xt options from JSON. An accept behind a conntrack match in a
        # forward chain is the RELATED,ESTABLISHED accept of libvirt, Docker and ufw, which a new
        # forwarded connection does not match; anything else behind one stays not understood.
        matches.append(("ct", False, ["established", "related"]) if verdict == "accept"
                       else ("unknown", False, ["xt conntrack"]))
    text = "handle %s%s" % (obj.get("handle"), " (%s)" % obj["comment"] if obj.get("comment") else "")
    return rule(matches, verdict, target, where, text, nat, obj.get("comment"), statements)


def chains_from_nft(document, skip_tables=()):
    """{(family, table, chain): {"hook", "policy", "prio", "rules"}} of the native tables."""
    chains = {}
    for item in (document or {}).get("nftables", []):
        if "chain" in item:
            chain = item["chain"]
            key = (chain["family"], chain["table"], chain["name"])
            if (chain["family"], chain["table"]) in skip_tables:
                continue
            chains[key] = {"hook": chain.get("hook"), "policy": chain.get("policy"), "prio": chain.get("prio"),
                           "type": chain.get("type"), "rules": []}
        elif "rule" in item:
            obj = item["rule"]
            key = (obj["family"], obj["table"], obj["chain"])
            if key in chains:
                where = "nft %s %s %s" % key
                chains[key]["rules"].append(nft_rule(obj, where))
    return chains


# -- iptables-save --------------------------------------------------------------------------------

_BUILTIN_HOOKS = {"PREROUTING": "prerouting", "INPUT": "input", "FORWARD": "forward", "OUTPUT": "output",
                  "POSTROUTING": "postrouting"}


def split_line(line):
    """argv of one iptables-save / iptables-restore line, split as iptables-restore splits it:
    blanks separate, a double quote opens a part in which a backslash escapes the next character,
    the closing quote ends the argument. Returns (tokens, complete); ``complete`` is False when
    a quote is left open, as in another tool's rule whose interface name holds a quote
    (iptables-save prints interface names unquoted): such a line is read, never a crash, and the
    caller treats the rule as not understood."""
    tokens, current, started = [], [], False
    quoted = escaped = False
    for char in line:
        if quoted:
            if escaped:
                current.append(char)
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                quoted = False
                tokens.append("".join(current))
                current, started = [], False
            else:
                current.append(char)
        elif char == '"':
            quoted = started = True
        elif char in " \t\n":
            if started:
                tokens.append("".join(current))
                current, started = [], False
        else:
            current.append(char)
            started = True
    if started:
        tokens.append("".join(current))
    return tokens, not quoted


def read_save(text):
    """The entries of iptables-save output, in order: (table, "chain", (name, policy)) for each
    chain line and (table, "rule", (tokens, complete, line)) for each `-A` line (split_line's
    tokens). The one reader of the save format, for our chains and everybody else's."""
    table = None
    for line in (text or "").splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif table is None:
            continue
        elif line.startswith(":"):
            name, policy = (line[1:].split() + ["-"])[:2]
            yield table, "chain", (name, policy)
        elif line.startswith("-A "):
            tokens, complete = split_line(line)
            if len(tokens) >= 2:
                yield table, "rule", (tokens, complete, line)


def split_target(text):
    """(address, ports text) of a DNAT ``--to-destination``: ``10.0.0.2:80``, ``[fd00::5]:22``,
    ``fd00::5`` (an IPv6 address without a port has no brackets), ports ``80`` or ``80-90`` or
    "" without. The one splitter, for our rules and everybody else's."""
    if text.startswith("["):
        addr, _sep, rest = text[1:].partition("]")
        return addr, rest[1:] if rest.startswith(":") else ""
    if text.count(":") == 1:
        addr, _sep, port = text.partition(":")
        return addr, port
    return text, ""


def _target_ports(text):
    """(low, high) of a DNAT target's ports ("80", "80-90"), or None (no port, or not a number)."""
    low, _sep, high = text.partition("-")
    high = high or low
    return (int(low), int(high)) if low.isdigit() and high.isdigit() else None


# Options that neither select packets nor decide the verdict: a module's name (its options are
# read) and a target's parameters (kept by name as statements: the rule is not one of ours).
_TARGET_OPTIONS = ("--to-ports", "--reject-with", "--to-source")
_FLAGS = ("--random",)


def save_rule(tokens, where="", user_chains=()):
    """The tokens after `-A CHAIN` of an iptables-save line in the small form: the one parser of
    iptables rules, tolerant (an option it does not know is a match the walk never takes as
    matching), for the walk of everybody's chains and, with the strict check on top
    (rules.rule_of, via iptables.parse_rule), for our own chains. ``user_chains`` are the chains
    a `-j`/`-g` can jump to. Raises ValueError or IndexError on an address or port of a form
    never met."""
    matches, verdict, target, nat, comment, statements = [], None, None, None, None, []
    negate = False
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        arg = tokens[i + 1] if i + 1 < len(tokens) else ""
        if tok == "!":
            negate, i = True, i + 1
            continue
        i += 1 if tok in _FLAGS else 2
        if tok in ("-i", "-o"):
            matches.append(("iif" if tok == "-i" else "oif", negate, [arg]))
        elif tok in ("-s", "-d"):
            matches.append(("saddr" if tok == "-s" else "daddr", negate, [str(ipaddress.ip_network(arg, strict=False))]))
        elif tok == "-p":
            matches.append(("proto", negate, [arg]))
        elif tok in ("--dport", "--dports", "--sport", "--sports"):
            ports = [tuple(int(p) for p in part.split(":")) if ":" in part else int(part) for part in arg.split(",")]
            matches.append(("sport" if tok.startswith("--s") else "dport", negate, ports))
        elif tok in ("--ctstate", "--state"):
            matches.append(("ct", negate, [s.lower() for s in arg.split(",")]))
        elif tok == "--dst-type":  # addrtype: nft's `fib daddr type`, which the walk cannot decide either
            matches.append(("fib_daddr_type", negate, [arg.lower()]))
        elif tok == "--comment":
            comment = arg
        elif tok == "-m":
            pass
        elif tok in _TARGET_OPTIONS or tok in _FLAGS:
            statements.append(tok)
        elif tok in ("-j", "-g"):
            upper = {"ACCEPT": "accept", "DROP": "drop", "REJECT": "reject", "RETURN": "return"}
            if arg in upper:
                verdict = upper[arg]
            elif arg in ("MASQUERADE", "SNAT"):
                verdict, nat = "nat", {"kind": arg.lower()}
            elif arg == "DNAT":
                verdict, nat = "nat", {"kind": "dnat"}
            elif arg in user_chains:
                verdict, target = ("jump" if tok == "-j" else "goto"), arg
            else:  # LOG, MARK, CHECKSUM, ...: targets that let the packet go on
                verdict = None
        elif tok == "--to-destination" and nat is not None:
            addr, port = split_target(arg)
            ports = _target_ports(port)
            nat.update(addr=addr, port=ports[0] if ports else None, ports=ports)
        else:
            matches.append(("unknown", False, [tok]))
        negate = False
    return rule(matches, verdict, target, where, " ".join(tokens), nat, comment, statements)


def chains_from_save(text, family, variant, table_prefix=""):
    """The same chain map from iptables-save output; family is "ip" or "ip6". Legacy tables get
    ``table_prefix`` so that they do not collide with iptables-nft's tables of the same name."""
    chains = {}
    for base, entry, value in read_save(text):
        table = table_prefix + base
        if entry == "chain":
            name, policy = value
            chains[(family, table, name)] = {
                "hook": _BUILTIN_HOOKS.get(name), "policy": policy.lower() if policy != "-" else None,
                "prio": 0, "type": base, "rules": []}
        else:
            # Another tool's rule is read tolerantly: an interface name with a quote in it
            # (iptables-save prints it bare) leaves a quote open; that rule is kept as one the
            # walk does not understand, and the rest of the table is read as usual.
            tokens, complete, line = value
            key = (family, table, tokens[1])
            where = "iptables-%s -t %s %s" % (variant, base, tokens[1])
            if key in chains:
                user_chains = {name for (fam, tab, name) in chains if (fam, tab) == (family, table)}
                item = None
                if complete:
                    try:
                        item = save_rule(tokens[2:], where, user_chains)
                    except (ValueError, IndexError):  # an address or port of a form we never met
                        item = None
                if item is None:
                    item = rule([("unknown", False, ["not parsed"])], "unknown", where=where, text=line[3:])
                chains[key]["rules"].append(item)
    return chains


def save_tables(text, family):
    return {(family, line[1:].strip()) for line in (text or "").splitlines() if line.startswith("*")}


def legacy_loaded(family):
    """Does the kernel hold iptables-legacy tables of ``family`` in this network namespace?"""
    try:
        with open(LEGACY_NAMES[family], "r", encoding="ascii") as handle:
            return bool(handle.read().split())
    except OSError:  # the legacy modules are not loaded at all
        return False


def read_legacy(runner, read=None):
    """{family: iptables-legacy-save output} of the families whose legacy tables are loaded, one
    process per family at most. ``read(argv)`` returns the text or None (diagnose collects
    errors); without it a failing save raises. Cached, so that the companion chain's gather
    parses the same text instead of listing table by table (which would load the legacy nat
    table on a host that has only filter)."""
    saves = {}
    for family, binary in sorted(LEGACY_SAVE.items()):
        if not legacy_loaded(family) or not runner.has(binary):
            continue
        text = read([binary]) if read is not None else runner.read([binary], cached=True)[1]
        if text is not None:
            saves[family] = text
    return saves


def legacy_chains(saves):
    chains = {}
    for family, text in sorted(saves.items()):
        chains.update(chains_from_save(text, family, "legacy", table_prefix=LEGACY_PREFIX))
    return chains


def variant_of(table):
    """Which iptables holds a table of the chain map: 'legacy', 'nft', or None (native nft)."""
    if table.startswith(LEGACY_PREFIX):
        return "legacy"
    return "nft" if table in IPTABLES_TABLES else None


# -- what the rules say -----------------------------------------------------------------------

def nat_rules(chains):
    """Every masquerade/SNAT/DNAT rule, with the matches that select its traffic."""
    found = []
    for (family, table, chain), body in sorted(chains.items()):
        for item in body["rules"]:
            if item["verdict"] == "nat":
                found.append(dict(item["nat"], family=family, where=item["where"], text=item["text"],
                                  matches=item["matches"]))
    return found


def port_forwards(chains):
    """DNAT rules as port forwards: protocol, host port, destination address and port; one entry
    per rule, so that a forward written twice shows twice."""
    forwards = []
    for item in nat_rules(chains):
        if item["kind"] != "dnat" or not item.get("addr"):
            continue
        fields = {key: values for key, negated, values in item["matches"] if not negated}
        dports = fields.get("dport") or [None]
        protos = fields.get("proto") or ["tcp"]
        iifs = fields.get("iif") or [None]
        for proto in protos:
            for dport in dports:
                low = dport[0] if isinstance(dport, tuple) else dport
                forwards.append({"protocol": proto, "host_port": low, "destination": item["addr"],
                                 "destination_port": item.get("port") or low, "in_interface": iifs[0],
                                 "where": item["where"]})
    return sorted(forwards, key=lambda f: (f["protocol"], str(f["host_port"]), f["destination"], str(f["destination_port"])))


def unique_forwards(forwards):
    """One entry per (protocol, host port, destination, destination port), whoever wrote it."""
    unique = {}
    for fwd in forwards:
        unique.setdefault((fwd["protocol"], fwd["host_port"], fwd["destination"], fwd["destination_port"]), fwd)
    return [unique[key] for key in sorted(unique, key=str)]


def _match_one(key, values, packet):
    """True/False, or None when the match is not understood. A field the packet leaves open
    (None: any outside client, any client port) is taken to be in no specific set."""
    have = packet.get(key)
    if key in NOT_WALKED or key in packet.get("unknown_fields", ()):
        return None
    if have is None:
        return False
    for value in values:
        if isinstance(value, dict):
            return None
        if key in ("iif", "oif"):
            if value.endswith("*") or value.endswith("+"):
                if have.startswith(value[:-1]):
                    return True
            elif have == value:
                return True
        elif key in ("saddr", "daddr"):
            try:
                if isinstance(value, tuple):
                    if ipaddress.ip_address(value[0]) <= ipaddress.ip_address(have) <= ipaddress.ip_address(value[1]):
                        return True
                elif ipaddress.ip_address(have) in ipaddress.ip_network(str(value), strict=False):
                    return True
            except (ValueError, TypeError):
                continue
        elif key in ("dport", "sport"):
            low, high = value if isinstance(value, tuple) else (value, value)
            if int(low) <= have <= int(high):
                return True
        elif key == "ct":
            if value in have:
                return True
        elif key == "nfproto":
            if value == packet.get("nfproto"):
                return True
        elif str(value) == str(have):
            return True
    return False


def rule_matches(item, packet):
    certain = True
    for key, negated, values in item["matches"]:
        result = _match_one(key, values, packet)
        if result is None:
            certain = False
            continue
        if result == negated:
            return False, True
    return certain, certain


def _walk(chains, family, table, name, packet, notes, doubts, depth=0):
    """(verdict, rule) of the first terminal verdict in this chain and the chains it jumps to."""
    body = chains.get((family, table, name))
    if body is None:
        return None
    if depth > 16:
        doubts.append("jumps nested too deep below %s %s %s" % (family, table, name))
        return None
    for item in body["rules"]:
        matched, certain = rule_matches(item, packet)
        if not certain and item["verdict"] is not None:
            notes.append("not understood, assumed not to match: %s: %s" % (item["where"], item["text"]))
            if item["verdict"] in _DOUBTFUL:
                doubts.append("%s: %s" % (item["where"], item["text"]))
        if not matched:
            continue
        if item["verdict"] in TERMINAL:
            return item["verdict"], item
        if item["verdict"] in ("jump", "goto"):
            inner = _walk(chains, family, table, item["target"], packet, notes, doubts, depth + 1)
            if inner is not None or item["verdict"] == "goto":
                return inner
        elif item["verdict"] == "return":
            return None
    return None


def forward_bases(chains):
    """The base chains of the forward hook in the order the kernel runs them: index once, ask
    about many packets."""
    return [(key, body) for key, body in sorted(chains.items(), key=lambda kv: (kv[1].get("prio") or 0, kv[0]))
            if body["hook"] == "forward" and body.get("type") in (None, "filter")]


def forward_verdicts(chains, packet, bases=None):
    """The verdict of every base chain on the forward hook for ``packet`` (it must pass all).
    ``bases`` is forward_bases(chains) when the caller asks about many packets."""
    families = ("ip", "inet") if packet["nfproto"] == "ipv4" else ("ip6", "inet")
    results = []
    for (family, table, name), body in (forward_bases(chains) if bases is None else bases):
        if family not in families:
            continue
        notes, doubts = [], []
        found = _walk(chains, family, table, name, packet, notes, doubts)
        if found is None:
            verdict, by = (body["policy"] or "accept"), "policy of %s %s %s" % (family, table, name)
        else:
            verdict, by = found[0], "%s: %s" % (found[1]["where"], found[1]["text"])
        results.append({"chain": "%s %s %s" % (family, table, name), "key": (family, table, name), "verdict": verdict,
                        "by": by, "by_policy": found is None, "notes": notes, "doubts": doubts})
    return results
