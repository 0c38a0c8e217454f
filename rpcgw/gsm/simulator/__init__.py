"""Simulated GSM modems and the virtual network joining them.

How users try rpcgw without hardware, how the tests run, and how load is generated:
:class:`SimulatorHost` serves SIM800-class modems (:mod:`.engine`) on ptys or TCP ports in
the caller's event loop, joined by a :class:`VirtualNetwork` (delivery, status reports,
failure rules, injected incoming messages, recorded traffic).  See docs/gsm.md.
"""

from rpcgw.gsm.simulator.engine import (
    CmsFault,
    Faults,
    ModemEngine,
    SimModemConfig,
    WedgeFault,
)
from rpcgw.gsm.simulator.host import (
    FAULT_KINDS,
    SimulatedModem,
    SimulatedModemInfo,
    SimulatorHost,
    control_request,
    make_configs,
    parse_fault,
)
from rpcgw.gsm.simulator.network import (
    InjectResult,
    Rule,
    TrafficRecord,
    UnknownNumber,
    VirtualNetwork,
)

__all__ = [
    "FAULT_KINDS",
    "CmsFault",
    "Faults",
    "InjectResult",
    "ModemEngine",
    "Rule",
    "SimModemConfig",
    "SimulatedModem",
    "SimulatedModemInfo",
    "SimulatorHost",
    "TrafficRecord",
    "UnknownNumber",
    "VirtualNetwork",
    "WedgeFault",
    "control_request",
    "make_configs",
    "parse_fault",
]
