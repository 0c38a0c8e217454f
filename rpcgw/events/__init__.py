"""Event delivery: webhooks (CALLR), callbacks (SMS Gateway Me), per-message webhooks
and status URLs, delivered from a transactional outbox with retries.

Layout::

    models.py   tables: webhook, callback, webhook_event, webhook_delivery, ...
    outbox.py   the listener that writes events and deliveries with each status change
    engine.py   the workers: lease, POST, record, retry (theory of operation there)
    formats.py  JSON (CALLR), FORM (seed 002), SMSMANAGER (seed 003), status URL
    signing.py  X-CALLR-HmacSignature and the timestamped X-Rpcgw-Signature
    http.py     the aiohttp client that refuses private addresses when it connects
    crypto.py   secrets encrypted at rest; URL redaction for logs
    filters.py  callback filters (contains, …, regex with a time limit, keyword)
    service.py  the operations behind webhooks.* and callbacks.*

``attach(gateway)`` is called by the gateway (``FEATURES``); the component is
``gateway.components["rpcgw.events"]``, and ``events_of(gateway)`` returns it.  This
module imports nothing heavy so that ``rpcgw.migrations`` can import ``models``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..gateway import Gateway

NAME = "rpcgw.events"


class Events:
    """The component: the outbox listener, the delivery engine and the service."""

    def __init__(self, gateway: "Gateway") -> None:
        from ..ids import HashCodec
        from .crypto import SecretBox
        from .engine import DeliveryEngine
        from .outbox import Outbox
        from .service import EventService

        gw = gateway
        codec = HashCodec(gw.keys["hash_key"], "webhook")
        box = SecretBox(gw.settings.secret_key or gw.keys["secret_key"])
        self.engine = DeliveryEngine(
            gw.db, gw.settings, box, codec, on_subscription_disabled=self._invalidate)
        self.outbox = Outbox(gw.db, gw.settings, gw.messages, codec,
                             on_new=self.engine.wake_threadsafe)
        self.service = EventService(gw.db, gw.settings, gw.messages, box, codec,
                                    self.outbox, self.engine)
        gw.messages.seal = box.encrypt  # dynamic webhooks' secrets (sms.send options)

    def _invalidate(self) -> None:
        self.outbox.invalidate()

    async def start(self) -> None:
        await self.engine.start()
        self.outbox.register()

    async def stop(self) -> None:
        self.outbox.unregister()
        await self.engine.stop()


def attach(gateway: "Gateway") -> Events:
    return Events(gateway)


def events_of(gateway: "Gateway") -> Events:
    from .. import errors

    component = gateway.components.get(NAME)
    if component is None:
        raise errors.Unavailable("event delivery is not running on this gateway",
                                 message="UNAVAILABLE")
    assert isinstance(component, Events)
    return component
