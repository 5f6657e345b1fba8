# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""want / have / plan / apply of a rule set, shared by masquerade and port_forward (their entries
are masquerade_module.py and port_forward_module.py, which say what differs: the Kind)."""

from __future__ import annotations

import contextlib
import gc

from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import model
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rules as rules_ir
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import foreign as nf
from ansible_collections.hypervisor.network.plugins.module_utils._errors import HypervisorNetworkError, ValidationError
from ansible_collections.hypervisor.network.plugins.module_utils._lock import default_lock_path, host_lock
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import persist
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter import rollback
from ansible_collections.hypervisor.network.plugins.module_utils._netfilter.backend import (
    Paths,
    requested_backend,
    select_backend,
)
from ansible_collections.hypervisor.network.plugins.module_utils._result import build_result
from ansible_collections.hypervisor.network.plugins.module_utils._runner import Runner

STATES = ["merged", "replaced", "overridden", "deleted", "gathered", "rendered"]


class Kind:
    """What differs between the rule-set modules: the items and their rules (parse, key, complete,
    compile, and ``items_of``: the items a list of rules holds), and what a kind reads of the host
    besides its own rules. This base is the plain kind (masquerade);
    port_forward_module.PortForwardKind adds the routes, the local listener guard, the walk of
    other owners' chains and the companion chains."""

    def __init__(self, rule_set, parse, key_of, complete, compile_rules, items_of):
        self.rule_set = rule_set  # the name of the set of our rules this kind writes
        self.parse = parse
        self.key_of = key_of
        self._complete = complete
        self.compile = compile_rules
        self.items_of = items_of

    def first_reads(self):
        """The reads a converging run starts with (``Runner.prefetch``), started at once."""
        return []

    def read_ruleset(self, runner):
        """`nft -j list ruleset` where the kind needs more than its own table, else None."""
        return None

    def routes(self, runner):
        """The routes the kind's items are completed and placed with."""
        return []

    def desired(self, state, partials, have_items, routes):
        connected = rules_ir.connected_subnets(routes)
        items = model.desired_items(state, partials, have_items, self.key_of,
                                    lambda index, partial, base: self._complete(index, partial, base, connected))
        return model.sort_items(model.dedupe(items))

    def guard(self, runner, params, partials, items, have_items, have_rules):
        """Refuse, before anything changes, what the kind must not do to the host."""

    def surroundings(self, runner, params, backend, listing, items, wanted, routes):
        """Surroundings: what the run found of other owners and the companion chains it plans."""
        return Surroundings(legacy=nf.read_legacy(runner))


class Surroundings:
    """What a run found around its own rules: ``report`` (coexistence findings), ``companions``
    ((owner, have, want) of the companion chains planned next to the nftables backend),
    ``legacy`` (the iptables-legacy saves already read) and ``elsewhere`` (further owners where
    the kind's rules may linger)."""

    def __init__(self, legacy, report=(), companions=(), elsewhere=()):
        self.legacy = legacy
        self.report = list(report)
        self.companions = list(companions)
        self.elsewhere = list(elsewhere)


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


def run(module, kind):
    params = module.params
    runner = Runner(module)
    state = params["state"]
    config = params["config"]
    if state in ("merged", "replaced", "rendered") and config is None:
        raise ValidationError("config", None, "config is required with state=%s" % state)
    partials = [kind.parse(index, dict(raw)) for index, raw in enumerate(config or [])]

    if state == "rendered":
        routes = kind.routes(runner) if runner.has("ip") else []
        backend = requested_backend(runner, params["backend"], params["iptables_variant"], kind.rule_set,
                                    Paths.from_params(params))
        wanted = kind.compile(kind.desired("overridden", partials, [], routes))
        result = build_result(module, False, [], None, rendered=backend.rendered(wanted), backend=backend.name)
        del result["before"]  # nothing was read from the host
        return result

    _validate_rollback(params)
    # One lock over read -> plan -> apply: a run that read the table before another run applied
    # would write it back without the other's items.
    with host_lock(params.get("lock_file")), _without_cycle_collection():
        return _converge(module, kind, runner, partials)


