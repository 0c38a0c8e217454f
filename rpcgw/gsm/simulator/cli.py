"""Command line of the modem simulator: ``rpcgw modem-sim`` and ``python -m rpcgw.gsm.simulator``.

Without a sub-command it runs simulated modems until interrupted and prints, once they are
ready, one line per modem (name, number, serial URL).  The sub-commands talk to a running
simulator through its ``--control`` socket::

    python -m rpcgw.gsm.simulator --count 2 --control /tmp/sim.ctl
    python -m rpcgw.gsm.simulator inject --control /tmp/sim.ctl --from +33612345678 \\
        --to +15550001000 "Hello"
    python -m rpcgw.gsm.simulator traffic --control /tmp/sim.ctl --recipient +33612345678
    python -m rpcgw.gsm.simulator fault --control /tmp/sim.ctl sim0=wedge:until=reset
    python -m rpcgw.gsm.simulator clear-fault --control /tmp/sim.ctl --modem sim0
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from rpcgw.gsm.simulator.host import FAULT_KINDS, SimulatorHost, control_request, make_configs
from rpcgw.gsm.simulator.host import parse_fault
from rpcgw.gsm.simulator.network import Rule, VirtualNetwork

__all__ = ["add_arguments", "main", "run", "run_async"]


def _delay(text: str) -> tuple[float, float]:
    low, _, high = text.partition("-")
    try:
        return float(low), float(high or low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SECONDS or MIN-MAX, got {text!r}") from None


def _fault(text: str) -> tuple[str | None, str, dict[str, Any]]:
    try:
        return parse_fault(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rule(text: str) -> Rule:
    try:
        return Rule.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options and sub-commands to ``parser``."""
    parser.add_argument("--count", type=int, default=2, help="number of modems (default 2)")
    parser.add_argument("--transport", choices=("pty", "tcp"), default=None,
                        help="serve on ptys (default) or TCP ports for socket:// URLs")
    parser.add_argument("--pty-dir", help="directory for the pty symlinks (default: a temp dir)")
    parser.add_argument("--tcp-port", type=int, default=None,
                        help="first TCP port (implies --transport tcp; 0 = any free port)")
    parser.add_argument("--number", action="append", default=[],
                        help="SIM number, repeat per modem (default +1555000100N)")
    parser.add_argument("--first-number", default="+15550001000",
                        help="number of the first SIM when --number is not given")
    parser.add_argument("--delivery-delay", type=_delay, default=(0.5, 1.0),
                        metavar="SECONDS|MIN-MAX", help="time to deliver (default 0.5-1)")
    parser.add_argument("--accept-delay", type=float, default=0.05,
                        help="time a modem takes to accept a submit (default 0.05 s)")
    parser.add_argument("--fail-number", type=_rule, action="append", default=[],
                        metavar="PATTERN:permanent|temporary[:submit|report][:CODE]",
                        help="make messages to matching numbers fail")
    parser.add_argument("--no-report", action="append", default=[], metavar="PATTERN",
                        help="never send a status report for matching numbers")
    parser.add_argument("--pin", help="SIM PIN every modem asks for")
    parser.add_argument("--fault", type=_fault, action="append", default=[],
                        metavar="[MODEM=]KIND[:key=value,...]",
                        help=f"fault to switch on at start ({', '.join(FAULT_KINDS)})")
    parser.add_argument("--control", metavar="PATH", help="unix socket for inject/traffic/fault")
    parser.add_argument("--seed", type=int, help="random seed (faults, delays)")
    parser.add_argument("--json", action="store_true", help="print the modems as JSON lines")
    parser.add_argument("--log-level", default="WARNING", help="logging level (default WARNING)")
    sub = parser.add_subparsers(dest="sim_command", metavar="COMMAND")
    inject = sub.add_parser("inject", help="deliver an incoming SMS to a running simulator")
    inject.add_argument("--control", dest="control", required=True, metavar="PATH")
    inject.add_argument("--from", dest="sender", required=True, help="sender number")
    inject.add_argument("--to", default=None, help="SIM number (default: any)")
    inject.add_argument("--unicode", action="store_true", help="force UCS-2")
    inject.add_argument("text")
    traffic = sub.add_parser("traffic", help="what the network received from the SIMs")
    traffic.add_argument("--control", dest="control", required=True, metavar="PATH")
    traffic.add_argument("--recipient")
    traffic.add_argument("--sim", help="sending SIM name, number or IMSI")
    traffic.add_argument("--text")
    fault = sub.add_parser("fault", help="switch a fault on in a running simulator")
    fault.add_argument("--control", dest="control", required=True, metavar="PATH")
    fault.add_argument("spec", type=_fault, metavar="[MODEM=]KIND[:key=value,...]")
    clear = sub.add_parser("clear-fault", help="switch faults off")
    clear.add_argument("--control", dest="control", required=True, metavar="PATH")
    clear.add_argument("--modem")
    clear.add_argument("--kind", choices=FAULT_KINDS)
    modems = sub.add_parser("modems", help="list the modems of a running simulator")
    modems.add_argument("--control", dest="control", required=True, metavar="PATH")


