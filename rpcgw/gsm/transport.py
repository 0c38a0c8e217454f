"""Async byte transport over a pyserial port: the only module that imports ``serial``.

pyserial is blocking.  Plain ports that have a file descriptor (``/dev/tty*``, a pty, and
``socket://``, whose ``fileno()`` is the socket's; pyserial opens both non-blocking) are
read and written with ``os.read``/``os.write`` on that descriptor, watched with
``loop.add_reader``/``add_writer``: no thread, no polling.  (pyserial's own ``write`` with
``write_timeout=0`` spins on ``EAGAIN``, hence the direct calls.)  Other URL handlers
(``rfc2217://`` speaks telnet on its socket, ``loop://``, ``spy://``) get one reader thread
that blocks in pyserial's ``read()`` with a short timeout.

Reads are never sized with ``in_waiting``: with ``socket://`` it is 0 or 1, not a byte count
(modem.md §4.6); a fixed chunk size is asked for instead.

Every ``serial.SerialException`` and ``OSError`` becomes :class:`ModemIOError` (with the
original as ``__cause__``) through :func:`map_serial_errors`; end of stream is also a
:class:`ModemIOError`, so the driver has a single failure to handle.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any, Protocol

import serial

__all__ = [
    "ModemError",
    "ModemIOError",
    "SerialTransport",
    "Transport",
    "map_serial_errors",
    "open_serial",
]

READ_CHUNK = 4096
#: pyserial port classes whose fileno() carries the raw byte stream (no in-band protocol).
_FD_MODULES = frozenset({"serial.serialposix", "serial.urlhandler.protocol_socket"})


class ModemError(Exception):
    """Base class of everything the GSM driver raises."""


class ModemIOError(ModemError):
    """The port failed: could not be opened, read or written, or the other end went away."""


@contextlib.contextmanager
def map_serial_errors(what: str) -> Iterator[None]:
    """Translate pyserial/OS errors into :class:`ModemIOError` (STYLE.md §4.3)."""
    try:
        yield
    except ModemIOError:
        raise
    except (serial.SerialException, OSError, ValueError) as exc:
        raise ModemIOError(f"{what}: {exc}") from exc


class Transport(Protocol):
    """What the driver needs from a port (a fake can implement it in tests)."""

    async def read(self) -> bytes:
        """Wait for and return at least one byte; raise :class:`ModemIOError` at EOF/error."""

    async def write(self, data: bytes) -> None:
        """Write all of ``data``."""

    async def close(self) -> None:
        """Close the port; idempotent."""


class SerialTransport:
    """A pyserial port driven from the event loop (see the module docstring)."""

    def __init__(self, port: Any, url: str) -> None:
        self._port = port
        self.url = url
        self._loop = asyncio.get_running_loop()
        self._buffer = bytearray()
        self._error: ModemIOError | None = None
        self._data_ready = asyncio.Event()
        self._closed = False
        self._fd: int | None = None
        self._thread: threading.Thread | None = None
        if type(port).__module__ in _FD_MODULES:
            self._fd = port.fileno()
        if self._fd is not None:
            self._loop.add_reader(self._fd, self._on_readable)
        else:
            # Blocking calls in threads: reads wake up every 0.2 s to notice close();
            # a write that cannot finish in 10 s is a dead port.
            port.timeout = 0.2
            port.write_timeout = 10.0
            self._thread = threading.Thread(target=self._reader_thread, daemon=True,
                                            name=f"serial-reader {url}")
            self._thread.start()

    @classmethod
    async def open(cls, url: str, *, baudrate: int = 115200) -> SerialTransport:
        """Open any pyserial URL (device path, pty, ``socket://``, ``rfc2217://``...)."""
        def do_open() -> Any:
            with map_serial_errors(f"cannot open {url}"):
                port = serial.serial_for_url(url, baudrate=baudrate, timeout=0,
                                             write_timeout=0, exclusive=None)
                port.reset_input_buffer()
                sock = getattr(port, "_socket", None)
                if sock is not None:
                    # A modem exchange is many small writes each waiting for an answer:
                    # Nagle's algorithm would hold them back behind delayed ACKs.
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                return port

        port = await asyncio.to_thread(do_open)
        try:
            return cls(port, url)
        except BaseException:
            port.close()
            raise

    # ---------------------------------------------------------------- reading

    def _fail(self, error: ModemIOError) -> None:
        if self._error is None:
            self._error = error
        self._data_ready.set()
        if self._fd is not None and not self._closed:
            self._loop.remove_reader(self._fd)

    def _on_readable(self) -> None:
        assert self._fd is not None
        try:
            with map_serial_errors(f"read from {self.url}"):
                data = os.read(self._fd, READ_CHUNK)
        except ModemIOError as exc:
            if not isinstance(exc.__cause__, (BlockingIOError, InterruptedError)):
                self._fail(exc)
            return
        if not data:
            self._fail(ModemIOError(f"read from {self.url}: end of stream"))
            return
        self._buffer += data
        self._data_ready.set()

    def _reader_thread(self) -> None:
        while not self._closed:
            try:
                with map_serial_errors(f"read from {self.url}"):
                    data = self._port.read(READ_CHUNK)
            except ModemIOError as exc:
                if not self._closed:
                    self._loop.call_soon_threadsafe(self._fail, exc)
                return
            if data:
                self._loop.call_soon_threadsafe(self._deliver, data)

    def _deliver(self, data: bytes) -> None:
        self._buffer += data
        self._data_ready.set()

    async def read(self) -> bytes:
        while not self._buffer:
            if self._error is not None:
                raise self._error
            if self._closed:
                raise ModemIOError(f"{self.url} is closed")
            self._data_ready.clear()
            await self._data_ready.wait()
        data = bytes(self._buffer)
        self._buffer.clear()
        return data

    # ---------------------------------------------------------------- writing

    async def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            if self._closed:
                raise ModemIOError(f"{self.url} is closed")
            if self._fd is None:
                with map_serial_errors(f"write to {self.url}"):
                    await asyncio.to_thread(self._port.write, bytes(view))
                return
            try:
                with map_serial_errors(f"write to {self.url}"):
                    written = os.write(self._fd, view)
            except ModemIOError as exc:
                if not isinstance(exc.__cause__, BlockingIOError):
                    raise
                written = 0
            view = view[written:]
            if view:
                await self._writable()

    async def _writable(self) -> None:
        """Wait until the fd accepts more output (the kernel buffer was full)."""
        assert self._fd is not None
        ready = self._loop.create_future()
        self._loop.add_writer(self._fd, _resolve, ready)
        try:
            await ready
        finally:
            self._loop.remove_writer(self._fd)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._fd is not None and self._error is None:
            self._loop.remove_reader(self._fd)
        self._data_ready.set()
        with contextlib.suppress(serial.SerialException, OSError):
            self._port.close()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join, 1.0)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


async def open_serial(url: str, *, baudrate: int = 115200) -> SerialTransport:
    """Default transport factory of the driver."""
    return await SerialTransport.open(url, baudrate=baudrate)
