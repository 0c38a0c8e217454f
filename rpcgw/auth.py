"""Who is calling: HTTP Basic login/password, API keys, session tokens, CALLR-Login-As.

Passwords are stored as scrypt hashes (``cryptography``), which cost tens of
milliseconds each on purpose.  CALLR's SDKs send login and password on *every* call, so
verifying each one would cap the gateway at a few dozen calls per second.  Instead a
successful verification is remembered for ``auth_cache_seconds`` as a MAC (keyed
BLAKE2b) of the password under a per-process random key: the cache never holds a password or anything
that can be checked offline, a wrong password never evicts or replaces the entry, and a
change of password or of the enabled flag on this node bumps ``auth_version`` and drops
the entry at once (other nodes notice within the cache lifetime).  When an entry
expires, the same password is not hashed again: one database read checks that the
user's hash and ``auth_version`` are still those it was verified against, and renews
it.  Concurrent calls that need the same verification or renewal share one (a client
with 64 connections would otherwise start 64 scrypt computations at once, seconds of
both cores, every time its entry expired).

Lockout policy: after ``login_max_failures`` consecutive failures for an existing login,
the login is locked for ``login_lock_seconds``, doubling with each further failure up to
``login_lock_max_seconds``; a success resets the count.  While locked, even the right
password is refused (HTTP 429 with Retry-After), except by callers whose password is
already in the cache, so a guesser cannot lock out a client that is working.  Failures
are kept in the database, shared by all nodes.  Unknown logins cost the same scrypt
time as known ones and are throttled in memory, so they reveal nothing and fill no table.

API keys and session tokens are 50 random bytes; only their SHA-256 is stored.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import hmac
import os
import secrets
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from . import errors
from .models import ApiKey, LoginFailure, Session, User, now_ms

if TYPE_CHECKING:
    from .config import Settings
    from .db import Database

SCRYPT_N, SCRYPT_R, SCRYPT_P = 2 ** 14, 8, 1
_DUMMY_HASH: str | None = None


def hash_password(password: str) -> str:
    salt = os.urandom(16)
    key = Scrypt(salt=salt, length=32, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P).derive(
        password.encode("utf-8"))
    return "scrypt${}${}${}${}${}".format(
        SCRYPT_N, SCRYPT_R, SCRYPT_P,
        base64.b64encode(salt).decode(), base64.b64encode(key).decode())


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, key = stored.split("$")
        if scheme != "scrypt":
            return False
        Scrypt(salt=base64.b64decode(salt), length=32, n=int(n), r=int(r),
               p=int(p)).verify(password.encode("utf-8"), base64.b64decode(key))
        return True
    except (InvalidKey, ValueError, binascii.Error):
        return False


def _dummy_hash() -> str:
    global _DUMMY_HASH
    if _DUMMY_HASH is None:
        _DUMMY_HASH = hash_password(secrets.token_hex(8))
    return _DUMMY_HASH


def new_token() -> str:
    """100 hex characters, the size of CALLR's API keys."""
    return secrets.token_hex(50)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Principal:
    """The user a call acts for, and how it authenticated."""

    user_id: int
    login: str
    is_admin: bool
    method: str  # "basic", "api-key", "session"
    #: Set when an admin acts as another user through CALLR-Login-As.
    real_login: str | None = None
    session_id: int | None = None


@dataclass(slots=True)
class _Cached:
    verifier: bytes
    principal: Principal
    auth_version: int
    password_hash: str
    expires: float