@contextlib.contextmanager
def _without_cycle_collection():
    """Python's cycle collector paused while a run reads, plans and applies. The run holds nft's
    JSON of the whole ruleset (about 200,000 objects at 1000 forwards) while it parses and plans,
    and every full pass of the collector walks all of them again, for nothing: none of it is in
    a reference cycle, and reference counting frees it when the run returns. Those passes took
    a fifth of a no-change run at 1000 forwards. The collector runs again afterwards, as before."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _converge(module, kind, runner, partials):
    """want -> have -> plan -> apply, under the host lock."""
    params = module.params
    state = params["state"]
    # One `nft -j list ruleset` serves our own rules and, for port_forward, the coexistence walk
    # and the question whether nft works and which iptables-nft tables exist.
    listing = None
    if state != "gathered":
        runner.prefetch(kind.first_reads())
        listing = kind.read_ruleset(runner)
    backend = select_backend(runner, params["backend"], params["iptables_variant"], kind.rule_set,
                             Paths.from_params(params), listing)
    have_rules = rules_ir.canonical(backend.gather(listing))
    have_items = kind.items_of(have_rules)
    before = [item.to_dict() for item in have_items]
    if state == "gathered":
        return build_result(module, False, [], before, gathered=before, backend=backend.name)

    routes = kind.routes(runner)
    items = kind.desired(state, partials, have_items, routes)
    kind.guard(runner, params, partials, items, have_items, have_rules)
    wanted = kind.compile(items)
    around = kind.surroundings(runner, params, backend, listing, items, wanted, routes)
    others = backend.elsewhere(around.legacy, listing) + around.elsewhere
    stale = [other for other in others if other.holds_rules()]
    runtime_changed = wanted != have_rules
    companions_changed = [c for c in around.companions if c[2] != c[1]]
    outcome = _apply(runner, params, kind, backend, wanted, stale, around.companions, companions_changed,
                     runtime_changed, others)

    changed = runtime_changed or bool(companions_changed) or outcome["files_changed"] or bool(stale)
    for warning in outcome["warnings"]:
        module.warn(warning)
    extra = {}
    if outcome["rollback"] is not None:
        extra["rollback"] = outcome["rollback"]

    def after():
        # The items of the rules this run planned, not of a second listing of our table: `nft -f`
        # and iptables-restore apply all or nothing, and what they load reads back as ``wanted``
        # (the next run compares exactly that and would report a change otherwise), so the
        # read-back cost a listing and a parse of 3N rules at N forwards and told nothing new.
        return [item.to_dict() for item in kind.items_of(wanted)]

    def diff():
        header = "%s rules (%s)" % (kind.rule_set, backend.name)
        return {"before": backend.show(have_rules), "after": backend.show(wanted),
                "before_header": header, "after_header": header}

    config = params["config"]
    return build_result(
        module, changed, runner.commands, before, after=after, diff=diff,
        backend=backend.name, persisted=outcome["persisted"], coexistence=around.report,
        removed_stale=["%s (%s)" % (other.rule_set, other.placement) for other in stale],
        # The arguments as given: a thousand forwards with every unset suboption spelled out as
        # null would double what Ansible must carry back and scrub.
        invocation={"module_args": dict(params, config=[
            {name: value for name, value in item.items() if value is not None} for item in config or []
        ] if config is not None else None)},
        **extra
    )


def _lock_path(params):
    return params.get("lock_file") or default_lock_path()


def _validate_rollback(params):
    timeout = params.get("rollback_timeout")
    if timeout is not None and not 1 <= timeout <= 3600:
        raise ValidationError("rollback_timeout", timeout, "seconds from 1 to 3600")


def _rollback_gate(params, kind, runner):
    """Under the host lock, before any change: confirm the ``rollback_timeout`` of an earlier
    run (``_rollback_confirm``, sent by the action plugin over a fresh connection), or refuse to
    change rules that a pending rollback would put back underneath this run. (confirmation or
    None, a warning or None.)

    The state file of a watcher that died (killed before its timeout) blocks nothing: that
    watcher will never put anything back. The run says so and removes the file."""
    lock = _lock_path(params)
    if params.get("_rollback_confirm"):
        return rollback.confirm(lock, kind.rule_set, params["_rollback_confirm"]), None
    waiting, abandoned = rollback.pending(lock, kind.rule_set)
    if waiting and not runner.check_mode:
        raise HypervisorNetworkError(
            "an earlier %s task with rollback_timeout is not confirmed yet (%s): its watcher would undo this "
            "run; wait until it is confirmed or its timeout has passed" % (kind.rule_set, waiting)
        )
    warning = None
    if abandoned:
        warning = (
            "the watcher of an earlier %s task with rollback_timeout is gone without putting the previous rules "
            "back (%s): what that task applied is still in place, unconfirmed, and this run went on from it"
            % (kind.rule_set, ", ".join(abandoned))
        )
        # our own bookkeeping, like the watcher's state itself: not a command of the result
        runner.call(None, rollback.forget, abandoned)
    return None, warning


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
            ops += [op for op in other_ops if isinstance(op, persist.FileOp) and op.content is None]
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
    confirmed, gate_warning = _rollback_gate(params, kind, runner)
    timeout = params.get("rollback_timeout")
    deferred = bool(timeout) and (runtime_changed or bool(stale) or bool(companions_changed))
    persisted, warning, ops = None, None, []
    if params["persist"] and not deferred:
        ops, persisted, warning = _persist_ops(params, backend, wanted, stale, companions, others)
    files = persist.FileTransaction(runner, ops)
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
        # the watcher and its state file are our own bookkeeping, not a command of the result;
        # in check mode nothing was changed, so nothing is armed
        armed = runner.call(None, rollback.arm, runner, _lock_path(params), kind.rule_set, timeout, guard.steps()) \
            or {"pending": False, "timeout": timeout}
    return {"files_changed": files.changed, "persisted": persisted, "warnings": [w for w in (gate_warning, warning) if w],
            "rollback": armed}
