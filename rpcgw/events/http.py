"""The HTTP client of event delivery, refusing private addresses when it connects.

``urls.check_endpoint`` refuses literal private addresses and ``localhost`` when a URL
is given.  A host name can still resolve to a private address, at subscribe time or
later (DNS rebinding), so the connector gets a resolver that drops private, loopback,
link-local, multicast and reserved addresses from every answer and fails when nothing
public is left: the check happens on the very addresses aiohttp connects to.  aiohttp
does not ask the resolver about literal IP addresses, so ``post`` checks the URL again
before each attempt (the setting may have changed since the subscription was made).
Redirects are never followed: a redirect could point anywhere.
"""

from __future__ import annotations

import asyncio
import socket
import time
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from .. import __version__
from ..urls import UrlRefused, check_endpoint, is_private_address

USER_AGENT = f"rpcgw/{__version__} (+webhooks)"
#: Most bytes of a receiver's answer read (and kept, truncated, for errors).
MAX_RESPONSE_BYTES = 64 * 1024


class PrivateAddressRefused(OSError):
    pass


class PublicOnlyResolver(AbstractResolver):
    """Resolves with the system resolver and keeps only public addresses."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = ThreadedResolver()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0,
                      family: socket.AddressFamily = socket.AF_INET
                      ) -> list[ResolveResult]:
        infos = await self._inner.resolve(host, port, family)
        if self._allow_private:
            return infos
        public = [info for info in infos if not is_private_address(info["host"])]
        if not public:
            raise PrivateAddressRefused(
                f"{host} resolves only to private or reserved addresses; the operator did "
                "not allow private endpoints")
        return public

    async def close(self) -> None:
        await self._inner.close()


@dataclass(slots=True)
class Answer:
    status: int | None
    latency_ms: int
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class HttpSender:
    """One aiohttp session for every delivery of a gateway process."""

    def __init__(self, *, allow_private: bool, connect_timeout: float, timeout: float,
                 max_connections: int) -> None:
        self.allow_private = allow_private
        self.timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        connector = aiohttp.TCPConnector(
            resolver=PublicOnlyResolver(self.allow_private), limit=self._max_connections,
            ttl_dns_cache=10, enable_cleanup_closed=False)
        self._session = aiohttp.ClientSession(
            connector=connector, timeout=self.timeout, cookie_jar=aiohttp.DummyCookieJar(),
            headers={"User-Agent": USER_AGENT}, auto_decompress=False, trust_env=False)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def post(self, url: str, body: bytes, headers: dict[str, str]) -> Answer:
        """POST once; never raises for what the receiver or the network does."""
        assert self._session is not None, "HttpSender.start() was not awaited"
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            check_endpoint(url, allow_private=self.allow_private)
        except UrlRefused as exc:
            return Answer(None, 0, f"refused: {exc}")
        try:
            async with self._session.post(url, data=body, headers=headers,
                                          allow_redirects=False) as response:
                await _drain(response)
                return Answer(response.status, elapsed())
        except asyncio.TimeoutError:
            return Answer(None, elapsed(),
                          f"timeout: no answer within {self.timeout.total:g}s")
        except PrivateAddressRefused as exc:
            return Answer(None, elapsed(), f"refused: {exc}")
        except aiohttp.ClientConnectorError as exc:
            cause: Any = exc.os_error
            if isinstance(cause, PrivateAddressRefused):
                return Answer(None, elapsed(), f"refused: {cause}")
            return Answer(None, elapsed(), f"connection failed: {cause or exc}")
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return Answer(None, elapsed(), f"{type(exc).__name__}: {exc}"[:255])


async def _drain(response: aiohttp.ClientResponse) -> None:
    """Read (and drop) the answer, at most MAX_RESPONSE_BYTES, so the connection can be
    reused; a longer answer closes it instead."""
    read = 0
    while read < MAX_RESPONSE_BYTES:
        chunk = await response.content.readany()
        if not chunk:
            return
        read += len(chunk)
