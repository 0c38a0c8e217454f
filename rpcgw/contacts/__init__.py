"""Contacts, contact lists, campaigns and opt-outs (SmsGateway24's tags, contacts and
newsletters, done for careful bulk sending).

Layout::

    models.py     tables and their migration (``migrate_contacts``)
    store.py      database jobs for lists, contacts, opt-outs (API and CLI share them)
    service.py    validation + ``ContactService`` behind ``contacts.*``
    campaigns.py  templates, campaign jobs, ``CampaignService`` behind ``campaigns.*``
    runner.py     the component that queues due campaigns (theory of operation there)
    optout.py     STOP/START listener and the in-memory opt-out cache for ``sms.send``
    cli.py        ``rpcgw contacts import``, ``rpcgw campaign create|watch|list``

``attach(gateway)`` is called by the gateway (``FEATURES``); ``contacts_of(gateway)``
returns the running component.  This module imports nothing heavy, so that
``rpcgw.migrations`` and ``rpcgw.cli`` can import it cheaply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from ..gateway import Gateway

NAME = "rpcgw.contacts"


class Contacts:
    """The component: opt-out cache and listener, campaign runner, and the services."""

    def __init__(self, gateway: "Gateway") -> None:
        from .campaigns import CampaignService
        from .optout import OptOutCache, OptOutListener
        from .runner import CampaignRunner
        from .service import ContactService

        gw = gateway
        self.gw = gw
        self.optouts: OptOutCache = OptOutCache(gw.db, gw.settings)
        self.listener: OptOutListener = OptOutListener(
            gw.db, gw.settings, gw.messages, on_change=self.optouts.wake_threadsafe)
        self.runner: CampaignRunner = CampaignRunner(gw)
        #: API-only processes (role ``api``) serve campaigns.* but leave queuing to the
        #: process that runs the modem pool, which notices new campaigns by polling.
        self.runs_campaigns = gw.settings.role == "all"
        self.contacts: ContactService = ContactService(gw.db, gw.settings, gw.messages,
                                                       self.optouts)
        self.campaigns: CampaignService = CampaignService(gw.db, gw.settings, gw.messages,
                                                          on_change=self.runner.wake)

    async def start(self) -> None:
        await self.optouts.start()
        self.gw.messages.checks.append(self.optouts.check)
        self.gw.db.status_listeners.append(self.listener)
        if self.runs_campaigns:
            await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()
        if self.listener in self.gw.db.status_listeners:
            self.gw.db.status_listeners.remove(self.listener)
        if self.optouts.check in self.gw.messages.checks:
            self.gw.messages.checks.remove(self.optouts.check)
        await self.optouts.stop()


def attach(gateway: "Gateway") -> Contacts:
    return Contacts(gateway)


def contacts_of(gateway: "Gateway") -> Contacts:
    from .. import errors

    component = gateway.components.get(NAME)
    if component is None:
        raise errors.Unavailable("contacts and campaigns are not running on this gateway")
    assert isinstance(component, Contacts)
    return component


def add_commands(subparsers: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    from .cli import add_commands as add

    add(subparsers)
