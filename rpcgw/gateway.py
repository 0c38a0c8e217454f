"""The running gateway: one object that owns the database, the services and the workers.

Handlers reach everything through ``ctx.gw``; the CLI builds the same services on the
same database, so there is exactly one implementation of every operation.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any, Protocol

from . import api  # noqa: F401 - registers every JSON-RPC method
from .auth import Authenticator
from .db import Database
from .ids import HashCodec
from .models import Meta
from .rpc import Dispatcher
from .services.accounts import AccountService
from .services.messages import MessageService

if TYPE_CHECKING:
    from .config import Settings

log = logging.getLogger("rpcgw")

#: Features that run beside the API (modem pool, event delivery, ...).  Each module has
#: ``attach(gateway) -> Component``; components start in this order, after the database
#: and the core services, and stop in the reverse order.
FEATURES: tuple[str, ...] = ("rpcgw.events", "rpcgw.pool", "rpcgw.contacts")


class Component(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Gateway:
    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.db = Database(settings.database_url, synchronous=settings.sqlite_synchronous)
        self.auth = Authenticator(self.db, settings)
        self.accounts = AccountService(self.db, settings, self.auth)
        self.dispatcher = Dispatcher(self, max_batch=settings.max_batch_calls)
        self.messages: MessageService  # needs the installation's key: set in start()
        self.keys: dict[str, str] = {}
        #: The modem pool, when the ``rpcgw.pool`` feature runs.
        self.pool: Any = None
        self.components: dict[str, Any] = {}

    async def start(self) -> None:
        await self.db.start()
        self.keys = await self.db.read(lambda: {m.key: m.value for m in Meta.select()})
        self.messages = MessageService(self.db, self.settings,
                                       HashCodec(self.keys["hash_key"], "sms"))
        for name in FEATURES:
            component = importlib.import_module(name).attach(self)
            self.components[name] = component
            await component.start()

    async def stop(self) -> None:
        for name in reversed(list(self.components)):
            try:
                await self.components.pop(name).stop()
            except Exception:  # noqa: BLE001 - keep stopping the others
                log.exception("stopping %s failed", name)
        self.auth.close()
        await self.db.close()
