"""JSON-RPC handlers, one module per namespace.  Each stays thin: it turns parameters
into a service call and the service's answer into the result."""

from . import accounts, callbacks, campaigns, contacts, devices, sms, system, webhooks  # noqa: F401
