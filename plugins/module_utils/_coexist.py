# -*- coding: utf-8 -*-
# Copyright: hypervisor.network developers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Coexistence with other rule owners (placeholder until the forward-path check lands)."""

from __future__ import annotations


def plan_coexistence(runner, backend, kind, forwards):
    return []
