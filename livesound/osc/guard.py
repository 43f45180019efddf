"""What keeps a hostile network from hurting the show through the OSC port.

The OSC server asks these small, clock-driven tables before it acts:

- ``HostBuckets``: a message rate limit per source *host* (IP), however many
  sockets the host opens;
- ``ReplyBudget``: how many bytes an unknown host may be sent (replies,
  pushes, meters), so a request with a forged source address cannot turn
  the engine into an amplifier aimed at someone else;
- ``PairingGate``: wrong pairing codes counted across every address, so
  guesses spread over many addresses close pairing for everyone a while;
- ``LogThrottle``: refusals are logged, but a flood never floods the log.

Every method takes ``now`` (seconds) from the caller, so tests drive them
without waiting. None of them locks: they live on the network loop's thread.
"""

import logging
from collections import deque
from dataclasses import dataclass

# Message rate limit per host: messages/s and burst.
HOST_RATE, HOST_BURST = 2000.0, 500.0
# Hosts the show lists as engineers (and this machine) get this many times more.
ENGINEER_RATE_FACTOR = 10.0
# Hosts tracked one by one; beyond this, new hosts share one bucket.
MAX_HOSTS = 4096

# An unknown host may be sent UNKNOWN_RATIO times the bytes it sent plus
# UNKNOWN_BYTES_PER_S, holding at most UNKNOWN_BYTES_MAX unspent.
UNKNOWN_RATIO = 4
UNKNOWN_BYTES_PER_S = 2048.0
UNKNOWN_BYTES_MAX = 8192.0

# Wrong pairing codes (from all addresses together) that close pairing, the
# window they are counted in, and how long pairing then stays closed.
PAIR_WRONG_LIMIT = 20
PAIR_WINDOW_S = 60.0
PAIR_CLOSED_S = 60.0


@dataclass
class TokenBucket:
    """``rate`` tokens a second, holding at most ``burst``."""

    rate: float
    burst: float
    tokens: float = 0.0
    stamp: float = 0.0
    warned: float = 0.0  # when the host was last told it is being limited

    def refill(self, now: float) -> None:
        # A clock stepped backwards (NTP) must not lock the client out.
        elapsed = max(0.0, now - self.stamp)
        self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
        self.stamp = now

    def take(self, now: float, amount: float = 1.0) -> bool:
        """Spend ``amount`` tokens if there are that many."""
        self.refill(now)
        if self.tokens >= amount:
            self.tokens -= amount
            return True
        return False

    def full(self, now: float) -> bool:
        """Whether the bucket would be full by ``now`` (forgetting it is free)."""
        return self.tokens + max(0.0, now - self.stamp) * self.rate >= self.burst


class _Table:
    """Token buckets by host, bounded: idle (full) buckets are forgotten
    first; when every one is in use, new hosts share one overflow bucket, so
    a flood of forged addresses can neither grow memory nor reset anyone's
    limit."""

    OVERFLOW = "*"

    def __init__(self, max_hosts: int) -> None:
        self.max_hosts = max_hosts
        self.buckets: dict[str, TokenBucket] = {}

    def get(self, host: str, now: float, new: TokenBucket) -> TokenBucket:
        bucket = self.buckets.get(host)
        if bucket is not None:
            return bucket
        if len(self.buckets) >= self.max_hosts:
            for idle in [h for h, b in self.buckets.items() if b.full(now)]:
                del self.buckets[idle]
        if len(self.buckets) >= self.max_hosts:
            host = self.OVERFLOW
            if host in self.buckets:
                return self.buckets[host]
        self.buckets[host] = new
        return new


class HostBuckets:
    """The per-host message rate limit."""

    def __init__(self, rate: float = HOST_RATE, burst: float = HOST_BURST,
                 max_hosts: int = MAX_HOSTS) -> None:  # fmt: skip
        self.rate, self.burst = rate, burst
        self.table = _Table(max_hosts)

    def bucket(self, host: str, now: float, factor: float = 1.0) -> TokenBucket:
        """The bucket of ``host`` (``factor`` times the limit for an engineer)."""
        rate, burst = self.rate * factor, self.burst * factor
        b = self.table.get(host, now, TokenBucket(rate, burst, burst, now))
        if b.rate != rate:  # the host's role changed (it paired)
            b.refill(now)
            b.rate, b.burst = rate, burst
        return b


