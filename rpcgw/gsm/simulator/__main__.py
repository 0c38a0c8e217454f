"""``python -m rpcgw.gsm.simulator``: see :mod:`rpcgw.gsm.simulator.cli`."""

import sys

from rpcgw.gsm.simulator.cli import main

sys.exit(main())
