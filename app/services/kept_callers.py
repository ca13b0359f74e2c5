"""Bearer tokens already resolved, kept in the process: every API request of an app asks who its
token speaks for, and the answer (token, app, person, accounts, the organisations they act for)
cost two statements and a fifth of a home timeline's CPU.

What it must never do is honour a token after it stopped being valid, in any process. So:
- every write to what a token's answer is made of (its row or its app's, the person's, a local
  account's, an organisation's team) is seen here, by the sessions themselves (`watch_writes`:
  SQLAlchemy's flush and ORM statement hooks, not the goodwill of each service), and announced
  after commit as `CredentialsChanged`; the event channel carries it to the other processes, and
  a write's answer leaves only once it has been handed over (app.cache_middleware);
- a reader uses what is kept only after taking in what the other processes sent
  (`EventChannel.catch_up`), and only when that catch-up could be made (on PostgreSQL, while the
  listening connection answers): otherwise it reads the database, as before;
- a resolution begun before a change it may predate is not kept (the tickets of
  app.services.renderings), EventsMissed drops everything, and nothing lives beyond `ttl`
  seconds (a write made outside the ORM, by hand in SQL, is seen within that long).
A token's `last_used_at` is refreshed when its resolution is made again, at most `ttl` later.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, UOWTransaction

from app.models import Account, AccountDelegate, OAuthAccessToken, OAuthApplication, User
from app.models.base import table_of
from app.services import events
from app.services.after_commit import after_commit_of, transaction_value_of
from app.services.kept_values import KeptValues

DEFAULT_TTL = 30.0
DEFAULT_LIMIT = 10_000
# Columns a bulk UPDATE may set without changing what a token's answer is: the token's last use
# (written by the resolution itself), an account's counts (its posts' events drop them anyway).
_HARMLESS_UPDATES = {
    "oauth_access_token": frozenset({"last_used_at"}),
    "account": frozenset({"posts_count", "last_post_at", "followers_count", "following_count"}),
}
_WATCHED_TABLES = frozenset(
    table_of(model).name for model in (OAuthAccessToken, OAuthApplication, User, Account, AccountDelegate)
)
_PENDING_KEY = "herold.credentials_changed"
_WATCHING_MARK = "_herold_watches_credentials"


class KeptCallers(KeptValues[str, frozenset[int]]):
    """Resolved tokens by their hash, for one instance in this process; each tagged with the
    accounts its answer shows (the person's own, the one it acts as, the organisations)."""

    def __init__(self, *, ttl: float = DEFAULT_TTL, limit: int = DEFAULT_LIMIT) -> None:
        super().__init__(ttl=ttl, limit=limit)

    def forget_accounts(self, account_ids: Iterable[int]) -> None:
        dropped = frozenset(account_ids)
        self.forget(lambda _hash, shown: bool(shown & dropped))

    def on_event(self, item: events.Event) -> None:
        """The event bus listener (this process's commits and the other processes' alike)."""
        match item:
            case events.CredentialsChanged(account_ids=account_ids):
                if account_ids:
                    self.forget_accounts(account_ids)
                else:
                    self.clear()
            case events.EventsMissed():
                self.clear()
            case events.AccountChanged(account_id=account_id) | events.PostPublished(account_id=account_id):
                # What the viewer's own account shows (its profile, its count of posts).
                if self._entries:
                    self.forget_accounts([account_id])
            case events.PostDeleted(account_id=account_id) | events.PostEdited(account_id=account_id):
                if self._entries:
                    self.forget_accounts([account_id])
            case _:
                pass


# ------------------------------------------------------------------------------------------------
# Seeing the writes


def watch_writes(session_class: type[Session]) -> None:
    """Announce `CredentialsChanged` for every committed write of the tables a token's answer is
    read from, made through sessions of `session_class` (one per instance's session factory)."""
    # Marked on the class itself, not asked of `event.contains`: SQLAlchemy's registry knows a
    # target by its id(), so a new class at the address of a collected one (an instance built after
    # another was closed, as the tests do) looked watched already and was not, and a revoked token
    # stayed kept.
    if session_class.__dict__.get(_WATCHING_MARK):
        return
    event.listen(session_class, "after_flush", _after_flush)
    event.listen(session_class, "do_orm_execute", _on_statement)
    setattr(session_class, _WATCHING_MARK, True)


def _after_flush(session: Session, _flush: UOWTransaction) -> None:
    account_ids: set[int] = set()
    everything = False
    for instance in (*session.dirty, *session.deleted):
        if isinstance(instance, Account):
            if instance.domain is None:
                account_ids.add(instance.id)
        elif isinstance(instance, User):
            account_ids.add(instance.account_id)
        elif isinstance(instance, OAuthAccessToken | OAuthApplication | AccountDelegate):
            everything = True
    for instance in session.new:
        if isinstance(instance, AccountDelegate):
            everything = True
    if everything:
        _pending(session, None)
    elif account_ids:
        _pending(session, account_ids)


def _on_statement(state: ORMExecuteState) -> None:
    if not (state.is_update or state.is_delete):
        return
    statement: Any = state.statement
    table = getattr(statement, "table", None)
    name = getattr(table, "name", None)
    if name not in _WATCHED_TABLES:
        return
    if state.is_update:
        values = getattr(statement, "_values", None)
        harmless = _HARMLESS_UPDATES.get(name)
        if harmless and values and all(getattr(key, "key", key) in harmless for key in values):
            return
    _pending(state.session, None)


def _pending(session: Session, account_ids: set[int] | None) -> None:
    """Remember what this transaction changed; announced once, after it commits."""
    bus: events.EventBus | None = session.info.get(events.SESSION_INFO_KEY)
    if bus is None:
        return
    changed: dict[str, Any] = transaction_value_of(session, _PENDING_KEY, dict)
    if not changed:
        after_commit_of(session, _PENDING_KEY, lambda: bus.deliver([_event(changed)]))
    if account_ids is None:
        changed["all"] = True
    else:
        changed.setdefault("ids", set()).update(account_ids)


def _event(changed: dict[str, Any]) -> events.CredentialsChanged:
    if changed.get("all"):
        return events.CredentialsChanged()
    return events.CredentialsChanged(tuple(sorted(changed.get("ids", ()))))


__all__ = ["KeptCallers", "watch_writes"]
