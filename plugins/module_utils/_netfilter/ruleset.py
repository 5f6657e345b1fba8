# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""want / have / plan / apply of a rule set, shared by masquerade and port_forward (their entries
are masquerade_module.py and port_forward_module.py, which say what differs: the Kind)."""

from __future__ import annotations

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as rules_ir
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import coexist
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as chains_reader
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError, ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._lock import default_lock_path, host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import persist as boot
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rollback
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.backend import (
    IptablesBackend,
    NftBackend,
    select_backend,
)
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

STATES = ["merged", "replaced", "overridden", "deleted", "gathered", "rendered"]


class Kind:
    """What differs between masquerade and port_forward."""

    def __init__(self, name, parse, key_of, compile_rules, decompile, forwards=False):
        self.name = name
        self.forwards = forwards
        self.parse = parse
        self.key_of = key_of
        self.compile = compile_rules
        self.decompile = decompile


def common_argument_spec(item_options, **extra):
    """The options both modules share, with the module's ``config`` suboptions and ``extra`` options."""
    return dict(
        config=dict(type="list", elements="dict", options=item_options),
        state=dict(type="str", default="merged", choices=STATES),
        backend=dict(type="str", default="auto", choices=["auto", "nftables", "iptables"]),
        iptables_variant=dict(type="str", default="auto", choices=["auto", "nft", "legacy"]),
        persist=dict(type="bool", default=True),
        persist_dir=dict(type="path"),
        nftables_conf=dict(type="path"),
        systemd_unit_dir=dict(type="path", default="/etc/systemd/system"),
        lock_file=dict(type="path"),
        rollback_timeout=dict(type="int"),
        _rollback_confirm=dict(type="str", no_log=False),
        **extra
    )


def _complete(kind, connected):
    if not kind.forwards:
        return lambda index, partial, base: model.complete_masquerade(partial, base)
    return lambda index, partial, base: model.complete_port_forward("config[%d]" % index, partial, base, connected)


def _routes(runner):
    routes = []
    for family in (4, 6):
        listed = runner.read_json(["ip", "-%d" % family, "-j", "route", "show", "table", "main"]) or []
        routes.extend(dict(route, family=family) for route in listed)
    return routes


def _desired(kind, state, partials, have_items, connected):
    items = model.desired_items(state, partials, have_items, kind.key_of, _complete(kind, connected))
    items = model.dedupe(items)
    if kind.forwards:
        model.check_conflicts(items)
    return model.sort_items(items)


def run(module, kind):
    params = module.params
    runner = Runner(module)
    state = params["state"]
    config = params["config"]
    if state in ("merged", "replaced", "rendered") and config is None:
        raise ValidationError("config", None, "config is required with state=%s" % state)
    partials = [kind.parse(index, dict(raw)) for index, raw in enumerate(config or [])]

    if state == "rendered":
        connected = rules_ir.connected_subnets(_routes(runner)) if runner.has("ip") else []
        items = _desired(kind, "overridden", partials, [], connected)
        backend = (IptablesBackend if params["backend"] == "iptables" else NftBackend)(runner, kind.name, params)
        wanted = kind.compile(items)
        result = build_result(module, False, [], None, rendered=_rendered(backend, wanted), backend=backend.name)
        del result["before"]  # nothing was read from the host
        return result

    _validate_rollback(params)
    # One lock over read -> plan -> apply: a run that read the table before another run applied
    # would write it back without the other's items.
    with host_lock(params.get("lock_file")):
        return _converge(module, kind, runner, partials)


