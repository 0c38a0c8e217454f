"""The running gateway: one object that owns the database, the services and the workers.

Handlers reach everything through ``ctx.gw``; the CLI builds the same services on the
same database, so there is exactly one implementation of every operation.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

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


class Gateway:
    def __init__(self, settings: "Settings") -> None:
        self.settings = settings
        self.db = Database(settings.database_url, synchronous=settings.sqlite_synchronous)
        self.auth = Authenticator(self.db, settings)
        self.accounts = AccountService(self.db, settings, self.auth)
        self.dispatcher = Dispatcher(self, max_batch=settings.max_batch_calls)
        self.messages: MessageService  # needs the installation's key: set in start()

    async def start(self) -> None:
        await self.db.start()
        keys = await self.db.read(lambda: {m.key: m.value for m in Meta.select()})
        self.messages = MessageService(self.db, self.settings,
                                       HashCodec(keys["hash_key"], "sms"))

    async def stop(self) -> None:
        self.auth.close()
        await self.db.close()
