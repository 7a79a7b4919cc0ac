"""Sign-in throttling: per account and per network, delays not lock-outs, shared through the
database, bounded in size. The clock is mocked: nothing sleeps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session, sessionmaker

from journal.models import LoginThrottle
from journal.services.throttle import Policy, Throttle, account_key, address_key


class Clock:
    """A clock that moves only when told."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def fail(throttle: Throttle, session: Session, name: str, address: str) -> float:
    """One attempt with a wrong password: claimed, never refunded."""
    wait = throttle.claim(session, name, address)
    session.commit()
    return wait


def rows(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(LoginThrottle)) or 0


def test_delay_is_exponential_and_capped() -> None:
    policy = Policy(free=5, base_s=1.0, cap_s=60.0)
    assert [policy.delay(n).total_seconds() for n in (0, 4, 5, 6, 7, 10, 11, 50)] == [
        0,
        0,
        1,
        2,
        4,
        32,
        60,
        60,
    ]


def test_address_keys_group_ipv6_by_64() -> None:
    assert address_key("2001:db8:1:2::1") == address_key("2001:db8:1:2:ffff:ffff:ffff:ffff")
    assert address_key("2001:db8:1:2::1") == "addr:2001:db8:1:2::/64"
    assert address_key("2001:db8:1:3::1") != address_key("2001:db8:1:2::1")
    assert address_key("::ffff:198.51.100.7") == address_key("198.51.100.7") == "addr:198.51.100.7"
    assert address_key("fe80::1%eth0") == "addr:fe80::/64"
    assert address_key(None) == address_key("not an address") == "addr:unknown"
    assert account_key(" Alice ") == account_key("alice")


def test_many_addresses_hammering_one_account_are_delayed(session: Session) -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    assert [fail(throttle, session, "bob", f"198.51.100.{i}") for i in range(5)] == [0.0] * 5
    assert fail(throttle, session, "bob", "198.51.100.200") == 1.0  # a fresh address waits too
    waits = []
    for i in range(30):
        wait = throttle.wait_seconds(session, "bob", f"203.0.113.{i}")
        waits.append(wait)
        clock.advance(wait)
        assert fail(throttle, session, "bob", f"203.0.113.{i}") == 0.0
    assert waits[:4] == [1.0, 2.0, 4.0, 8.0] and max(waits) == 60.0  # doubling, capped
    assert throttle.wait_seconds(session, "carol", "203.0.113.1") == 0.0  # other accounts are free


def test_a_waiting_attempt_is_refused_and_not_counted(session: Session) -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(5):
        fail(throttle, session, "bob", "198.51.100.1")
    for _ in range(20):  # tries during the delay change nothing
        assert fail(throttle, session, "bob", "198.51.100.2") > 0
    clock.advance(1)
    assert throttle.claim(session, "bob", "192.0.2.1") == 0.0
    assert session.get(LoginThrottle, account_key("bob")).failures == 6  # type: ignore[union-attr]


def test_a_hostile_address_cannot_keep_the_real_user_out(session: Session) -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(40):  # as fast as the delays allow
        clock.advance(throttle.wait_seconds(session, "bob", "203.0.113.66"))
        fail(throttle, session, "bob", "203.0.113.66")
    wait = throttle.wait_seconds(session, "bob", "192.0.2.10")
    assert 0 < wait <= 60  # a delay, never a lock-out
    clock.advance(wait)
    assert throttle.claim(session, "bob", "192.0.2.10") == 0.0  # the real user's try goes through
    throttle.succeeded(session, "bob", "192.0.2.10")  # ... and the right password signs in
    session.commit()
    assert throttle.wait_seconds(session, "bob", "192.0.2.10") == 0.0
    # the hostile network keeps its count: its next failure, on any name, waits the full cap again
    assert fail(throttle, session, "carol", "203.0.113.66") == 0.0
    assert throttle.wait_seconds(session, "dave", "203.0.113.66") == 60.0
    assert throttle.wait_seconds(session, "dave", "192.0.2.10") == 0.0


def test_one_network_is_throttled_across_names(session: Session) -> None:
    throttle = Throttle(clock=Clock())
    for i in range(20):  # every /64 of one IPv6 client, a new name each time
        assert fail(throttle, session, f"user{i}", f"2001:db8:1:2::{i + 1:x}") == 0.0
    assert fail(throttle, session, "someone", "2001:db8:1:2:abcd::1") > 0
    assert fail(throttle, session, "someone", "2001:db8:1:3::1") == 0.0  # the next /64 is not


def test_idle_failures_are_forgotten(session: Session) -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(5):
        fail(throttle, session, "bob", "198.51.100.1")
    clock.advance(16 * 60)
    assert fail(throttle, session, "bob", "198.51.100.1") == 0.0
    assert session.get(LoginThrottle, account_key("bob")).failures == 1  # type: ignore[union-attr]


def test_two_processes_share_the_state(session_factory: sessionmaker[Session]) -> None:
    from journal import db

    clock = Clock()
    first, second = Throttle(clock=clock), Throttle(clock=clock)
    other_engine = db.make_engine(str(session_factory.kw["bind"].url))
    other = db.make_session_factory(other_engine)
    with session_factory() as one, other() as two:
        for i in range(5):
            fail(first if i % 2 else second, one if i % 2 else two, "bob", f"198.51.100.{i}")
        assert second.wait_seconds(two, "bob", "192.0.2.1") == 1.0
        assert first.wait_seconds(one, "bob", "192.0.2.1") == 1.0
    other_engine.dispose()


def test_an_attempt_is_counted_before_the_password_is_checked(
    session_factory: sessionmaker[Session],
) -> None:
    # Two requests arrive together on the last free try: only one may go on to the password check.
    clock = Clock()
    throttle = Throttle(clock=clock)
    with session_factory() as s:
        for _ in range(4):
            fail(throttle, s, "bob", "198.51.100.1")
    with session_factory() as one, session_factory() as two:
        assert throttle.claim(one, "bob", "198.51.100.1") == 0.0
        one.commit()
        assert throttle.claim(two, "bob", "198.51.100.2") > 0


def test_table_stays_bounded_after_100k_distinct_keys(session: Session) -> None:
    clock = Clock()
    throttle = Throttle(clock=clock)
    for _ in range(8):
        clock.advance(throttle.wait_seconds(session, "bob", "192.0.2.1"))
        fail(throttle, session, "bob", "192.0.2.1")
    hot = session.get(LoginThrottle, account_key("bob"))
    assert hot is not None and hot.failures == 8
    now = clock()
    # 100k fresh keys (names and IPv6 networks an attacker made up), each with one failure
    batch = [
        {
            "key": f"addr:2001:db8:{i >> 16:x}:{i & 0xFFFF:x}::/64",
            "failures": 1,
            "last_at": now,
            "next_at": now,
        }
        for i in range(100_000)
    ]
    session.execute(insert(LoginThrottle), batch)
    session.commit()
    fail(throttle, session, "one-more", "2001:db8:ffff:1::1")  # a new key triggers the prune
    assert rows(session) <= throttle.max_rows
    session.expire_all()
    hot = session.get(LoginThrottle, account_key("bob"))
    assert hot is not None and hot.failures == 8  # the flood did not wipe the attacked account


def test_keys_added_one_by_one_stay_bounded(session: Session) -> None:
    clock = Clock()
    throttle = Throttle(clock=clock, max_rows=100)
    for i in range(400):
        clock.advance(0.5)
        fail(throttle, session, f"name{i}", f"2001:db8:{i:x}::1")
        assert rows(session) <= 100