class Authenticator:
    """Turns an ``Authorization`` header into a :class:`Principal` or an error."""

    def __init__(self, db: "Database", settings: "Settings") -> None:
        self.db = db
        self.settings = settings
        self._key = secrets.token_bytes(32)
        self._basic: dict[str, _Cached] = {}
        self._tokens: dict[str, tuple[Principal, float]] = {}
        self._unknown_failures: dict[str, tuple[int, float]] = {}
        #: Verifications and renewals in progress, shared by concurrent identical calls.
        self._flights: dict[tuple[str, bytes], asyncio.Future[Principal]] = {}
        # scrypt holds a core for ~50 ms: keep it off the loop and off the DB threads.
        self._kdf = ThreadPoolExecutor(max_workers=2, thread_name_prefix="rpcgw-kdf")
        #: How many scrypt computations ran (tests check that cached logins skip them).
        self.kdf_calls = 0

    def close(self) -> None:
        self._kdf.shutdown(wait=False, cancel_futures=True)

    # -- cache maintenance -----------------------------------------------------------

    def forget_login(self, login: str) -> None:
        self._basic.pop(login, None)

    def forget_user(self, user_id: int) -> None:
        for login in [k for k, v in self._basic.items() if v.principal.user_id == user_id]:
            del self._basic[login]
        for tok in [k for k, v in self._tokens.items() if v[0].user_id == user_id]:
            del self._tokens[tok]

    def forget_token(self, digest: str) -> None:
        self._tokens.pop(digest, None)

    # -- entry point -----------------------------------------------------------------

    async def authenticate(self, authorization: str | None,
                           login_as: str | None = None) -> Principal:
        if not authorization:
            raise errors.AuthenticationFailed("missing Authorization header")
        scheme, _, credentials = authorization.strip().partition(" ")
        scheme = scheme.lower()
        credentials = credentials.strip()
        if scheme == "basic":
            principal = await self._basic_auth(credentials)
        elif scheme in ("api-key", "apikey", "bearer"):
            principal = await self._token_auth(credentials, "api-key")
        elif scheme == "session":
            principal = await self._token_auth(credentials, "session")
        else:
            raise errors.AuthenticationFailed(
                "unsupported Authorization scheme; use Basic, Api-Key or Session")
        if login_as:
            principal = await self._login_as(principal, login_as)
        return principal

    # -- Basic -----------------------------------------------------------------------

    def _verifier(self, password: str) -> bytes:
        # Keyed BLAKE2b is a MAC in its own right, and ~20x cheaper than OpenSSL's HMAC
        # set-up per call, which matters because this runs on every Basic-auth call.
        return hashlib.blake2b(password.encode("utf-8", "surrogatepass"), key=self._key,
                               digest_size=32).digest()

    async def _basic_auth(self, credentials: str) -> Principal:
        try:
            decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            raise errors.AuthenticationFailed("malformed Basic credentials") from None
        login, sep, password = decoded.partition(":")
        if not sep or not login:
            raise errors.AuthenticationFailed("malformed Basic credentials")
        verifier = self._verifier(password)
        cached = self._basic.get(login)
        if cached is not None and hmac.compare_digest(cached.verifier, verifier):
            if cached.expires > time.monotonic():
                return cached.principal
            return await self._once(login, verifier, self._renew, login, password, cached)
        return await self._once(login, verifier, self._verify_basic, login, password)

    async def _once(self, login: str, verifier: bytes, fn: Any, *args: Any) -> Principal:
        """Run ``fn(*args)`` once for all concurrent calls with these credentials."""
        key = (login, verifier)
        flight = self._flights.get(key)
        if flight is None:
            flight = asyncio.ensure_future(fn(*args))
            self._flights[key] = flight
            flight.add_done_callback(lambda done: self._landed(key, done))
        # shield: a caller that goes away must not cancel the others' verification.
        return await asyncio.shield(flight)

    def _landed(self, key: tuple[str, bytes], done: "asyncio.Future[Principal]") -> None:
        self._flights.pop(key, None)
        if not done.cancelled():
            done.exception()  # retrieved here too, should every caller have gone

    async def _renew(self, login: str, password: str, cached: _Cached) -> Principal:
        """An expired entry whose password matched: still valid if the user's hash and
        auth_version are those it was verified against (no scrypt)."""
        user, _ = await self.db.read(_load_login, login)
        if (user is None or not user.enabled or user.auth_version != cached.auth_version
                or user.password_hash != cached.password_hash):
            if self._basic.get(login) is cached:
                del self._basic[login]
            return await self._verify_basic(login, password)
        cached.expires = time.monotonic() + self.settings.auth_cache_seconds
        return cached.principal

    async def _verify_basic(self, login: str, password: str) -> Principal:
        s = self.settings
        user, failure = await self.db.read(_load_login, login)
        now = now_ms()
        if user is None:
            count, locked_until = self._unknown_failures.get(login, (0, 0.0))
            if locked_until > time.monotonic():
                raise errors.AccountLocked(locked_until - time.monotonic())
            await self.run_kdf(lambda: verify_password(password, _dummy_hash()))
            self._note_unknown_failure(login)
            raise errors.AuthenticationFailed("wrong login or password")
        if failure is not None and failure.locked_until and failure.locked_until > now:
            raise errors.AccountLocked((failure.locked_until - now) / 1000)
        ok = await self.run_kdf(verify_password, password, user.password_hash)
        if not ok or not user.enabled:
            await self.db.write(_record_failure, login, s.login_max_failures,
                                s.login_lock_seconds, s.login_lock_max_seconds)
            raise errors.AuthenticationFailed(
                "wrong login or password" if not ok else "this user is disabled")
        if failure is not None:
            await self.db.write(_clear_failures, login)
        principal = Principal(user.id, user.login, user.is_admin, "basic")
        self._basic[login] = _Cached(self._verifier(password), principal, user.auth_version,
                                     user.password_hash,
                                     time.monotonic() + s.auth_cache_seconds)
        if len(self._basic) > 100_000:  # bound memory against many distinct logins
            self._basic.pop(next(iter(self._basic)))
        return principal

    def _note_unknown_failure(self, login: str) -> None:
        s = self.settings
        count, _ = self._unknown_failures.get(login, (0, 0.0))
        count += 1
        locked = 0.0
        if count >= s.login_max_failures:
            locked = time.monotonic() + min(
                s.login_lock_seconds * 2 ** (count - s.login_max_failures),
                s.login_lock_max_seconds)
        if len(self._unknown_failures) > 10_000:
            self._unknown_failures.clear()
        self._unknown_failures[login] = (count, locked)

    async def run_kdf(self, fn: Any, *args: Any) -> Any:
        """Run a password hash or check in the dedicated KDF threads."""
        self.kdf_calls += 1
        return await asyncio.get_running_loop().run_in_executor(self._kdf, fn, *args)

    # -- tokens ----------------------------------------------------------------------

    async def _token_auth(self, token: str, kind: str) -> Principal:
        if not token:
            raise errors.AuthenticationFailed(f"empty {kind} token")
        digest = token_digest(token)
        cached = self._tokens.get(digest)
        now = time.monotonic()
        if cached is not None and cached[1] > now and cached[0].method == kind:
            return cached[0]
        loader = _load_api_key if kind == "api-key" else _load_session
        found = await self.db.read(loader, digest)
        if found is None:
            raise errors.AuthenticationFailed(f"unknown or expired {kind}")
        principal, valid_for = found
        self._tokens[digest] = (principal, now + min(valid_for, self.settings.auth_cache_seconds))
        if len(self._tokens) > 100_000:
            self._tokens.pop(next(iter(self._tokens)))
        return principal

    # -- CALLR-Login-As ----------------------------------------------------------------

    async def _login_as(self, principal: Principal, header: str) -> Principal:
        kind, _, target = header.strip().partition(" ")
        kind, target = kind.lower(), target.strip()
        if not principal.is_admin:
            raise errors.PermissionDenied("only administrators may use CALLR-Login-As",
                                          field="CALLR-Login-As")
        if kind not in ("user.login", "user.id") or not target:
            raise errors.PermissionDenied(
                "CALLR-Login-As must be 'user.login <login>' or 'user.id <id>'",
                field="CALLR-Login-As")
        user = await self.db.read(_load_target, kind, target)
        if user is None:
            raise errors.PermissionDenied(f"no such user {target!r}", field="CALLR-Login-As")
        return Principal(user.id, user.login, user.is_admin, principal.method,
                         real_login=principal.login)


