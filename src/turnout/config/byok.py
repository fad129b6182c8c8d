"""Compiling bring-your-own-key settings: the master keys (secrets resolved, decoded and
checked) and the providers tenants may store keys for."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass

from turnout.config.errors import format_path
from turnout.config.runtime import MasterKey
from turnout.config.schema import GatewayConfig, LocalProvider
from turnout.config.secrets import SecretError
from turnout.config.tenancy import TenancyConfig

MASTER_KEY_BYTES = 32
MAKE_ONE = ('python -c "import base64, os; '
            'print(base64.urlsafe_b64encode(os.urandom(32)).decode())"')
"""The command the config errors suggest for a new master key."""


@dataclass(frozen=True, slots=True)
class ByokSettings:
    """What `TenancySettings` holds of BYOK."""

    master_keys: tuple[MasterKey, ...] = ()
    providers: frozenset[str] = frozenset()


def compile_byok(config: GatewayConfig, section: TenancyConfig, environ: Mapping[str, str],
                 problems: list[str]) -> ByokSettings:
    """The BYOK settings of `section`; problems are appended to `problems`."""
    keys: list[MasterKey] = []
    for i, ref in enumerate(section.master_keys):
        where = format_path(["tenancy", "master_keys", i, "key"])
        try:
            text = ref.key.resolve(environ).strip()
        except SecretError as exc:
            problems.append(f"{where}: {exc}")
            continue
        key, problem = decode_master_key(text)
        if key is None:
            problems.append(f"{where}: {problem}")
            continue
        keys.append(MasterKey(ref.id, key))
    providers = _providers(config, section, problems)
    if not section.master_keys:
        return ByokSettings()
    return ByokSettings(tuple(keys), providers)


def master_key_texts(key: MasterKey) -> tuple[str, str]:
    """How the key may be written, for the scrubber: standard and URL-safe base64 (padded;
    the scrubber also takes any prefix of eight characters or more, so unpadded too)."""
    return (base64.b64encode(key.key).decode(), base64.urlsafe_b64encode(key.key).decode())


def decode_master_key(text: str) -> tuple[bytes | None, str]:
    """The 32 bytes `text` encodes (base64, standard or URL-safe, padding optional), or
    None with the reason, which never quotes the text."""
    normal = text.replace("-", "+").replace("_", "/")
    try:
        key = base64.b64decode(normal + "=" * (-len(normal) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None, (f"a master key is {MASTER_KEY_BYTES} random bytes in base64, and this "
                      f"is not base64; make one with {MAKE_ONE}")
    if len(key) != MASTER_KEY_BYTES:
        return None, (f"a master key is {MASTER_KEY_BYTES} random bytes in base64, and this "
                      f"one decodes to {len(key)} bytes; make one with {MAKE_ONE}")
    return key, ""


def _providers(config: GatewayConfig, section: TenancyConfig,
               problems: list[str]) -> frozenset[str]:
    remote = {name for name, p in config.providers.items()
              if not isinstance(p, LocalProvider)}
    if section.byok_providers is None:
        return frozenset(remote)
    if not section.master_keys:
        problems.append(f"{format_path(['tenancy', 'byok_providers'])}: tenants' provider "
                        "keys need tenancy.master_keys to seal them")
    for i, name in enumerate(section.byok_providers):
        if name not in remote:
            what = "a local provider" if name in config.providers else "not a configured provider"
            problems.append(f"{format_path(['tenancy', 'byok_providers', i])}: {name!r} is "
                            f"{what} (tenants may bring keys for: "
                            f"{', '.join(sorted(remote)) or 'none'})")
    return frozenset(section.byok_providers)
