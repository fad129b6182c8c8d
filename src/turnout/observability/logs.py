"""Request logs: one line per finished request, one per failover, as JSON or as text.

Lines carry identifiers, timings, status and token counts, never payloads: no prompt, no
completion, no tool arguments and no error message (upstream messages may quote the
prompt). An error is logged by its taxonomy code only.
"""

from __future__ import annotations

import contextlib
import logging
import math
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

import orjson

from turnout.engine.observe import AttemptEvent, FailoverEvent, RequestEvent

REQUEST_LOGGER = "turnout.requests"
"""The logger `turnout serve` logs requests and failovers on (`request_log_observer`)."""

_LEVELS = {logging.INFO: "info", logging.WARNING: "warning"}

_JSON_ATTR = "turnout_json"
"""LogRecord attribute holding a line already rendered by `JsonLogObserver`."""


class _Timestamps:
    """ISO 8601 timestamps in UTC with milliseconds (sortable, parsed by every log
    pipeline). The part up to the second is formatted once per second: formatting dates is
    most of the cost of a log line."""

    __slots__ = ("_prefix", "_second")

    def __init__(self) -> None:
        self._second = -1
        self._prefix = ""

    def __call__(self, seconds: float) -> str:
        # Rounded to the microsecond first, then truncated, as `datetime` does.
        fraction_s, whole_s = math.modf(seconds)
        whole, micros = int(whole_s), round(fraction_s * 1_000_000)
        if micros >= 1_000_000:
            whole, micros = whole + 1, micros - 1_000_000
        if whole != self._second:
            self._second = whole
            self._prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        return f"{self._prefix}.{micros // 1000:03d}Z"


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000.0, 3)


def request_fields(event: RequestEvent) -> dict[str, Any]:
    """The fields of a request line (`event` first), without `ts` and `level`."""
    usage = event.usage
    return {
        "event": "request",
        "request_id": event.request_id,
        "route": event.route,
        "principal": event.principal,
        "stream": event.stream,
        "status": event.status,
        "latency_ms": _ms(event.latency_s),
        "ttft_ms": _ms(event.ttft_s),
        "attempts": event.attempts,
        "deployment": event.deployment,
        "error_code": event.error_code,
        "tokens_in": usage.input_tokens if usage is not None else None,
        "tokens_out": usage.output_tokens if usage is not None else None,
    }


def failover_fields(event: FailoverEvent) -> dict[str, Any]:
    """The fields of a failover line (`event` first), without `ts` and `level`."""
    return {
        "event": "failover",
        "request_id": event.request_id,
        "route": event.route,
        "from_deployment": event.from_deployment,
        "to_deployment": event.to_deployment,
        "reason": event.reason,
    }