def _converge(module, kind, runner, partials):
    """read -> plan -> apply, under the host lock."""
    params = module.params
    state = params["state"]
    config = params["config"]
    backend = select_backend(runner, params["backend"], kind.name, params)
    # One `nft -j list ruleset` serves both our own rules and the coexistence walk.
    ruleset = coexist.read_ruleset(runner) if kind.forwards and state != "gathered" else None
    have_rules = rules_ir.canonical(backend.gather(ruleset if isinstance(backend, NftBackend) else None))
    have_items, _unexplained = kind.decompile(have_rules)
    before = [item.to_dict() for item in have_items]
    if state == "gathered":
        return build_result(module, False, [], before, gathered=before, backend=backend.name)

    routes = _routes(runner) if kind.forwards else []
    items = _desired(kind, state, partials, have_items, rules_ir.connected_subnets(routes))
    if kind.forwards and state != "deleted" and not params.get("allow_local_port_takeover"):
        loaded = set(have_rules)  # forwards already in place (taken over earlier, on purpose) stay
        coexist.refuse_local_takeover(runner, [item for item in items if not set(kind.compile([item])) <= loaded],
                                      {kind.key_of(partial): index for index, partial in enumerate(partials)})
    wanted = kind.compile(items)
    report, companions = [], []
    if kind.forwards:
        chains, legacy = coexist.read_chains(runner, ruleset)
        nft_backend = isinstance(backend, NftBackend)
        variants = _companion_variants(runner, legacy) if nft_backend else ()
        report, needs = coexist.assess(chains, items, params["coexistence"], routes, companions=variants,
                                       ours=None if nft_backend else backend.variant)
        for variant in variants:
            companion = _companion(runner, params, variant, legacy)
            have = rules_ir.canonical(companion.gather())
            want = [r for r in wanted if r.chain in (rules_ir.FORWARD, rules_ir.HAIRPIN_FORWARD)
                    and (variant, r.family) in needs]
            companions.append((companion, have, want))
    else:
        legacy = chains_reader.read_legacy(runner)

    others = _stale_owners(runner, backend, kind, params, legacy, holding_only=False)
    stale = [other for other in others if _holds_rules(other)]
    runtime_changed = wanted != have_rules
    companions_changed = [c for c in companions if c[2] != c[1]]
    outcome = _apply(runner, params, kind, backend, wanted, stale, companions, companions_changed, runtime_changed,
                     others)

    changed = runtime_changed or bool(companions_changed) or outcome["files_changed"] or bool(stale)
    if outcome["warning"]:
        module.warn(outcome["warning"])
    extra = {}
    if outcome["rollback"] is not None:
        extra["rollback"] = outcome["rollback"]

    def after():
        after_rules = backend.gather() if runtime_changed and not runner.check_mode else wanted
        return [item.to_dict() for item in kind.decompile(after_rules)[0]]

    def diff():
        header = "%s rules (%s)" % (kind.name, backend.name)
        return {"before": backend.show(have_rules), "after": backend.show(wanted),
                "before_header": header, "after_header": header}

    return build_result(
        module, changed, runner.commands, before, after=after, diff=diff,
        backend=backend.name, persisted=outcome["persisted"], coexistence=report,
        removed_stale=["%s (%s)" % (other.kind, _placement(other)) for other in stale],
        # The arguments as given: a thousand forwards with every unset suboption spelled out as
        # null would double what Ansible must carry back and scrub.
        invocation={"module_args": dict(params, config=[
            {name: value for name, value in item.items() if value is not None} for item in config or []
        ] if config is not None else None)},
        **extra
    )


def _companion_variants(runner, legacy):
    """The iptables variants a companion chain can go into next to the nftables backend: nft
    where its restore is installed, legacy only where legacy tables are loaded (``legacy``, the
    saves read for the coexistence walk) and its restore is installed."""
    variants = []
    if runner.has("iptables-nft-restore"):
        variants.append("nft")
    if legacy and runner.has("iptables-legacy-restore"):
        variants.append("legacy")
    return variants


def _companion(runner, params, variant, legacy):
    """Our FORWARD accepts in the iptables ``variant``. The legacy one parses the save already
    read (no table-by-table listing, which would load legacy tables)."""
    if variant == "legacy":
        return IptablesBackend(runner, "port_forward_accept", dict(params, iptables_variant="legacy"), saved=legacy)
    return IptablesBackend(runner, "port_forward_accept", dict(params, iptables_variant="nft"))


def _stale_owners(runner, backend, kind, params, legacy, holding_only=True):
    """Our rules left where this run does not put them (the host switched backend or iptables
    variant, or a companion chain is no longer needed): they are removed in the same apply.
    ``legacy`` are the iptables-legacy saves already read (empty where no legacy table is
    loaded: listing one would load it). Companions next to the nftables backend are kept or
    emptied by the companion plan itself."""
    ours = backend.variant if isinstance(backend, IptablesBackend) else None
    candidates = []
    if ours is not None and runner.has("nft"):
        candidates.append(NftBackend(runner, kind.name, params))
    if ours != "nft" and runner.has("iptables-nft-save"):
        candidates.append(IptablesBackend(runner, kind.name, dict(params, iptables_variant="nft")))
    if ours != "legacy" and legacy:
        candidates.append(IptablesBackend(runner, kind.name, dict(params, iptables_variant="legacy"), saved=legacy))
    if ours is not None and kind.forwards:
        if runner.has("iptables-nft-save"):
            candidates.append(_companion(runner, params, "nft", legacy))
        if legacy:
            candidates.append(_companion(runner, params, "legacy", legacy))
    return [other for other in candidates if _holds_rules(other)] if holding_only else candidates


