"""Rules that span several keys: references between providers, routes and overrides,
fallback cycles, deployment ids and policy consistency. Each problem is a (key path,
message) pair so that errors point at the line to fix."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from turnout.config.errors import format_path
from turnout.config.policies import merge_policy, policy_problems

if TYPE_CHECKING:
    from turnout.config.schema import GatewayConfig, RouteConfig

Problem = tuple[str, str]
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


def cross_check(config: GatewayConfig) -> list[Problem]:
    """Every cross-reference problem in `config`, in file order."""
    problems: list[Problem] = []
    for name in config.providers:
        if not _NAME.match(name):
            problems.append((format_path(["providers", name]),
                             "provider names may use only letters, digits, '_', '-' and "
                             "'.', and start with a letter or digit"))
    problems += _check_overrides(config)
    problems += _check_targets(config)
    problems += _check_fallbacks(config)
    problems += _check_policies(config)
    return problems


def _known(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return listed or "none"


def _check_overrides(config: GatewayConfig) -> list[Problem]:
    problems: list[Problem] = []
    for key in config.models:
        provider, sep, model = key.partition("/")
        path = format_path(["models", key])
        if not sep or not provider or not model:
            problems.append((path, "expected a '<provider>/<model>' key"))
        elif provider not in config.providers:
            problems.append((path, f"unknown provider {provider!r} "
                                   f"(configured: {_known(config.providers)})"))
    return problems


def _check_targets(config: GatewayConfig) -> list[Problem]:
    problems: list[Problem] = []
    owners: dict[str, tuple[str, str, str]] = {}  # id -> (provider, model, where)
    for alias, route in config.routes.items():
        seen: set[str] = set()
        for i, target in enumerate(route.targets):
            where: list[int | str] = ["routes", alias, "targets", i]
            if target.provider not in config.providers:
                problems.append((format_path([*where, "provider"]),
                                 f"unknown provider {target.provider!r} "
                                 f"(configured: {_known(config.providers)})"))
            did = target.deployment_id
            if did in seen:
                problems.append((format_path(where), f"duplicate target id {did!r} in this "
                                 "route; give each target a distinct `id`"))
                continue
            seen.add(did)
            owner = owners.setdefault(did, (target.provider, target.model, format_path(where)))
            if owner[:2] != (target.provider, target.model):
                problems.append((format_path([*where, "id"]),
                                 f"id {did!r} already names {owner[0]}/{owner[1]} "
                                 f"at {owner[2]}"))
    return problems


def _check_fallbacks(config: GatewayConfig) -> list[Problem]:
    problems: list[Problem] = []
    for alias, route in config.routes.items():
        for j, fallback in enumerate(route.fallbacks):
            if fallback not in config.routes:
                problems.append((format_path(["routes", alias, "fallbacks", j]),
                                 f"unknown route {fallback!r}"))
    for cycle in find_cycles(config.routes):
        problems.append((format_path(["routes", cycle[0], "fallbacks"]),
                         "fallback cycle " + " -> ".join(cycle)))
    return problems


def find_cycles(routes: dict[str, RouteConfig]) -> list[list[str]]:
    """Each fallback cycle once, as the path that closes it: `['a', 'b', 'a']`."""
    cycles: list[list[str]] = []
    seen_sets: set[frozenset[str]] = set()
    state: dict[str, int] = {}  # 1 = on the current path, 2 = finished
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in routes[node].fallbacks:
            if nxt not in routes:
                continue
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt):], nxt]
                key = frozenset(cycle)
                if key not in seen_sets:
                    seen_sets.add(key)
                    cycles.append(cycle)
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for alias in routes:
        if alias not in state:
            visit(alias)
    return cycles


def _check_policies(config: GatewayConfig) -> list[Problem]:
    problems = [(format_path(["router", "policy", *path.split(".")]), msg)
                for path, msg in policy_problems(config.router.policy)]
    for alias, route in config.routes.items():
        if route.policy is None:
            continue
        merged = merge_policy(config.router.policy, route.policy)
        problems += [(format_path(["routes", alias, "policy", *path.split(".")]), msg)
                     for path, msg in policy_problems(merged)]
    return problems
