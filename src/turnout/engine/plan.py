"""Turning a route into the ordered list of deployments one request may try."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from turnout.core.errors import ModelNotFound
from turnout.providers.types import Deployment, Route


@dataclass(frozen=True, slots=True)
class Candidate:
    """A deployment in a request's plan, with the route whose policy governs it."""

    deployment: Deployment
    route: Route
    fallback_depth: int
    """0 for the requested route, n for the n-th fallback route."""


def resolve(routes: Mapping[str, Route], alias: str) -> Route:
    route = routes.get(alias)
    if route is None:
        raise ModelNotFound(
            f"The model '{alias}' does not exist or you do not have access to it.",
            param="model",
        )
    return route


def build_plan(
    routes: Mapping[str, Route],
    route: Route,
    order: Callable[[Route], list[Deployment]],
) -> list[Candidate]:
    """The route's deployments (ordered by `order`: priority tiers, balanced), then each
    fallback route's, depth first, each route at most once (config rejects cycles; the
    `seen` set also guards against a diamond visiting a route twice)."""
    plan: list[Candidate] = []
    seen: set[str] = set()

    def visit(current: Route, depth: int) -> None:
        if current.alias in seen:
            return
        seen.add(current.alias)
        plan.extend(Candidate(d, current, depth) for d in order(current))
        for name in current.fallbacks:
            fallback = routes.get(name)
            if fallback is not None:
                visit(fallback, depth + 1)

    visit(route, 0)
    return plan
