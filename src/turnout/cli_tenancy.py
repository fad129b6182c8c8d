"""`turnout tenants ...` and `turnout keys ...`: the admin API from the command line.

Every command is one admin API request, so the rules, the validation and the answers are
the admin API's own. With `--gateway URL` it goes to a running gateway (the admin key from
`$TURNOUT_ADMIN_KEY`); without, it goes straight to the config's tenancy database: the
admin API then runs in this process for the one request, on a loopback port, under a
random one-off admin key (nothing is started that outlives the command).

    turnout tenants create acme --name "Acme Corp" -c turnout.yaml
    turnout keys create acme --name chatbot -c turnout.yaml \
        --policy '{"budgets": [{"period": "day", "usd": 5}]}'
    turnout keys revoke 1a2b3c4d5e6f7a8b -c turnout.yaml

The config is `--config`/`-c` (or `$TURNOUT_CONFIG`): these commands take identifiers as
their positional arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

Request = tuple[str, str, Any]
"""An admin API request: method, path under /admin/v1, JSON body (or None)."""


def add_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `tenants` and `keys` on the main parser's subcommands."""
    tenants = commands.add_parser("tenants", help="create, list, change tenants")
    tenant_commands = tenants.add_subparsers(dest="action", required=True,
                                             help="what to do with tenants")
    create = tenant_commands.add_parser("create", help="create a tenant")
    create.add_argument("id", help="lowercase slug: a-z, 0-9, -")
    create.add_argument("--name", required=True, help="the tenant's display name")
    tenant_commands.add_parser("list", help="list tenants")
    show = tenant_commands.add_parser("show", help="one tenant")
    show.add_argument("id", help="the tenant id")
    for action, help_text in (("disable", "refuse every key of a tenant"),
                              ("enable", "accept a disabled tenant's keys again")):
        change = tenant_commands.add_parser(action, help=help_text)
        change.add_argument("id", help="the tenant id")
    policy = tenant_commands.add_parser("policy", help="set a tenant's limits and budgets")
    policy.add_argument("id", help="the tenant id")
    _policy_argument(policy, required=True)

    keys = commands.add_parser("keys", help="create, list, revoke virtual keys")
    key_commands = keys.add_subparsers(dest="action", required=True,
                                       help="what to do with keys")
    new = key_commands.add_parser("create", help="mint a key (shown once)")
    new.add_argument("tenant", help="the tenant id")
    new.add_argument("--name", required=True, help="what the key is for (shown in listings)")
    new.add_argument("--alias", action="append", dest="aliases",
                     help="an alias the key may call (repeat; default: every alias)")
    new.add_argument("--expires", help="expiry, ISO 8601 with its zone "
                                       "(2027-01-01T00:00:00Z)")
    _policy_argument(new, required=False)
    listing = key_commands.add_parser("list", help="a tenant's keys (never the secrets)")
    listing.add_argument("tenant", help="the tenant id")
    revoke = key_commands.add_parser("revoke", help="revoke a key, on every replica within "
                                                    "tenancy.key_cache_s")
    revoke.add_argument("key_id", help="the key's id (the part after tk_, before _)")
    key_policy = key_commands.add_parser("policy", help="set a key's limits and budgets")
    key_policy.add_argument("key_id", help="the key's id")
    _policy_argument(key_policy, required=True)

    for parser in (create, show, policy, new, listing, revoke, key_policy,
                   *(tenant_commands.choices[a] for a in ("list", "disable", "enable"))):
        parser.set_defaults(config=None)
        parser.add_argument("--config", "-c", dest="config_option", metavar="CONFIG",
                            help="YAML config file (default: $TURNOUT_CONFIG)")
        parser.add_argument("--gateway", metavar="URL",
                            help="a running gateway (admin key from $TURNOUT_ADMIN_KEY); "
                                 "default: the config's tenancy database directly")