# -- database functions (run in reader/writer threads) -----------------------------------

def _load_login(login: str) -> tuple[User | None, LoginFailure | None]:
    user = User.get_or_none(User.login == login)
    failure = LoginFailure.get_or_none(LoginFailure.login == login) if user else None
    return user, failure


def _load_target(kind: str, target: str) -> User | None:
    if kind == "user.id":
        return User.get_or_none(User.id == int(target)) if target.isdigit() else None
    return User.get_or_none(User.login == target)


def _record_failure(login: str, max_failures: int, lock_seconds: float,
                    lock_max: float) -> None:
    now = now_ms()
    row = LoginFailure.get_or_none(LoginFailure.login == login)
    count = (row.failures if row else 0) + 1
    locked_until = None
    if count >= max_failures:
        locked_until = now + int(1000 * min(lock_seconds * 2 ** (count - max_failures),
                                            lock_max))
    LoginFailure.insert(login=login, failures=count, locked_until=locked_until,
                        last_failure_at=now).on_conflict(
        conflict_target=[LoginFailure.login],
        update={LoginFailure.failures: count, LoginFailure.locked_until: locked_until,
                LoginFailure.last_failure_at: now}).execute()


def _clear_failures(login: str) -> None:
    LoginFailure.delete().where(LoginFailure.login == login).execute()


def _load_api_key(digest: str) -> tuple[Principal, float] | None:
    row = (ApiKey.select(ApiKey, User).join(User)
           .where(ApiKey.token_hash == digest, User.enabled == True)  # noqa: E712
           .first())
    if row is None:
        return None
    return Principal(row.user.id, row.user.login, row.user.is_admin, "api-key"), 1e9


def _load_session(digest: str) -> tuple[Principal, float] | None:
    row = (Session.select(Session, User).join(User)
           .where(Session.token_hash == digest, User.enabled == True)  # noqa: E712
           .first())
    if row is None:
        return None
    remaining = (row.valid_until - now_ms()) / 1000
    if remaining <= 0:
        return None
    return (Principal(row.user.id, row.user.login, row.user.is_admin, "session",
                      session_id=row.id), remaining)
