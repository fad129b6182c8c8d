"""`turnout serve | check | sim | tenants | keys | report spend | tenancy reencrypt`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import ipaddress
import logging
import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from turnout.config.runtime import TenancySettings


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(_config_path(parser, args))
    if args.command == "sim":
        return _sim(args.host, args.port)
    if args.command in ("tenants", "keys"):
        from turnout import cli_tenancy

        return cli_tenancy.run(args, _config_path(parser, args))
    if args.command == "report":
        from turnout import cli_report

        return cli_report.run(args, _config_path(parser, args))
    if args.command == "tenancy":
        return _reencrypt(_config_path(parser, args))
    return _serve(_config_path(parser, args), args.host, args.port, args.log_format)


def build_parser() -> argparse.ArgumentParser:
    """The command line: `turnout serve | check | sim | tenants | keys | report spend |
    tenancy reencrypt`, every option with its help."""
    parser = argparse.ArgumentParser(prog="turnout", description="Turnout LLM gateway")
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="start the gateway")
    _config_arguments(serve)
    serve.add_argument("--host", help="bind address (overrides server.host)")
    serve.add_argument("--port", type=int, help="port (overrides server.port)")
    serve.add_argument("--log-format", choices=("text", "json"), default="text",
                       help="json: JSON log lines, with one line per request and failover")
    check = commands.add_parser(
        "check", help="validate a config file (secrets and model files included) without "
                      "starting anything, and list its routes")
    _config_arguments(check)
    sim = commands.add_parser("sim", help="start the OpenAI, Anthropic and Gemini simulators")
    sim.add_argument("--host", default="127.0.0.1",
                     help="address the simulators listen on (default: 127.0.0.1)")
    sim.add_argument("--port", type=int, default=9100,
                     help="OpenAI on PORT, Anthropic on PORT+1, Gemini on PORT+2 "
                          "(default: 9100)")
    from turnout.cli_tenancy import add_commands

    add_commands(commands)
    from turnout.cli_report import add_commands as add_report_commands

    add_report_commands(commands)
    tenancy = commands.add_parser("tenancy", help="maintain the tenancy database")
    tenancy_commands = tenancy.add_subparsers(dest="tenancy_command", required=True,
                                              help="the maintenance task")
    reencrypt = tenancy_commands.add_parser(
        "reencrypt", help="seal every tenant's provider key anew under the first of "
                          "tenancy.master_keys (after adding a new master key; idempotent)")
    _config_arguments(reencrypt)
    return parser


def _config_arguments(command: argparse.ArgumentParser) -> None:
    # Both spellings: the docs write `turnout serve turnout.yaml`, older scripts `--config`.
    command.add_argument("config", nargs="?", metavar="CONFIG",
                         help="YAML config file (default: $TURNOUT_CONFIG, else the "
                              "environment only: provider keys and the local model)")
    command.add_argument("--config", "-c", dest="config_option", metavar="CONFIG",
                         help="the same as the positional CONFIG")


def _config_path(parser: argparse.ArgumentParser, args: argparse.Namespace) -> str | None:
    """The config file from the command line (either spelling, not two different files),
    else $TURNOUT_CONFIG, else None (environment only)."""
    positional, option = args.config, args.config_option
    if positional and option and not _same_file(positional, option):
        parser.error(f"{args.command}: two config files given, {positional!r} and "
                     f"--config {option!r}; give one")
    return positional or option or os.environ.get("TURNOUT_CONFIG") or None


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.realpath(a) == os.path.realpath(b)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("turnout")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "(not installed)"


def _check(path: str | None) -> int:
    from turnout.config import ConfigError, compile_config, load_config

    name = path if path is not None else "(no config file)"
    try:
        runtime = compile_config(load_config(path, os.environ), os.environ)
    except ConfigError as error:
        print(f"{name}: invalid\n{error}", file=sys.stderr)
        return 1
    print(f"{name}: ok ({len(runtime.routes)} routes, {len(runtime.deployments)} deployments)")
    print(runtime.describe_routes(path))
    return 0


def _reencrypt(path: str | None) -> int:
    from turnout.config import ConfigError, load_config
    from turnout.config.compile import compile_tenancy

    try:
        settings = compile_tenancy(load_config(path, os.environ), os.environ)
    except ConfigError as error:
        print(f"turnout: invalid configuration\n{error}", file=sys.stderr)
        return 2
    if not settings.master_keys:
        print("turnout: tenancy.master_keys is empty: there is no key to seal under",
              file=sys.stderr)
        return 2
    return asyncio.run(_reencrypt_all(settings))


async def _reencrypt_all(settings: TenancySettings) -> int:
    from turnout.tenancy.provider_keys import SqlProviderKeyStore
    from turnout.tenancy.sealing import Sealer
    from turnout.tenancy.sql import SqlTenantStore

    store = await SqlTenantStore.open(settings.database_url)
    try:
        keys = SqlProviderKeyStore(store.engine, Sealer(settings.master_keys))
        report = await keys.reencrypt_all()
    finally:
        await store.close()
    current = report.current_id
    meanwhile = (f", {report.changed_meanwhile} stored anew meanwhile (run again for those)"
                 if report.changed_meanwhile else "")
    print(f"tenants' provider keys under master key '{current}': {report.reencrypted} "
          f"re-encrypted, {report.already_current} already under it, "
          f"{len(report.unreadable)} unreadable{meanwhile}")
    for bad in report.unreadable:
        why = ("is not in tenancy.master_keys" if bad.reason == "unknown master key"
               else "does not authenticate (altered, or copied from another row)")
        print(f"turnout: tenant {bad.tenant_id}, provider {bad.provider}: master key "
              f"'{bad.master_key_id}' {why}", file=sys.stderr)
    if report.remaining:
        held = ", ".join(f"{key_id}: {n}" for key_id, n in report.remaining.items())
        print(f"keys still under other master keys ({held}): keep those master keys listed")
    else:
        print(f"every stored key is under '{current}': the other master keys may be removed")
    return 1 if report.unreadable else 0


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _serve(config: str | None, host: str | None, port: int | None,
           log_format: str = "text") -> int:
    from turnout.config import ConfigError, compile_config, load_config
    from turnout.engine.observe import Observer
    from turnout.gateway.app import create_gateway
    from turnout.gateway.key_strength import weak_keys_problem
    from turnout.gateway.serve import run_gateway
    from turnout.observability.logs import configure_logging, request_log_observer

    json_logs = log_format == "json"
    configure_logging(logging.INFO, json=json_logs)
    observers: list[Observer] = [request_log_observer(json=json_logs)]
    try:
        runtime = compile_config(load_config(config, os.environ), os.environ)
    except ConfigError as error:
        print(f"turnout: invalid configuration\n{error}", file=sys.stderr)
        return 2
    bind = host or runtime.server.host
    bind_port = port if port is not None else runtime.server.port
    if not runtime.server.gateway_keys:
        if not is_loopback(bind):
            print(f"turnout: refusing to listen on {bind} without a gateway key: anyone who "
                  "can reach it could spend your provider credits. Set server.gateway_keys "
                  "(or TURNOUT_GATEWAY_KEYS), or bind to 127.0.0.1.", file=sys.stderr)
            return 2
        print("turnout: no gateway key configured: accepting unauthenticated requests on "
              "loopback only", file=sys.stderr)
    weak = weak_keys_problem(runtime.server)
    if weak is not None:
        if not is_loopback(bind):
            print(f"turnout: refusing to listen on {bind} with {weak}", file=sys.stderr)
            return 2
        print(f"turnout: warning (accepted on loopback only): {weak}", file=sys.stderr)
    _install_uvloop()
    app = create_gateway(runtime, observers=observers)
    # Move everything imported and built so far out of the collector's reach: full
    # collections then walk only per-request garbage (measured: 20-28 ms pauses down to
    # 4-5 ms), which keeps them out of tail latencies.
    gc.collect()
    gc.freeze()
    print(f"turnout: {runtime.describe_routes(config)}", file=sys.stderr)
    print(f"turnout: serving {len(runtime.routes)} models on http://{bind}:{bind_port} "
          f"(OpenAI: /v1/chat/completions, Anthropic: /v1/messages)", file=sys.stderr)
    # Until SIGTERM or SIGINT, then a drain of what is in flight (see gateway/drain.py).
    run_gateway(app, bind, bind_port, drain_timeout_s=runtime.server.drain_timeout_s)
    return 0


def _sim(host: str, port: int) -> int:
    from turnout.sim.server import serve_simulators

    _install_uvloop()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_simulators(host, port))
    return 0


def _install_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        return
    uvloop.install()


if __name__ == "__main__":
    raise SystemExit(main())