def _policy_argument(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument("--policy", required=required, metavar="JSON",
                        help='limits and budgets as JSON, or @FILE: {"limits": {"rpm": 60}, '
                             '"budgets": [{"period": "day", "usd": 5}]}')


def request_for(args: argparse.Namespace) -> Request:
    """The admin API request a parsed command makes."""
    if args.command == "tenants":
        tenant = quote(getattr(args, "id", "") or "", safe="")
        if args.action == "create":
            return "POST", "/tenants", {"id": args.id, "name": args.name}
        if args.action == "list":
            return "GET", "/tenants", None
        if args.action in ("disable", "enable"):
            return "PATCH", f"/tenants/{tenant}", {"disabled": args.action == "disable"}
        if args.action == "policy":
            return "PUT", f"/tenants/{tenant}/policy", _policy(args)
        return "GET", f"/tenants/{tenant}", None
    if args.action == "create":
        body: dict[str, Any] = {"name": args.name}
        if args.aliases:
            body["aliases"] = args.aliases
        if args.expires:
            body["expires_at"] = args.expires
        if args.policy:
            body["policy"] = _policy(args)
        return "POST", f"/tenants/{quote(args.tenant, safe='')}/keys", body
    if args.action == "list":
        return "GET", f"/tenants/{quote(args.tenant, safe='')}/keys", None
    key = quote(args.key_id, safe="")
    if args.action == "revoke":
        return "POST", f"/keys/{key}/revoke", None
    return "PUT", f"/keys/{key}/policy", _policy(args)


def _policy(args: argparse.Namespace) -> Any:
    text: str = args.policy
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise SystemExit(f"--policy is not valid JSON: {exc}") from None


def run(args: argparse.Namespace, config: str | None) -> int:
    """Send the command's request and print the answer; 0 on success, 1 otherwise."""
    try:
        status, answer = call_admin(args.gateway, config, request_for(args))
    except UnusableConfig as exc:
        print(str(exc), file=sys.stderr)
        return 2
    print(orjson.dumps(answer, option=orjson.OPT_INDENT_2).decode())
    if status >= 300:
        print(f"error: {status}", file=sys.stderr)
        return 1
    if args.command == "keys" and args.action == "create":
        print("The key above is shown this once: store it now.", file=sys.stderr)
    return 0


def call_admin(gateway: str | None, config: str | None, request: Request) -> tuple[int, Any]:
    """The status and JSON answer of one admin API request: sent to the running `gateway`
    with $TURNOUT_ADMIN_KEY, else served in this process over the config's database
    (UnusableConfig when neither can be done)."""
    if gateway:
        admin_key = os.environ.get("TURNOUT_ADMIN_KEY")
        if not admin_key:
            raise UnusableConfig("--gateway needs the admin key in $TURNOUT_ADMIN_KEY")
        return asyncio.run(_send(gateway.rstrip("/"), admin_key, request))
    return asyncio.run(_in_process(config, request))


class UnusableConfig(Exception):
    """The command cannot be sent: no admin key for --gateway, or a config without a
    tenancy section, or an invalid one."""


async def _send(base: str, admin_key: str, request: Request) -> tuple[int, Any]:
    import aiohttp

    method, path, body = request
    async with aiohttp.ClientSession() as http, http.request(
            method, f"{base}/admin/v1{path}",
            data=orjson.dumps(body) if body is not None else None,
            headers={"Authorization": f"Bearer {admin_key}",
                     "Content-Type": "application/json"}) as response:
        raw = await response.read()
        try:
            return response.status, orjson.loads(raw)
        except orjson.JSONDecodeError:
            return response.status, {"error": {"type": "http", "message": raw[:500].decode(
                errors="replace")}}


async def _in_process(config: str | None, request: Request) -> tuple[int, Any]:
    import dataclasses

    from aiohttp import web

    from turnout.config import ConfigError, compile_config, load_config
    from turnout.engine.engine import Engine
    from turnout.gateway.admin import AdminApi

    try:
        runtime = compile_config(load_config(config, os.environ), os.environ)
    except ConfigError as error:
        raise UnusableConfig(f"{config or '(no config file)'}: invalid\n{error}") from None
    if runtime.tenancy is None:
        raise UnusableConfig(f"{config or '(no config file)'} has no tenancy section: there is no "
                        "tenant database to manage")
    one_off = secrets.token_urlsafe(32)
    settings = dataclasses.replace(runtime.tenancy, admin_key=one_off)
    engine = Engine(dataclasses.replace(runtime, tenancy=settings))
    app = web.Application()
    app.router.add_routes(AdminApi(engine, settings).routes())
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        return await _send(f"http://127.0.0.1:{port}", one_off, request)
    finally:
        await runner.cleanup()
        await engine.aclose()
