"""What a workspace's analytics read: delivery receipts, sessions and their figures."""

from __future__ import annotations

from typing import Any

from livespace.store.db import Db
from livespace.store.model import SessionRow
from livespace.store.rows import SESSION_SELECT, json_text, session_of
from livespace.times import normalised, now_iso

#: At most this many rows from :meth:`Analytics.sessions`.
SESSIONS_LIMIT = 1000
#: ``$2`` NULL means "every user"; the CAST lets PostgreSQL type a lone NULL.
USER_FILTER = "(CAST($2 AS TEXT) IS NULL OR user_id = $2)"


SESSION_UPSERT = (
    "INSERT INTO sessions (id, workspace_id, user_id, node, connected_at,"
    " disconnected_at, messages_in, messages_out, events_delivered, events_acked,"
    " close_code, extra) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
    " ON CONFLICT (id) DO UPDATE SET workspace_id = excluded.workspace_id,"
    " user_id = excluded.user_id, node = excluded.node,"
    " connected_at = excluded.connected_at, disconnected_at = excluded.disconnected_at,"
    " messages_in = excluded.messages_in, messages_out = excluded.messages_out,"
    " events_delivered = excluded.events_delivered,"
    " events_acked = excluded.events_acked, close_code = excluded.close_code,"
    " extra = excluded.extra"
)


def _session_args(s: SessionRow) -> tuple[Any, ...]:
    return (s.id, s.workspace_id, s.user_id, s.node, s.connected_at, s.disconnected_at,
            s.messages_in, s.messages_out, s.events_delivered, s.events_acked, s.close_code,
            json_text(s.extra))


class Analytics:
    """The part of :class:`~livespace.store.sql.SqlStore` for receipts and sessions."""

    db: Db

    # ---- delivery receipts and sessions --------------------------------------------------------

    async def advance_cursor(self, workspace_id: str, user_id: str, seq: int) -> int:
        """Store max(stored, seq), seq clamped to [0, head_seq]; return what is stored."""
        async with self.db.transaction() as tx:
            head = await tx.fetchval("SELECT head_seq FROM workspaces WHERE id = $1", workspace_id)
            target = max(0, min(seq, int(head or 0)))
            stored = await tx.fetchval(
                "INSERT INTO delivery_cursors (workspace_id, user_id, seq, updated_at)"
                " VALUES ($1, $2, $3, $4) ON CONFLICT (workspace_id, user_id) DO UPDATE SET"
                " seq = CASE WHEN excluded.seq > delivery_cursors.seq THEN excluded.seq"
                " ELSE delivery_cursors.seq END, updated_at = excluded.updated_at"
                " RETURNING seq",
                workspace_id, user_id, target, now_iso(),
            )
        return int(stored)

    async def cursor(self, workspace_id: str, user_id: str) -> int:
        seq = await self.db.fetchval(
            "SELECT seq FROM delivery_cursors WHERE workspace_id = $1 AND user_id = $2",
            workspace_id, user_id,
        )
        return 0 if seq is None else int(seq)

    async def save_session(self, session: SessionRow) -> None:
        """Insert or overwrite the whole row of ``session.id``."""
        await self.save_sessions([session])

    async def save_sessions(self, sessions: list[SessionRow]) -> None:
        """:meth:`save_session` for many, in one transaction (the node's periodic flush)."""
        if not sessions:
            return
        async with self.db.transaction() as tx:
            await tx.executemany(SESSION_UPSERT, [_session_args(s) for s in sessions])



    async def sessions(
        self, workspace_id: str, *, active: bool | None, user_id: str | None = None
    ) -> list[SessionRow]:
        """Newest first; ``active`` True: open only, False: closed only, None: both."""
        state = {None: 0, True: 1, False: 2}[active]
        rows = await self.db.fetchall(
            SESSION_SELECT + " WHERE workspace_id = $1 AND " + USER_FILTER
            + " AND ($3 = 0 OR ($3 = 1 AND disconnected_at IS NULL)"
            " OR ($3 = 2 AND disconnected_at IS NOT NULL))"
            " ORDER BY connected_at DESC, id DESC LIMIT $4",
            workspace_id, user_id, state, SESSIONS_LIMIT,
        )
        return [session_of(r) for r in rows]

    async def delete_sessions_before(self, cutoff_iso: str) -> int:
        """Delete closed sessions that ended before the cutoff; open ones stay."""
        return await self.db.execute(
            "DELETE FROM sessions WHERE disconnected_at IS NOT NULL AND disconnected_at < $1",
            normalised(cutoff_iso),
        )

    async def stats(self, workspace_id: str, *, user_id: str | None = None) -> dict[str, Any]:
        """Analytics of one workspace; with ``user_id`` the session figures (sessions,
        messages, delivery) are that user's. Event figures cover the retained log."""
        db = self.db
        by_type = await db.fetchall(
            "SELECT type, count(*) AS n FROM events WHERE workspace_id = $1"
            " GROUP BY type ORDER BY type",
            workspace_id,
        )
        by_day = await db.fetchall(
            "SELECT day, type, count FROM message_stats WHERE workspace_id = $1"
            " ORDER BY day, type",
            workspace_id,
        )
        users = await db.fetchall(
            "SELECT actor_id, count(*) AS n FROM events WHERE workspace_id = $1"
            " GROUP BY actor_id ORDER BY n DESC, actor_id LIMIT 10",
            workspace_id,
        )
        s = await db.fetchone(
            "SELECT count(*) AS total,"
            " sum(CASE WHEN disconnected_at IS NULL THEN 1 ELSE 0 END) AS active,"
            " sum(messages_in) AS m_in, sum(messages_out) AS m_out,"
            " sum(events_delivered) AS delivered, sum(events_acked) AS acked"
            " FROM sessions WHERE workspace_id = $1 AND " + USER_FILTER,
            workspace_id, user_id,
        )
        avg = await db.fetchval(
            "SELECT avg(duration_s) FROM session_durations WHERE workspace_id = $1 AND "
            + USER_FILTER,
            workspace_id, user_id,
        )
        assert s is not None  # an aggregate always has a row

        def n(value: Any) -> int:
            return 0 if value is None else int(value)

        delivered, acked = n(s["delivered"]), n(s["acked"])
        return {
            "events_by_type": {r["type"]: int(r["n"]) for r in by_type},
            "events_by_day": [
                {"day": r["day"], "type": r["type"], "count": int(r["count"])} for r in by_day
            ],
            "sessions": {
                "total": n(s["total"]),
                "active": n(s["active"]),
                "average_duration_s": None if avg is None else round(float(avg), 3),
            },
            "messages": {"in": n(s["m_in"]), "out": n(s["m_out"])},
            "most_active_users": [
                {"user_id": r["actor_id"], "events": int(r["n"])} for r in users
            ],
            "delivery": {
                "delivered": delivered,
                "acked": acked,
                "rate": acked / delivered if delivered else None,
            },
        }
