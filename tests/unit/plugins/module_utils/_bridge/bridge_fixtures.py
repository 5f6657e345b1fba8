# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Helpers for the bridge unit tests: host states from captured JSON, wants from parameters."""

from __future__ import annotations

import json
from pathlib import Path

from ansible_collections.hypervisor.network.plugins.module_utils._bridge.model import parse_host, want_from_params

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "bridge"


def host(name):
    captured = json.loads((FIXTURES / ("%s.json" % name)).read_text())
    routes = [dict(r, family=4) for r in captured["route4"] or []] + [dict(r, family=6) for r in captured["route6"] or []]
    return parse_host(captured["links"], captured["addr"], captured["vlan"], routes)


def want(**params):
    params.setdefault("name", "br0")
    if "ports" in params:
        params["ports"] = [p if isinstance(p, dict) else {"name": p} for p in params["ports"]]
    return want_from_params(params)


def argvs(plan):
    return [step.shown for step in plan.steps]
