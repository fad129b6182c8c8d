"""Secret scrubbing of text that came from an upstream, before it reaches a client or a log.

Some providers quote the caller's credentials in an error ("Incorrect API key provided:
sk-proj-abc1...") and a misbehaving proxy may echo a whole request header. A
`SecretScrubber` is compiled once per config, from every secret that config resolved, and
applied where upstream errors enter the engine (`engine.upstream`): everything downstream
(client error bodies, in-stream error events, `AllAttemptsFailed`, logs) sees only the
scrubbed text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

from turnout.core.errors import TurnoutError

REDACTED = "[redacted]"
"""What a scrubbed secret is replaced with."""

MIN_PREFIX = 8
"""A configured secret's prefix of at least this many characters is scrubbed too:
providers echo a key's first characters, and shorter prefixes (`sk-`) say nothing."""

MIN_SECRET = 4
"""Configured secrets shorter than this are not scrubbed: they protect nothing, and
replacing every occurrence of two or three characters would shred the text."""

# Credentials recognised by their shape, configured or not. A key echoed half masked
# (`sk-proj-****wxyz`) is one token too, so `*` counts as a key character.
_SHAPE = re.compile("|".join((
    r"\bsk-[A-Za-z0-9_*\-]{16,}",  # OpenAI sk-/sk-proj-, Anthropic sk-ant-, OpenRouter sk-or-
    r"\bAIza[0-9A-Za-z_\-]{20,}",  # Google API keys
    r"(?<=[?&])(?:key|api_key|access_token)=[^&\s\"'<>]+",  # credentials in a quoted URL
)))
_BEARER = re.compile(r"(?i:\bbearer)(?P<gap>\s+)[A-Za-z0-9._~+/=\-]{8,}")


@dataclass(frozen=True, slots=True, eq=False)
class SecretScrubber:
    """Replaces secrets in text by `REDACTED`: the configured secrets it was built from,
    every prefix of theirs of `MIN_PREFIX` or more characters, and anything shaped like a
    provider key or a bearer token. Immutable; build it with `SecretScrubber.build`."""

    heads: re.Pattern[str] | None
    """Finds the first `MIN_PREFIX` characters of a configured secret (a whole secret, if
    shorter); None without configured secrets."""
    secrets: Mapping[str, tuple[str, ...]]
    """Configured secrets by their first `MIN_PREFIX` characters: a match is extended to
    the longest run of one of them."""

    @classmethod
    def build(cls, secrets: Iterable[str | None] = ()) -> SecretScrubber:
        """A scrubber for `secrets` (None and values under `MIN_SECRET` are skipped)."""
        by_head: dict[str, list[str]] = {}
        for secret in {s for s in secrets if s is not None and len(s) >= MIN_SECRET}:
            by_head.setdefault(secret[:MIN_PREFIX], []).append(secret)
        # Longest first: at one position the alternation takes the first that matches.
        heads = sorted(by_head, key=len, reverse=True)
        pattern = re.compile("|".join(map(re.escape, heads))) if heads else None
        return cls(pattern, MappingProxyType({h: tuple(v) for h, v in by_head.items()}))

    def extended(self, secrets: Iterable[str]) -> SecretScrubber:
        """A scrubber for this one's secrets and `secrets` too (a tenant's own provider
        key, on the deployments that send it)."""
        known = [secret for group in self.secrets.values() for secret in group]
        return SecretScrubber.build([*known, *secrets])

    def scrub(self, text: str) -> str:
        """`text` without secrets."""
        # Configured secrets first: one with characters the patterns below do not take
        # would otherwise be cut at the first of them, the rest left readable.
        text = self._scrub_configured(text)
        text = _BEARER.sub(_keep_scheme, text)
        return _SHAPE.sub(REDACTED, text)

    def scrub_error(self, error: TurnoutError) -> TurnoutError:
        """Scrub `error`'s message (and so its `str`, `repr` and `args`) and `param`, in
        place; returns `error`."""
        message = self.scrub(error.message)
        if message != error.message or error.args != (message,):
            error.message = message
            error.args = (message,)
        if error.param is not None:
            error.param = self.scrub(error.param)
        return error

    def _scrub_configured(self, text: str) -> str:
        if self.heads is None:
            return text
        pieces: list[str] = []
        pos = 0
        while (match := self.heads.search(text, pos)) is not None:
            start = match.start()
            end = self._run_end(text, start, match.group())
            # A half-masked echo (`sk-proj-****wxyz`) shares only its first characters
            # with the key: take the whole token.
            shaped = _SHAPE.match(text, start)
            if shaped is not None:
                end = max(end, shaped.end())
            pieces += (text[pos:start], REDACTED)
            pos = end
        if not pieces:
            return text
        pieces.append(text[pos:])
        return "".join(pieces)

    def _run_end(self, text: str, start: int, head: str) -> int:
        """Where the longest run from `start` that begins a secret starting `head` ends."""
        longest = len(head)
        for secret in self.secrets[head]:
            n = len(head)
            limit = min(len(secret), len(text) - start)
            while n < limit and text[start + n] == secret[n]:
                n += 1
            longest = max(longest, n)
        return start + longest


def _keep_scheme(match: re.Match[str]) -> str:
    # "Bearer [redacted]" still says what was there.
    return match.string[match.start():match.end("gap")] + REDACTED


NO_SECRETS = SecretScrubber.build()
"""Scrubs key-shaped text only: for deployments built without a compiled config."""