def _placement(owner):
    return owner.name if isinstance(owner, NftBackend) else "iptables-%s" % owner.variant


def _holds_rules(other):
    return bool(other.gather()) or any(getattr(other, "jumps", {}).values())


def _lock_path(params):
    return params.get("lock_file") or default_lock_path()


def _validate_rollback(params):
    timeout = params.get("rollback_timeout")
    if timeout is not None and not 1 <= timeout <= 3600:
        raise ValidationError("rollback_timeout", timeout, "seconds from 1 to 3600")


def _rollback_gate(params, kind, check_mode):
    """Under the host lock, before any change: confirm the ``rollback_timeout`` of an earlier
    run (``_rollback_confirm``, sent by the action plugin over a fresh connection), or refuse to
    change rules that a pending rollback would put back underneath this run."""
    lock = _lock_path(params)
    if params.get("_rollback_confirm"):
        return rollback.confirm(lock, kind.name, params["_rollback_confirm"])
    waiting = rollback.pending(lock, kind.name)
    if waiting and not check_mode:
        raise HypervisorNetworkError(
            "an earlier %s task with rollback_timeout is not confirmed yet (%s): its watcher would undo this "
            "run; wait until it is confirmed or its timeout has passed" % (kind.name, waiting)
        )
    return None


def _persist_ops(params, backend, wanted, stale, companions, others=()):
    """Every boot file this run writes: ours, the stale owners' (emptied), the companions'; and
    the removal of boot files left by another owner that holds no rule any more (a switch of
    backend confirmed after rollback_timeout, or a boot file whose rules were flushed)."""
    ops, warnings = [], []
    backend_ops, persisted, warning = backend.persist_ops(wanted)
    ops += backend_ops
    warnings.append(warning)
    for other in stale:
        other_ops, _files, warning = other.persist_ops([])
        ops += other_ops
        warnings.append(warning)
    for other in others:
        if not any(other is owner for owner in stale):
            other_ops, _files, _warning = other.persist_ops([])
            ops += [op for op in other_ops if isinstance(op, boot.FileOp) and op.content is None]
    for companion, have, want in companions:
        if want or have:
            companion_ops, companion_files, _warning = companion.persist_ops(want)
            ops += companion_ops
            persisted["companion" if companion.variant == "nft" else "legacy_companion"] = companion_files
    return ops, persisted, next((w for w in warnings if w), None)


def _apply(runner, params, kind, backend, wanted, stale, companions, companions_changed, runtime_changed, others=()):
    """All or nothing: the boot files are written beside their targets first (a full disk or a
    read-only directory fails here, before any rule changes), then every owner is changed, each
    read just before, then the files are renamed into place. A failure on the way puts back the
    rules of every owner changed so far and the files, then fails.

    With ``rollback_timeout``, a run that changes rules writes no boot file: the rules go back
    unless the controller confirms in time, and the confirming run persists them. Called under
    the host lock."""
    confirmed = _rollback_gate(params, kind, runner.check_mode)
    timeout = params.get("rollback_timeout")
    deferred = bool(timeout) and (runtime_changed or bool(stale) or bool(companions_changed))
    persisted, warning, ops = None, None, []
    if params["persist"] and not deferred:
        ops, persisted, warning = _persist_ops(params, backend, wanted, stale, companions, others)
    files = boot.FileTransaction(runner, ops)
    files.stage()
    guard = rollback.RuntimeGuard(runner)
    try:
        if runtime_changed:
            guard.before_change(backend)
            backend.apply(wanted)
        for other in stale:
            guard.before_change(other)
            other.apply([])
        for companion, _have, want in companions_changed:
            guard.before_change(companion)
            companion.apply(want)
        files.commit()
    except HypervisorNetworkError as exc:
        files.rollback()
        guard.rollback(exc)
        raise
    armed = confirmed
    if deferred:
        armed = {"pending": False, "timeout": timeout}
        if not runner.check_mode:
            armed = rollback.arm(runner, _lock_path(params), kind.name, timeout, guard.steps())
    return {"files_changed": files.changed, "persisted": persisted, "warning": warning, "rollback": armed}


def _rendered(backend, wanted):
    if isinstance(backend, NftBackend):
        return [backend.script(wanted)]
    return backend.show(wanted).splitlines()
