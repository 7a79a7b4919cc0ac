"""Sign-in throttling shared by every server process: per account name and per client network.

Each failed attempt counts twice: on the account name (from any address) and on the client's
network (an IPv4 address, or the /64 an IPv6 address belongs to, across all names). Past a number
of free failures, each key imposes an exponential delay, capped (a delay, never a lock-out): while
a delay runs, attempts are refused without looking at the password and are not counted; once it
has run out, one attempt goes through, and a correct password always signs in.

An attempt is counted *before* the password is checked (and refunded when it was right), with a
conditional UPDATE, so parallel requests or several processes cannot slip extra guesses in while
the (slow) password hash is verified. The state is a database table so that every process shares
it; rows idle for ``forget_after`` are pruned, and the table is capped at ``max_rows`` (evicting the
keys with the fewest failures first, so a flood of fresh keys cannot wipe a hot one).
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, delete, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from journal.models import LoginThrottle, utcnow

logger = logging.getLogger(__name__)

#: Seconds to wait when another process counted an attempt on the same key at the same moment.
RACE_WAIT_S = 1.0
_NEVER = datetime(2000, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Policy:
    """How failures on one kind of key turn into a delay: ``free`` failures, then base * 2^k, capped."""

    free: int
    base_s: float = 1.0
    cap_s: float = 60.0

    def delay(self, failures: int) -> timedelta:
        """The delay imposed after that many failures."""
        if failures < self.free:
            return timedelta(0)
        return timedelta(seconds=min(self.base_s * 2.0 ** (failures - self.free), self.cap_s))


def account_key(name: str) -> str:
    """The key of an account name (case-folded, so "Alice" and "alice" share one budget)."""
    return "user:" + name.strip().casefold()[:100]


def address_key(address: str | None) -> str:
    """The key of a client address: the IPv4 address, or the /64 network of an IPv6 one."""
    try:
        ip = ipaddress.ip_address((address or "").split("%", 1)[0])
    except ValueError:
        return "addr:unknown"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if isinstance(ip, ipaddress.IPv6Address):
        return f"addr:{ipaddress.IPv6Network((ip, 64), strict=False)}"
    return f"addr:{ip}"


@dataclass
class Throttle:
    """The throttling rules; the state lives in the login_throttle table of the session's database."""

    account: Policy = field(default_factory=lambda: Policy(free=5))
    address: Policy = field(default_factory=lambda: Policy(free=20))
    forget_after: timedelta = timedelta(minutes=15)
    max_rows: int = 10_000
    clock: Callable[[], datetime] = utcnow

    def claim(self, session: Session, name: str, address: str | None) -> float:
        """Count an attempt for name and address: 0.0 when it may go on, else the seconds to wait."""
        now = self.clock()
        keys = {account_key(name): self.account, address_key(address): self.address}
        rows = {row.key: row for row in session.execute(_select_rows(keys))}
        wait = max([(row.next_at - now).total_seconds() for row in rows.values()] + [0.0])
        if wait > 0:
            return float(wait)
        for key, policy in keys.items():
            row = rows.get(key)
            if row is None:
                _insert_ignore(session, key)
                failures, last_at = 0, _NEVER
            else:
                failures, last_at = row.failures, row.last_at
            counted = 1 if now - last_at > self.forget_after else failures + 1
            result = session.execute(
                update(LoginThrottle)
                .where(
                    LoginThrottle.key == key,
                    LoginThrottle.failures == failures,
                    LoginThrottle.last_at == last_at,
                )
                .values(failures=counted, last_at=now, next_at=now + policy.delay(counted))
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                return RACE_WAIT_S
        if len(rows) < len(keys):
            self.prune(session)
        session.flush()
        return 0.0

    def succeeded(self, session: Session, name: str, address: str | None) -> None:
        """Refund a claimed attempt whose password was right: the account starts afresh."""
        session.execute(delete(LoginThrottle).where(LoginThrottle.key == account_key(name)))
        session.execute(
            update(LoginThrottle)
            .where(LoginThrottle.key == address_key(address), LoginThrottle.failures > 0)
            .values(failures=LoginThrottle.failures - 1, next_at=self.clock())
            .execution_options(synchronize_session=False)
        )
        session.flush()

    def wait_seconds(self, session: Session, name: str, address: str | None) -> float:
        """Seconds until an attempt for name and address may go on (0.0: now); counts nothing."""
        now = self.clock()
        rows = session.execute(_select_rows([account_key(name), address_key(address)]))
        return float(max([(row.next_at - now).total_seconds() for row in rows] + [0.0]))

    def prune(self, session: Session) -> int:
        """Forget keys idle for ``forget_after``, then cap the table; returns the rows deleted."""
        now = self.clock()
        # A delay never outlasts its cap, so an idle row holds no delay any more.
        idle = session.execute(delete(LoginThrottle).where(LoginThrottle.last_at < now - self.forget_after))
        deleted: int = idle.rowcount  # type: ignore[attr-defined]
        count = session.scalar(select(func.count()).select_from(LoginThrottle)) or 0
        if count > self.max_rows:
            # Evict down to 90% so that a flood does not pay for a COUNT plus a DELETE per new key.
            excess = count - self.max_rows * 9 // 10
            victims = (
                select(LoginThrottle.key)
                .order_by(LoginThrottle.failures, LoginThrottle.last_at)
                .limit(excess)
                .scalar_subquery()
            )
            evicted = session.execute(delete(LoginThrottle).where(LoginThrottle.key.in_(victims)))
            deleted += evicted.rowcount  # type: ignore[attr-defined]
            logger.warning("login throttle table over %d rows: evicted %d", self.max_rows, excess)
        return deleted


def _select_rows(keys: Iterable[str]) -> Select[str, int, datetime, datetime]:
    return select(
        LoginThrottle.key, LoginThrottle.failures, LoginThrottle.last_at, LoginThrottle.next_at
    ).where(LoginThrottle.key.in_(list(keys)))


def _insert_ignore(session: Session, key: str) -> None:
    """Create the key's row with no failures, unless another process just did."""
    values = {"key": key, "failures": 0, "last_at": _NEVER, "next_at": _NEVER}
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        session.execute(postgresql.insert(LoginThrottle).values(values).on_conflict_do_nothing())
    else:
        session.execute(sqlite.insert(LoginThrottle).values(values).on_conflict_do_nothing())
