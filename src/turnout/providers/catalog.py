"""The bundled model catalog (`catalog.yaml`) and per-model overrides.

The catalog is package data read with `importlib.resources`, validated with the same
strict model that validates config overrides, and returned as immutable `ModelInfo` rows.
The bundled catalog carries each model's price from the one price table,
`turnout.pricing` (`prices.yaml`), so no price is written twice.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from turnout.pricing.table import Price, PriceTable, bundled_prices, lookup_price
from turnout.providers.types import ModelInfo

Catalog = Mapping[str, Mapping[str, ModelInfo]]
"""Catalog section (provider kind) -> provider model id -> capabilities and prices."""


class ModelFields(BaseModel):
    """A partial `ModelInfo`: the fields a catalog row or a config override sets."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    context_window: int | None = Field(None, gt=0)
    max_output_tokens: int | None = Field(None, gt=0)
    tools: bool | None = None
    vision: bool | None = None
    json_schema: bool | None = None
    reasoning: bool | None = None
    price: Price | None = None
    """Replaces the bundled price row as a whole; `null` leaves the model unpriced."""

    def apply(self, info: ModelInfo) -> ModelInfo:
        """`info` with every field this object explicitly sets. An explicit `null` clears a
        limit or price, and makes a capability unknown (never grounds for skipping)."""
        updates: dict[str, Any] = {name: getattr(self, name) for name in self.model_fields_set}
        return dataclasses.replace(info, **updates)


class CatalogError(ValueError):
    """The catalog YAML is malformed (a packaging bug, or a bad custom catalog)."""


def parse_catalog(text: str) -> Catalog:
    """Validate catalog YAML text into immutable `ModelInfo` rows."""
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise CatalogError("catalog: expected a mapping of provider kind -> models")
    sections: dict[str, Mapping[str, ModelInfo]] = {}
    for section, models in data.items():
        if not isinstance(models, dict):
            raise CatalogError(f"catalog.{section}: expected a mapping of model id -> fields")
        rows: dict[str, ModelInfo] = {}
        for model, fields in models.items():
            try:
                parsed = ModelFields.model_validate(fields or {})
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"])
                raise CatalogError(f"catalog.{section}.{model}.{where}: {first['msg']}") from None
            rows[str(model)] = parsed.apply(ModelInfo())
        sections[str(section)] = MappingProxyType(rows)
    return MappingProxyType(sections)


@functools.lru_cache(maxsize=1)
def bundled_catalog() -> Catalog:
    """The catalog shipped in the package with the bundled prices joined in (parsed once;
    the result is immutable)."""
    text = resources.files("turnout.providers").joinpath("catalog.yaml").read_text("utf-8")
    return with_prices(parse_catalog(text), bundled_prices())


def with_prices(catalog: Catalog, prices: PriceTable) -> Catalog:
    """`catalog` with each row's price taken from `prices` (same sections and model ids)."""
    return MappingProxyType({
        section: MappingProxyType({
            model: dataclasses.replace(info, price=lookup_price(prices, section, model))
            for model, info in rows.items()})
        for section, rows in catalog.items()})


def lookup(catalog: Catalog, section: str | None, model: str) -> ModelInfo:
    """Catalog facts for `model`, or an all-unknown `ModelInfo` for a model the catalog
    does not know (new models work before the catalog learns about them)."""
    if section is None:
        return ModelInfo()
    return catalog.get(section, {}).get(model, ModelInfo())
