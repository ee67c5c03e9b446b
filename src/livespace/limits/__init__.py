"""Rate limits (pure: the caller passes the clock); :mod:`livespace.limits.cluster`
counts the per-user ones for the whole cluster in Redis."""

from __future__ import annotations


class TokenBucket:
    """``rate`` tokens per second, bursts up to ``burst`` (default: one second's worth)."""

    __slots__ = ("burst", "rate", "stamp", "tokens")

    def __init__(self, rate: float, burst: float | None = None, now: float = 0.0) -> None:
        self.rate = rate
        self.burst = burst if burst is not None else max(rate, 1.0)
        self.tokens = self.burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; 0.0 when allowed, else the seconds to wait before retrying."""
        elapsed = now - self.stamp
        if elapsed > 0:
            self.tokens = min(self.burst, self.tokens + elapsed * self.rate)
            self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class Abuse:
    """Counts refused frames; ``sustained`` once more than ``limit`` were refused within
    ``window`` seconds - the connection is then closed with 4008."""

    __slots__ = ("limit", "refused", "since", "window")

    def __init__(self, limit: int, window: float) -> None:
        self.limit = limit
        self.window = window
        self.refused = 0
        self.since = 0.0

    def refuse(self, now: float) -> bool:
        """Record one refused frame; True when the abuse is sustained."""
        if now - self.since > self.window:
            self.since = now
            self.refused = 0
        self.refused += 1
        return self.refused > self.limit


class KeyedBuckets:
    """One :class:`TokenBucket` per key (user id), forgetting keys idle for a minute.

    Bounded: at most ``max_keys`` buckets; the idle ones are swept when it fills up.
    """

    def __init__(self, rate: float, burst: float | None = None, max_keys: int = 100_000) -> None:
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[str, TokenBucket] = {}

    def waiting(self, key: str, now: float) -> float:
        """Seconds until ``key`` has a token again (0.0: it has one); takes nothing."""
        bucket = self._buckets.get(key)
        if bucket is None:
            return 0.0
        tokens = min(bucket.burst, bucket.tokens + max(0.0, now - bucket.stamp) * bucket.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / bucket.rate

    def take(self, key: str, now: float, cost: float = 1.0) -> float:
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._sweep(now)
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, now)
        return bucket.take(now, cost)

    def _sweep(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if now - b.stamp > 60.0]
        for key in idle or list(self._buckets)[: self.max_keys // 10]:
            del self._buckets[key]


class Admission:
    """Open connections per user and per workspace, capped.

    A connection is counted from the moment it is admitted, before its handshake awaits
    anything, until it ends: handshakes racing each other cannot overshoot a cap.
    """

    __slots__ = ("_users", "_workspaces", "per_user", "per_workspace")

    def __init__(self, per_user: int, per_workspace: int) -> None:
        self.per_user = per_user
        self.per_workspace = per_workspace
        self._users: dict[str, int] = {}
        self._workspaces: dict[str, int] = {}

    def admit(self, user_id: str, workspace_id: str) -> str | None:
        """Count one more connection; None when admitted, else why it was refused."""
        users, workspaces = self._users, self._workspaces
        if users.get(user_id, 0) >= self.per_user:
            return "too many connections for this user"
        if workspaces.get(workspace_id, 0) >= self.per_workspace:
            return "too many connections for this workspace"
        users[user_id] = users.get(user_id, 0) + 1
        workspaces[workspace_id] = workspaces.get(workspace_id, 0) + 1
        return None

    def counts(self) -> tuple[dict[str, int], dict[str, int]]:
        """Open connections now: per user, per workspace (copies)."""
        return dict(self._users), dict(self._workspaces)

    def release(self, user_id: str, workspace_id: str) -> None:
        for counts, key in ((self._users, user_id), (self._workspaces, workspace_id)):
            left = counts.get(key, 0) - 1
            if left > 0:
                counts[key] = left
            else:
                counts.pop(key, None)