class JsonLogObserver:
    """An engine `Observer` writing one JSON object per line.

    `stream`: a text stream (default: `sys.stderr` at construction time) written directly,
    or a `logging.Logger`, logged at INFO (requests) and WARNING (failovers) with the line
    as the message; `configure_logging(json=True)` formats such records as the bare line.
    `wall_clock` gives the `ts` field (seconds since the epoch; injected for tests).
    """

    def __init__(self, stream: TextIO | logging.Logger | None = None, *,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self._target = stream if stream is not None else sys.stderr
        self._wall_clock = wall_clock
        self._timestamps = _Timestamps()

    def on_attempt(self, event: AttemptEvent) -> None:
        """Attempts are summed up in the request line (`attempts`) and the metrics."""

    def on_failover(self, event: FailoverEvent) -> None:
        self._emit(logging.WARNING, failover_fields(event))

    def on_request(self, event: RequestEvent) -> None:
        self._emit(logging.INFO, request_fields(event))

    def _emit(self, level: int, fields: dict[str, Any]) -> None:
        target = self._target
        if isinstance(target, logging.Logger):
            if not target.isEnabledFor(level):
                return
            line = self._render(level, fields)
            target.log(level, line, extra={_JSON_ATTR: line})
            return
        # Observers must not raise: a closed or broken log stream must not fail the
        # request it describes.
        with contextlib.suppress(OSError, ValueError):
            target.write(self._render(level, fields) + "\n")

    def _render(self, level: int, fields: dict[str, Any]) -> str:
        line = {"ts": self._timestamps(self._wall_clock()),
                "level": _LEVELS[level], **fields}
        return orjson.dumps(line).decode()


_BARE = re.compile(r"[A-Za-z0-9._:/@+-]{1,128}").fullmatch
"""Values written unquoted in text lines; anything else (a client's model name may hold
spaces, quotes or newlines) is quoted and escaped, so one event stays one line."""
_MAX_TEXT = 128
_TEXT_REQUEST = ("request_id", "route", "deployment", "status", "attempts", "latency_ms",
                 "tokens_in", "tokens_out", "stream")
_TEXT_OPTIONAL = ("ttft_ms", "error_code")
_TEXT_FAILOVER = ("request_id", "route", "from_deployment", "to_deployment", "reason")


def _text_value(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.1f}"
    text = str(value)
    if _BARE(text):
        return text
    if len(text) > _MAX_TEXT:
        text = text[:_MAX_TEXT] + "..."
    return orjson.dumps(text).decode()


class TextLogObserver:
    """An engine `Observer` writing one short `key=value` line per request and failover,
    for people reading a terminal: the same identifiers, status, timings and token counts
    as `JsonLogObserver` (and, like it, never a payload), without the timestamp and the
    principal. `target`: a `logging.Logger` (INFO for requests, WARNING for failovers) or
    a text stream."""

    def __init__(self, target: TextIO | logging.Logger | None = None) -> None:
        self._target = target if target is not None else sys.stderr

    def on_attempt(self, event: AttemptEvent) -> None:
        """Attempts are summed up in the request line (`attempts`)."""

    def on_failover(self, event: FailoverEvent) -> None:
        self._emit(logging.WARNING, "failover", failover_fields(event), _TEXT_FAILOVER)

    def on_request(self, event: RequestEvent) -> None:
        fields = request_fields(event)
        keys = _TEXT_REQUEST + tuple(k for k in _TEXT_OPTIONAL if fields[k] is not None)
        self._emit(logging.INFO, "request", fields, keys)

    def _emit(self, level: int, kind: str, fields: dict[str, Any],
              keys: tuple[str, ...]) -> None:
        target = self._target
        if isinstance(target, logging.Logger) and not target.isEnabledFor(level):
            return
        line = " ".join([kind, *(f"{key}={_text_value(fields[key])}" for key in keys)])
        if isinstance(target, logging.Logger):
            target.log(level, line)
            return
        with contextlib.suppress(OSError, ValueError):  # observers must not raise
            target.write(line + "\n")


def request_log_observer(json: bool) -> JsonLogObserver | TextLogObserver:
    """The observer `turnout serve` logs requests and failovers with, on `REQUEST_LOGGER`:
    JSON lines (`--log-format json`) or text lines."""
    logger = logging.getLogger(REQUEST_LOGGER)
    return JsonLogObserver(logger) if json else TextLogObserver(logger)


class JsonFormatter(logging.Formatter):
    """Formats every log record as one JSON line: lines from `JsonLogObserver` as they are,
    any other record as `ts`, `level`, `logger`, `message` (and `exc_info` when set)."""

    def __init__(self) -> None:
        super().__init__()
        self._timestamps = _Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        rendered = getattr(record, _JSON_ATTR, None)
        if isinstance(rendered, str):
            return rendered
        line: dict[str, Any] = {
            "ts": self._timestamps(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


def configure_logging(level: int | str = logging.INFO, json: bool = False, *,
                      stream: TextIO | None = None) -> logging.Handler:
    """Send the process's logs to `stream` (default: stderr), as JSON lines or as bare
    messages, replacing the root logger's handlers. For the CLI: a library never calls it.
    Returns the installed handler."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if json else logging.Formatter("%(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # Alembic narrates every migration step at INFO; a first start should say one line.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    return handler