async def _client(args: argparse.Namespace) -> int:
    command = args.sim_command
    request: dict[str, Any]
    if command == "inject":
        request = {"cmd": "inject", "from": args.sender, "to": args.to, "text": args.text,
                   "encoding": "UNICODE" if args.unicode else None}
    elif command == "traffic":
        request = {"cmd": "traffic", "recipient": args.recipient, "sim": args.sim,
                   "text": args.text}
    elif command == "fault":
        modem, kind, params = args.spec
        request = {"cmd": "fault", "modem": modem, "kind": kind, "params": params}
    elif command == "clear-fault":
        request = {"cmd": "clear-fault", "modem": args.modem, "kind": args.kind}
    else:
        request = {"cmd": "modems"}
    try:
        result = await control_request(args.control, request)
    except (OSError, ConnectionError, RuntimeError, asyncio.TimeoutError) as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if isinstance(result, list):
        for item in result:
            print(json.dumps(item, ensure_ascii=False))
    elif result is not None:
        print(json.dumps(result, ensure_ascii=False))
    return 0


async def run_async(args: argparse.Namespace) -> int:
    """Run the simulator (or a control sub-command); returns the exit status."""
    if getattr(args, "sim_command", None):
        return await _client(args)
    logging.basicConfig(level=getattr(logging, str(args.log_level).upper(), logging.WARNING),
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.count < 1:
        print("error: --count must be at least 1", file=sys.stderr)
        return 2
    rules = list(args.fail_number) + [Rule(pattern, "no-report") for pattern in args.no_report]
    network = VirtualNetwork(delivery_delay=args.delivery_delay, rules=rules)
    faults: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
    for modem, kind, params in args.fault:
        faults[modem or "*"].append((kind, params))
    transport = args.transport or ("tcp" if args.tcp_port is not None else "pty")
    host = SimulatorHost(
        network,
        make_configs(args.count, first_number=args.first_number, numbers=args.number,
                     pin=args.pin, accept_delay=args.accept_delay),
        transport=transport,
        pty_dir=args.pty_dir,
        tcp_base_port=args.tcp_port or 0,
        control_path=args.control,
        faults=faults,
        seed=args.seed,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    try:
        infos = await host.start()
    except OSError as exc:
        print(f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    try:
        for info in infos:
            if args.json:
                print(json.dumps(info.as_dict()), flush=True)
            else:
                print(f"{info.name}\t{info.number}\t{info.url}\timei={info.imei}"
                      f"\timsi={info.imsi}", flush=True)
        if not args.json:
            control = f" (control: {args.control})" if args.control else ""
            print(f"simulator ready: {len(infos)} modem(s){control}; Ctrl-C to stop",
                  flush=True)
        await stop.wait()
    finally:
        await host.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    """Synchronous entry for ``rpcgw modem-sim`` (runs its own event loop)."""
    return asyncio.run(run_async(args))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m rpcgw.gsm.simulator",
                                     description="Simulated GSM modems and network.")
    add_arguments(parser)
    return run(parser.parse_args(argv))
