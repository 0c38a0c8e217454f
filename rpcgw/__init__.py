"""rpcgw: a self-hosted SMS gateway over GSM modems with a CALLR-compatible JSON-RPC API."""

__version__ = "0.1.0"
