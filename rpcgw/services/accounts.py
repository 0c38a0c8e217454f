"""Users, API keys and sessions.  Shared by the JSON-RPC methods and the CLI."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from .. import errors
from ..auth import hash_password, new_token, token_digest
from ..models import ApiKey, LoginFailure, Session, User, now_ms
from ..timefmt import fmt_ms

if TYPE_CHECKING:
    from ..auth import Authenticator, Principal
    from ..config import Settings
    from ..db import Database

LOGIN_RE = re.compile(r"[A-Za-z0-9_.@+-]{1,64}")
MIN_PASSWORD = 8


def check_login(login: str) -> str:
    if not LOGIN_RE.fullmatch(login or ""):
        raise errors.InvalidParams(
            "1 to 64 letters, digits or _ . @ + -", param="login")
    return login


def check_password(password: str) -> str:
    if len(password or "") < MIN_PASSWORD:
        raise errors.InvalidParams(f"at least {MIN_PASSWORD} characters", param="password")
    return password


def user_object(user: User) -> dict[str, Any]:
    return {"id": user.id, "login": user.login, "admin": user.is_admin,
            "enabled": user.enabled, "date_creation": fmt_ms(user.created_at),
            "date_update": fmt_ms(user.updated_at)}


# -- users (run inside a transaction: Database.run_sync or db.write) ----------------------

def prepare_password(password: str) -> str:
    """Check and hash a new password.  Slow on purpose (scrypt): call it outside the
    database writer thread, then store the result with one of the functions below."""
    return hash_password(check_password(password))


def create_user(login: str, password_hash: str, admin: bool = False) -> User:
    check_login(login)
    if User.select().where(User.login == login).exists():
        raise errors.Conflict(f"user {login!r} exists", message="ALREADY_EXISTS",
                              param="login")
    return User.create(login=login, password_hash=password_hash, is_admin=admin)


def set_password(login: str, password_hash: str) -> User:
    user = User.get_or_none(User.login == login)
    if user is None:
        raise errors.NotFound(f"no user {login!r}", param="login")
    user.password_hash = password_hash
    user.auth_version += 1
    user.updated_at = now_ms()
    user.save()
    LoginFailure.delete().where(LoginFailure.login == login).execute()
    # A new password ends every session opened with the old one.
    Session.delete().where(Session.user == user.id).execute()
    return user


def update_user(login: str, fields: dict[str, Any], password_hash: str | None = None) -> User:
    user = User.get_or_none(User.login == login)
    if user is None:
        raise errors.NotFound(f"no user {login!r}", param="login")
    if "admin" in fields:
        user.is_admin = bool(fields["admin"])
    if "enabled" in fields:
        user.enabled = bool(fields["enabled"])
        if not user.enabled:
            Session.delete().where(Session.user == user.id).execute()
    if password_hash:
        user.password_hash = password_hash
        Session.delete().where(Session.user == user.id).execute()
    user.auth_version += 1
    user.updated_at = now_ms()
    user.save()
    return user


def list_users() -> list[dict[str, Any]]:
    return [user_object(u) for u in User.select().order_by(User.id)]


# -- API keys and sessions ------------------------------------------------------------------

class AccountService:
    def __init__(self, db: "Database", settings: "Settings", auth: "Authenticator") -> None:
        self.db = db
        self.settings = settings
        self.auth = auth

    async def create_api_key(self, principal: "Principal", name: str) -> dict[str, Any]:
        token = new_token()

        def insert() -> ApiKey:
            return ApiKey.create(user=principal.user_id, name=name,
                                 token_hash=token_digest(token))
        key = await self.db.write(insert)
        return {"id": key.id, "name": key.name, "token": token,
                "date_creation": fmt_ms(key.created_at)}

    async def list_api_keys(self, principal: "Principal") -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            return [{"id": k.id, "name": k.name, "date_creation": fmt_ms(k.created_at)}
                    for k in ApiKey.select().where(ApiKey.user == principal.user_id)
                    .order_by(ApiKey.id)]
        return await self.db.read(load)

    async def delete_api_key(self, principal: "Principal", key_id: int) -> bool:
        def delete() -> str | None:
            key = ApiKey.get_or_none(ApiKey.id == key_id, ApiKey.user == principal.user_id)
            if key is None:
                return None
            key.delete_instance()
            return key.token_hash
        digest = await self.db.write(delete)
        if digest is None:
            raise errors.NotFound(f"no API key {key_id}", param="id")
        self.auth.forget_token(digest)
        return True

    def _session_object(self, s: Session, token: str, refresh: str) -> dict[str, Any]:
        return {"token": token, "valid_until": fmt_ms(s.valid_until),
                "refresh_token": refresh, "refresh_valid_until": fmt_ms(s.refresh_until)}

    async def create_session(self, principal: "Principal") -> dict[str, Any]:
        token, refresh = new_token()[:40], new_token()
        now = now_ms()

        def insert() -> Session:
            return Session.create(
                user=principal.user_id, token_hash=token_digest(token),
                refresh_hash=token_digest(refresh),
                valid_until=now + int(self.settings.session_seconds * 1000),
                refresh_until=now + int(self.settings.refresh_seconds * 1000))
        session = await self.db.write(insert)
        return self._session_object(session, token, refresh)

    async def refresh_session(self, principal: "Principal",
                              refresh_token: str) -> dict[str, Any]:
        token, refresh = new_token()[:40], new_token()
        now = now_ms()

        def rotate() -> tuple[Session, str] | None:
            s = Session.get_or_none(Session.refresh_hash == token_digest(refresh_token),
                                    Session.user == principal.user_id)
            if s is None or s.refresh_until <= now:
                return None
            old = s.token_hash
            s.token_hash = token_digest(token)
            s.refresh_hash = token_digest(refresh)
            s.valid_until = now + int(self.settings.session_seconds * 1000)
            s.refresh_until = now + int(self.settings.refresh_seconds * 1000)
            s.save()
            return s, old
        outcome = await self.db.write(rotate)
        if outcome is None:
            raise errors.NotFound("unknown or expired refresh token", param="refresh_token")
        session, old_digest = outcome
        self.auth.forget_token(old_digest)
        return self._session_object(session, token, refresh)

    async def list_sessions(self, principal: "Principal") -> list[dict[str, Any]]:
        now = now_ms()

        def load() -> list[dict[str, Any]]:
            return [{"id": s.id, "date_creation": fmt_ms(s.created_at),
                     "valid_until": fmt_ms(s.valid_until),
                     "current": s.id == principal.session_id}
                    for s in Session.select().where(Session.user == principal.user_id,
                                                    Session.refresh_until > now)
                    .order_by(Session.id)]
        return await self.db.read(load)

    async def delete_session(self, principal: "Principal", session_id: int | None) -> bool:
        target = session_id if session_id is not None else principal.session_id
        if target is None:
            raise errors.InvalidParams(
                "give the session id, or call with Authorization: Session <token>",
                param="id")

        def delete() -> str | None:
            s = Session.get_or_none(Session.id == target, Session.user == principal.user_id)
            if s is None:
                return None
            s.delete_instance()
            return s.token_hash
        digest = await self.db.write(delete)
        if digest is None:
            raise errors.NotFound(f"no session {target}", param="id")
        self.auth.forget_token(digest)
        return True
