"""`ConfigError` and the translation of pydantic errors into one line per problem.

Every line starts with the key path as written in the YAML (`providers.openai.api_key`),
then says what is wrong. Pydantic's internal union tags are dropped from paths, and an
unknown key lists the keys allowed at that place.
"""

from __future__ import annotations

import collections.abc
import difflib
import types
import typing
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from turnout.config.secrets import describe_input
from turnout.providers.rows import PROVIDER_ROWS

Loc = tuple[int | str, ...]


class ConfigError(Exception):
    """The configuration is invalid. `problems` holds one message per problem, each
    starting with the key path it concerns."""

    def __init__(self, problems: Sequence[str], source: str | None = None) -> None:
        self.problems = list(problems)
        self.source = source
        head = f"invalid configuration{f' in {source}' if source else ''}"
        if len(self.problems) == 1:
            message = f"{head}: {self.problems[0]}"
        else:
            message = head + ":\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message)


class ConfigProblems(ValueError):
    """Raised inside validators for cross-reference problems that carry their own paths."""

    def __init__(self, problems: Sequence[tuple[str, str]]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(f"{p}: {m}" for p, m in self.problems))


def format_path(parts: Iterable[int | str]) -> str:
    """`a.b[0]."c.d"`: list indexes in brackets, keys containing dots quoted."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = f'"{part}"' if ("." in part or " " in part or not part) else part
        out += f".{text}" if out else text
    return out or "(top level)"


def format_validation_error(
    exc: ValidationError, data: Any, root: type[BaseModel], prefix: Loc = ()
) -> list[str]:
    """One readable line per pydantic error. `data` is the raw input (to tell keys from
    union tags in error locations); `root` the model validated, `prefix` its location."""
    lines: list[str] = []
    errors = exc.errors(include_url=False)
    for err in errors:
        if err["type"] == "too_short" and _has_nested(err["loc"], errors):
            continue  # "0 items after validation" merely echoes the items' own errors
        ctx = err.get("ctx") or {}
        if isinstance(ctx.get("error"), ConfigProblems):
            problems = ctx["error"].problems
            lines.extend(f"{format_path(prefix)}.{p}: {m}" if prefix else f"{p}: {m}"
                         for p, m in problems)
            continue
        loc = tuple(err["loc"])
        path = prefix + _data_path(loc, data, err["type"])
        lines.append(f"{format_path(path)}: {_message(err, loc, root)}")
    return list(dict.fromkeys(lines))


def _has_nested(loc: Any, errors: Sequence[Any]) -> bool:
    n = len(loc)
    return any(len(e["loc"]) > n and tuple(e["loc"][:n]) == tuple(loc) for e in errors)


def _data_path(loc: Loc, data: Any, kind: str) -> Loc:
    """The path of `loc` in the raw data: pydantic inserts union tags (`openai` for a
    provider of kind openai, or a class name) that are not keys of the YAML."""
    out: list[int | str] = []
    node = data
    for i, part in enumerate(loc):
        last = i == len(loc) - 1
        if isinstance(node, dict):
            is_tag = part == node.get("kind") and not last and loc[i + 1] in node
            if part in node and not is_tag:
                out.append(part)
                node = node[part]
                continue
            if last and kind in ("missing", "extra_forbidden"):
                out.append(part)
            continue  # a union tag, or a key the YAML does not have
        if isinstance(node, list | tuple) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
            continue
        if isinstance(part, int) or last:
            out.append(part)
    return tuple(out)


def _message(err: Any, loc: Loc, root: type[BaseModel]) -> str:
    kind: str = err["type"]
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _model_at(root, loc[:-1]))
    if kind == "missing":
        return "missing required key"
    if kind == "union_tag_invalid":
        tags = err.get("ctx", {}).get("expected_tags", "")
        return f"unknown kind {err['input'].get('kind')!r} (expected one of: {tags})"
    if kind == "union_tag_not_found":
        return f"missing required key 'kind' (one of: {', '.join(PROVIDER_ROWS)})"
    if kind == "too_short":
        least = err.get("ctx", {}).get("min_length", 1)
        return f"expected at least {least} item{'s' if least != 1 else ''}"
    msg: str = err["msg"]
    if kind == "secret_ref":
        return msg
    if msg.startswith("Value error, "):
        return msg.removeprefix("Value error, ")
    msg = msg[:1].lower() + msg[1:]
    return f"{msg}, got {_got(err.get('input'))}"


def _got(value: Any) -> str:
    if isinstance(value, str | int | float | bool) or value is None:
        return "null" if value is None else repr(value)
    return describe_input(value)


def _unknown_key(key: str, model: type[BaseModel] | None) -> str:
    if model is None:
        return f"unknown key {key!r}"
    allowed = [info.alias or name for name, info in model.model_fields.items()]
    close = difflib.get_close_matches(key, allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key {key!r}{hint}; allowed keys: {', '.join(allowed)}"


def _model_at(root: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The model class validating the mapping at pydantic location `loc`."""
    tp: Any = root
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def _unwrap(tp: Any) -> Any:
    while typing.get_origin(tp) is typing.Annotated:
        tp = typing.get_args(tp)[0]
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(members) == 1:
            return _unwrap(members[0])
    return tp


def _step(tp: Any, part: int | str) -> Any:
    tp = _unwrap(tp)
    origin = typing.get_origin(tp)
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        field = tp.model_fields.get(str(part))
        return field.annotation if field is not None else None
    if origin in (dict, collections.abc.Mapping):
        return typing.get_args(tp)[1]
    if origin in (list, tuple) and isinstance(part, int):
        return typing.get_args(tp)[0]
    if origin in (typing.Union, types.UnionType):
        for member in typing.get_args(tp):
            if _matches_tag(member, part):
                return member
    return None


def _matches_tag(member: Any, tag: int | str) -> bool:
    if not (isinstance(member, type) and issubclass(member, BaseModel)):
        return False
    if member.__name__ == tag:
        return True
    field = member.model_fields.get("kind")
    return field is not None and tag in typing.get_args(field.annotation)
