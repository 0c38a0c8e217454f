"""``rpcgw`` command line: serve the gateway, manage users, run the modem simulator.

Every command reads the database from ``--database URL`` or ``RPCGW_DATABASE_URL`` and the
configuration from ``--config FILE`` or ``RPCGW_CONFIG``, so a script can create a user
for the server it is about to start.  Errors print one line and exit 1; usage errors exit
2 before anything is opened.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import importlib
import logging
import os
import secrets
import signal
import ssl
import sys
from typing import Any, Sequence

from . import __version__, errors
from .config import Settings, settings_help

log = logging.getLogger("rpcgw")


def _add_common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--database", metavar="URL",
                        help="database URL (default: RPCGW_DATABASE_URL or sqlite:///rpcgw.db)")
    parser.add_argument("--config", metavar="FILE",
                        help="TOML configuration (default: RPCGW_CONFIG)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rpcgw", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rpcgw {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the gateway")
    _add_common(serve)
    serve.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port (default 8080; 0 picks a free one)")
    serve.add_argument("--allow-private-endpoints", action="store_true", default=None,
                       help="let webhooks target private, loopback and link-local addresses")
    serve.add_argument("--tls-cert", metavar="FILE", help="serve HTTPS with this PEM certificate")
    serve.add_argument("--tls-key", metavar="FILE", help="private key of --tls-cert")
    serve.add_argument("--tls-port", type=int, metavar="PORT",
                       help="HTTPS port beside plain HTTP (default: HTTPS replaces HTTP)")
    serve.add_argument("--workers", type=_workers_arg, metavar="N",
                       help="processes serving the API (default 1; auto: one per CPU "
                            "core); the modem pool, event delivery and campaigns run in "
                            "the first one")
    serve.add_argument("--help-settings", action="store_true",
                       help="list every configuration setting and exit")

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    add = user_commands.add_parser("add", help="create a user")
    add.add_argument("login")
    add.add_argument("--admin", action="store_true", help="may manage users and devices")
    add.add_argument("--password-stdin", action="store_true",
                     help="read the password from standard input (else one is generated "
                          "and printed)")
    _add_common(add)
    listing = user_commands.add_parser("list", help="list users")
    _add_common(listing)
    passwd = user_commands.add_parser("passwd", help="set a user's password")
    passwd.add_argument("login")
    passwd.add_argument("--password-stdin", action="store_true",
                        help="read the password from standard input (else one is generated "
                             "and printed)")
    _add_common(passwd)

    sim = commands.add_parser("modem-sim", help="run simulated GSM modems on ptys or TCP")
    from .gsm.simulator import cli as sim_cli
    sim_cli.add_arguments(sim)
    # Commands that live with their feature: each module adds its sub-parsers and sets
    # ``func`` (a callable taking the parsed args and returning the exit status).
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(commands)
    return parser


COMMAND_MODULES: tuple[str, ...] = ("rpcgw.tls", "rpcgw.codegen", "rpcgw.contacts")


def _workers_arg(value: str) -> int:
    """``--workers``: a count, or ``auto`` (stored as 0) for one per CPU core."""
    if value.strip().lower() == "auto":
        return 0
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number or auto") from None
    if number < 0:
        raise argparse.ArgumentTypeError("at least 1 (or auto)")
    return number


def resolved_workers(setting: int) -> int:
    """The number of API processes ``workers`` asks for: 0 means one per CPU core."""
    if setting < 0:
        raise ValueError("setting workers: at least 1, or 0 for one per CPU core")
    if setting == 0:
        return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
            else os.cpu_count() or 1
    return setting


def load_settings(args: argparse.Namespace, **overrides: Any) -> Settings:
    return Settings.load(getattr(args, "config", None),
                         database_url=getattr(args, "database", None), **overrides)


def _read_password(args: argparse.Namespace) -> tuple[str, bool]:
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        return password, False
    return secrets.token_urlsafe(12), True


def cmd_user(args: argparse.Namespace) -> int:
    from .db import Database
    from .services import accounts

    settings = load_settings(args)
    db = Database(settings.database_url, synchronous=settings.sqlite_synchronous)
    try:
        db.bind()
        if args.user_command == "list":
            for u in db.run_sync(accounts.list_users):
                flags = ",".join(f for f, on in (("admin", u["admin"]),
                                                 ("disabled", not u["enabled"])) if on)
                print(f"{u['login']}\t{flags or '-'}\t{u['date_creation']}")
            return 0
        accounts.check_login(args.login)
        password, generated = _read_password(args)
        password_hash = accounts.prepare_password(password)
        if args.user_command == "add":
            db.run_sync(accounts.create_user, args.login, password_hash, admin=args.admin)
            print(f"created user {args.login}" + (" (admin)" if args.admin else ""))
        else:
            db.run_sync(accounts.set_password, args.login, password_hash)
            print(f"password of {args.login} changed")
        if generated:
            print(f"password: {password}")
        return 0
    finally:
        db.close_sync()


async def _serve(settings: Settings) -> None:
    from aiohttp import web

    from .app import GATEWAY, create_app

    app = create_app(settings)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()  # runs start-up: database, migrations, pool
    # What start-up built (modules, the contract's validators, phone metadata, ...) lives
    # as long as the process: keep it out of the collector's full passes, which otherwise
    # stopped the whole process for 30-45 ms every few seconds under load.
    gc.freeze()
    gw = app[GATEWAY]
    if settings.role == "all":
        await _first_admin(gw)
    # With several worker processes every one listens on the same ports (SO_REUSEPORT)
    # and the kernel spreads connections over them.
    shared = settings.workers > 1 or settings.role == "api"
    sites = []
    if settings.tls_cert:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(settings.tls_cert, settings.tls_key or None)
        sites.append(("https", web.TCPSite(runner, settings.host,
                                           settings.tls_port or settings.port,
                                           ssl_context=context, reuse_address=True,
                                           reuse_port=shared, backlog=1024)))
    if not settings.tls_cert or settings.tls_port:
        sites.append(("http", web.TCPSite(runner, settings.host, settings.port,
                                          reuse_address=True, reuse_port=shared,
                                          backlog=1024)))
    ports: dict[str, int] = {}
    for scheme, site in sites:
        await site.start()
        for sock in site._server.sockets:  # type: ignore[union-attr]
            host, port = sock.getsockname()[:2]
            ports[scheme] = port
            if ":" in host:
                host = f"[{host}]"
            if settings.role == "all":
                print(f"rpcgw listening on {scheme}://{host}:{port}/json-rpc/v1.1/",
                      flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    workers: list[asyncio.Task[None]] = []
    if settings.role == "all":
        for number in range(1, settings.workers):
            workers.append(asyncio.create_task(_api_worker(settings, ports, number, stop)))
    else:
        workers.append(asyncio.create_task(_watch_parent(stop)))
    await stop.wait()
    if settings.role == "all":
        print("rpcgw stopping", flush=True)
    await asyncio.gather(*workers, return_exceptions=True)
    await runner.cleanup()


async def _api_worker(settings: Settings, ports: dict[str, int], number: int,
                      stop: asyncio.Event) -> None:
    """Run (and re-run, should it die) one extra process that serves the API only."""
    env = dict(os.environ, RPCGW_ROLE="api", RPCGW_WORKERS="1",
               RPCGW_PORT=str(ports.get("http", ports.get("https", 0))),
               RPCGW_TLS_PORT=str(ports["https"] if settings.tls_port else 0),
               RPCGW_DATABASE_URL=settings.database_url, RPCGW_HOST=settings.host,
               RPCGW_PARENT_PID=str(os.getpid()))
    for name in ("tls_cert", "tls_key"):
        if settings.values.get(name):
            env[f"RPCGW_{name.upper()}"] = str(settings.values[name])
    if settings.allow_private_endpoints:
        env["RPCGW_ALLOW_PRIVATE_ENDPOINTS"] = "1"
    while not stop.is_set():
        proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "rpcgw.cli", "serve",
                                                    env=env)
        stopped = asyncio.create_task(stop.wait())
        exited = asyncio.create_task(proc.wait())
        await asyncio.wait({stopped, exited}, return_when=asyncio.FIRST_COMPLETED)
        if exited.done():
            stopped.cancel()
            log.error("API worker %d exited with %s; starting it again", number,
                      proc.returncode)
            await asyncio.sleep(1.0)
            continue
        proc.terminate()
        try:
            await asyncio.wait_for(proc.wait(), 15)
        except asyncio.TimeoutError:
            proc.kill()
        return


async def _watch_parent(stop: asyncio.Event) -> None:
    """An API worker stops when the process that started it is gone."""
    parent = int(os.environ.get("RPCGW_PARENT_PID", "0") or 0)
    while not stop.is_set():
        if parent and os.getppid() != parent:
            stop.set()
            return
        await asyncio.sleep(1.0)


async def _first_admin(gw: Any) -> None:
    """On an empty database, create ``admin`` so a new user can log in at once."""
    from .models import User
    from .services import accounts

    if await gw.db.read(lambda: User.select().exists()):
        return
    password = os.environ.get("RPCGW_ADMIN_PASSWORD") or secrets.token_urlsafe(12)
    password_hash = await gw.auth.run_kdf(accounts.prepare_password, password)
    try:
        await gw.db.write(lambda: accounts.create_user("admin", password_hash, admin=True))
    except errors.Conflict:
        return  # another node created it first
    shown = password if not os.environ.get("RPCGW_ADMIN_PASSWORD") else "(RPCGW_ADMIN_PASSWORD)"
    print(f"created the first user: login admin, password {shown}", flush=True)


def cmd_serve(args: argparse.Namespace) -> int:
    if args.help_settings:
        print(settings_help())
        return 0
    settings = load_settings(args, host=args.host, port=args.port,
                             allow_private_endpoints=args.allow_private_endpoints,
                             tls_cert=args.tls_cert, tls_key=args.tls_key,
                             tls_port=args.tls_port, workers=args.workers)
    settings = settings.replace(workers=resolved_workers(settings.workers))
    if args.config:  # extra worker processes read the same file
        os.environ["RPCGW_CONFIG"] = os.path.abspath(args.config)
    if bool(settings.tls_cert) != bool(settings.tls_key):
        print("--tls-cert and --tls-key go together", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # The event loop and the database writer thread share the GIL.  The writer gives it
    # up around every SQLite call and then waits for the loop to hand it back, which a
    # busy loop does only every switch interval (5 ms by default): a writer job of a
    # few statements took 10–20 ms under load and every SIM waited for it.  1 ms keeps
    # those waits short at no measurable CPU cost (docs/benchmarks.md).
    sys.setswitchinterval(settings.switch_interval_ms / 1000)
    try:
        import uvloop
        uvloop.run(_serve(settings))
    except ImportError:
        asyncio.run(_serve(settings))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return cmd_serve(args)
        if args.command == "user":
            return cmd_user(args)
        if getattr(args, "func", None) is not None:
            return int(args.func(args) or 0)
        if args.command == "modem-sim":
            from .gsm.simulator import cli as sim_cli
            result = sim_cli.run(args)
            if asyncio.iscoroutine(result):
                result = asyncio.run(result)
            return int(result or 0)
    except errors.RpcgwError as exc:
        detail = exc.data.get("reason", exc.message)
        print(f"{exc.message}: {detail}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {args.command}")
    return 2


if __name__ == "__main__":
    sys.exit(main())