class ReplyBudget:
    """Bytes an unknown host may still be sent.

    Each datagram from the host earns ``ratio`` times its size; the budget
    also grows by ``per_s`` bytes a second up to ``most``. A new host starts
    with one second's worth, enough for any single reply.
    """

    def __init__(self, ratio: float = UNKNOWN_RATIO, per_s: float = UNKNOWN_BYTES_PER_S,
                 most: float = UNKNOWN_BYTES_MAX, max_hosts: int = MAX_HOSTS) -> None:  # fmt: skip
        self.ratio, self.per_s, self.most = ratio, per_s, most
        self.table = _Table(max_hosts)

    def _bucket(self, host: str, now: float) -> TokenBucket:
        return self.table.get(
            host, now, TokenBucket(self.per_s, self.most, self.per_s, now)
        )

    def earn(self, host: str, size: int, now: float) -> None:
        """``host`` sent us ``size`` bytes."""
        b = self._bucket(host, now)
        b.refill(now)
        b.tokens = min(self.most, b.tokens + self.ratio * size)

    def spend(self, host: str, size: int, now: float) -> bool:
        """Whether ``size`` more bytes may go to ``host`` (and count them)."""
        return self._bucket(host, now).take(now, size)


class PairingGate:
    """Wrong pairing codes from every address together: ``limit`` of them in
    ``window`` seconds close pairing for ``closed_s`` seconds. Spreading
    guesses over many source addresses gains nothing."""

    def __init__(self, limit: int = PAIR_WRONG_LIMIT, window: float = PAIR_WINDOW_S,
                 closed_s: float = PAIR_CLOSED_S) -> None:  # fmt: skip
        self.limit, self.window, self.closed_s = limit, window, closed_s
        self.wrong: deque[float] = deque()
        self.closed_until = 0.0
        self.closures = 0

    def _forget(self, now: float) -> None:
        while self.wrong and self.wrong[0] <= now - self.window:
            self.wrong.popleft()

    def closed_for(self, now: float) -> float:
        """Seconds until pairing opens again (0 when open)."""
        return max(0.0, self.closed_until - now)

    def failed(self, now: float) -> bool:
        """Count a wrong code; True if it closed pairing."""
        self._forget(now)
        self.wrong.append(now)
        if len(self.wrong) < self.limit:
            return False
        self.wrong.clear()
        self.closed_until = now + self.closed_s
        self.closures += 1
        return True

    def report(self, now: float) -> dict:
        """For ``/ls/stats``: open or closed (and for how long), recent wrong codes."""
        self._forget(now)
        closed = self.closed_for(now)
        return {"open": closed == 0.0, "closed_for_s": round(closed, 1),
                "wrong_codes": len(self.wrong), "closures": self.closures}  # fmt: skip


class LogThrottle:
    """At most one line a second per key and ``per_s`` lines a second in all;
    the next line that is let through says how many were left out."""

    def __init__(self, logger: logging.Logger, per_s: int = 5) -> None:
        self.logger, self.per_s = logger, per_s
        self.last: dict[object, float] = {}
        self.window = (0.0, 0)  # (second, lines logged in it)
        self.skipped = 0

    def warning(self, key: object, now: float, text: str, *args: object) -> None:
        second, lines = self.window
        if int(now) != second:
            second, lines = int(now), 0
        if now - self.last.get(key, -1.0) < 1.0 or lines >= self.per_s:
            self.skipped += 1
            return
        if len(self.last) > MAX_HOSTS:
            self.last.clear()
        self.last[key] = now
        self.window = (second, lines + 1)
        if self.skipped:
            text += " (%d similar lines left out)"
            args = (*args, self.skipped)
            self.skipped = 0
        self.logger.warning(text, *args)
