"""What one connection's frames do, from ``welcome`` to the last ``leave``.

The socket endpoint calls :meth:`Session.open`, then :meth:`Session.handle` for each
text frame in the order received, then :meth:`Session.close`. A mutation is queued to
the store without waiting for its commit, so the next frames are read meanwhile
(pipelining); pipelined mutations get seqs in send order, and every reply (ack, error,
pong) goes out in the order of the frames that caused it.

A session touches only what :class:`~livespace.ports.Ports` names (the node's store, hub,
service, presence...), not the node as a whole.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from livespace import protocol as p
from livespace import replay
from livespace.auth import AuthError
from livespace.codes import Close, Error, Problem
from livespace.commands import AddNote, CreateContact, DeleteContact, Mutation, UpdateContact
from livespace.connection import Connection
from livespace.deadlines import Deadline
from livespace.hub import Room
from livespace.limits import Abuse, TokenBucket
from livespace.liveness import entry_of
from livespace.outage import is_outage, unavailable
from livespace.protocol import FrameError
from livespace.resume import Replay, Resync, compacted, resume
from livespace.times import now_iso
from livespace.validation import invalid

if TYPE_CHECKING:
    from livespace.ports import Ports
    from livespace.store import Committed

log = logging.getLogger(__name__)

#: Mutations of one connection waiting for their commit; past it, the connection's next
#: frames are not read until one is answered (backpressure, not an error).
MAX_IN_FLIGHT = 64


class _Reply:
    """A reply's place in a connection's reply order; ``frame`` None until known."""

    __slots__ = ("frame",)

    def __init__(self, frame: dict[str, Any] | None = None) -> None:
        self.frame = frame


class Session:
    __slots__ = ("_answer", "_expiry", "_in_flight", "_replies", "abuse", "bucket", "conn",
                 "node", "room")

    def __init__(self, node: Ports, conn: Connection) -> None:
        self.node = node
        self.conn = conn
        now = time.monotonic()
        settings = node.settings
        self.bucket = TokenBucket(settings.rate_limit, now=now)
        self.abuse = Abuse(limit=int(settings.rate_limit * 2), window=5.0)
        self.room: Room | None = None
        self._expiry: Deadline | None = None
        # replies owed, in frame order, from the first unknown (made on first use: an idle
        # connection holds neither this nor the event)
        self._replies: deque[_Reply] | None = None
        self._in_flight = 0
        self._answer: asyncio.Event | None = None

    # ---- open ---------------------------------------------------------------------------

    async def open(self, since: int | None, epoch: str | None = None,
                   compact: bool = False) -> None:
        """Welcome, then the replay from the store (if ``since``), then live events.
        ``epoch`` (with ``since``) is the log incarnation ``since`` belongs to; with
        ``compact`` the replay is compacted (:func:`livespace.replay.compacted_seqs`).

        Nothing awaits between joining the room and queueing ``welcome``, so no frame can
        precede it, and none between it and going live when there is nothing to replay.
        Returns once the welcome is queued; a replay goes on in the background.
        """
        node, conn = self.node, self.conn
        principal, ws = conn.principal, conn.workspace_id
        entry = entry_of(conn, node.settings.node_id)
        node.metrics.opened.inc()
        node.liveness.hold(entry)  # before the join: see livespace.liveness
        joined = await node.presence.join(entry)
        position = None if since is None else await node.store.position(ws)
        seqs = None
        if compact and since is not None and position is not None:
            seqs = await replay.compacted_seqs(node.store, ws, since, position, epoch)
        self.room = room = await node.hub.attach(conn)
        head = room.head
        plan: Replay | Resync | None = None
        if since is not None and position is not None:
            plan = resume(since, delivered=head, oldest=position.oldest, head=position.head,
                          epoch=epoch, current=position.epoch)
        welcome: dict[str, Any] = {
            "type": "welcome",
            "session_id": conn.id,
            "workspace_id": ws,
            "user": {"id": principal.user_id, "email": principal.email,
                     "name": principal.name, "role": conn.role},
            "seq": plan.to_seq if isinstance(plan, Replay) else head,
            "epoch": room.epoch if position is None else position.epoch,
            # who is online from the room's roster (no engine read per join), bounded
            **room.roster.welcome(joined or entry.user(1), first=joined is not None),
            "heartbeat_s": node.settings.heartbeat_s,
        }
        if isinstance(plan, Replay):
            if seqs is not None and position is not None:
                plan = compacted(plan, seqs, position.head)
            welcome["replay"] = plan.to_json()
        elif isinstance(plan, Resync):
            welcome["resync_required"] = True
            welcome["oldest_seq"] = plan.oldest_seq
        conn.send(welcome)
        if not isinstance(plan, Replay):
            conn.last_seq = head
            conn.live = True
        conn.start()
        self._watch_expiry()
        if joined is not None:
            await node.hub.announce(ws, "join", joined, conn.id)
        else:  # another tab: every node's roster counts it
            await node.hub.tabs(ws, principal.user_id, 1)
        if isinstance(plan, Replay):
            node.spawn(self._resume(plan))

    async def _resume(self, plan: Replay) -> None:
        """The replay, then live (:mod:`livespace.replay`). It runs beside the socket's
        reading, so that pings, receipts and mutations are answered meanwhile and a
        client that goes away mid-replay is noticed (its close stops the writer, which
        ends the replay)."""
        assert self.room is not None
        try:
            await replay.run(self.conn, self.node.store, self.room, plan, self.node.metrics)
        except Exception:
            log.exception("replay failed on connection %s", self.conn.id)
            self.conn.close(Close.RESTARTING, "replay failed: reconnect with since")

    # ---- token lifetime -----------------------------------------------------------------

    def _watch_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        exp = self.conn.principal.exp
        if exp is None:
            return
        # one node-wide timer for every connection's token expiry, not one each
        self._expiry = self.node.deadlines.add(
            exp + self.node.settings.jwt_leeway,
            functools.partial(self.conn.close, Close.TOKEN_EXPIRED, "token expired"))

    # ---- frames -------------------------------------------------------------------------

    async def handle(self, raw: str | bytes, *, binary: bool = False) -> None:
        """One WebSocket message: each frame in it is rate limited, then handled in order.

        Every frame (a batch's included, an invalid one too) takes a token from the
        connection's bucket and the user's; a frame over the limit is answered with
        ``rate_limited`` and ``retry_after`` and not processed. Sustained refusals close
        the connection with 4008.
        """
        conn = self.conn
        conn.session.messages_in += 1
        items: list[p.Frame | FrameError]
        if binary:
            items = [FrameError(Problem(Error.INVALID_MESSAGE, "send UTF-8 JSON text frames"))]
        else:
            items = p.parse(raw, batch=conn.batch)
        if not (len(items) == 1 and isinstance(items[0], p.Frame)
                and isinstance(items[0].body, p.Ping)):
            conn.dirty = True  # a lone ping is a keep-alive: its counts wait for the next write
        for item in items:
            if conn.close_code is not None:
                return  # closing: the rest is not processed
            wait = await self._admit()
            if wait:
                self._reply(p.error_frame(Problem(
                    Error.RATE_LIMITED, "too many messages: retry later",
                    retry_after=round(wait, 3)), item.ref))
                continue
            if isinstance(item, FrameError):
                self._reply(p.error_frame(item, item.ref))
                continue
            try:
                await self._dispatch(item)
            except Problem as problem:
                self._reply(p.error_frame(problem, item.ref))
            except Exception as err:
                if is_outage(err):
                    self._reply(p.error_frame(unavailable(), item.ref))
                    continue
                log.exception("frame %s failed on connection %s", item.type, conn.id)
                self._reply(p.error_frame(Problem(Error.INTERNAL, "internal error"), item.ref))

    async def _admit(self) -> float:
        """0.0 when a frame may be handled now, else the seconds to wait; closes with 4008
        when the refusals are sustained."""
        now = time.monotonic()
        wait = self.bucket.take(now)
        if not wait:
            wait = await self.node.limits.take("user", self.conn.user_id, now)
        if wait and self.abuse.refuse(now):
            log.info("connection %s of user %s abused the rate limit: closing with 4008",
                     self.conn.id, self.conn.user_id)
            self.conn.close(Close.POLICY, "rate limit abused")
        return wait

    async def _dispatch(self, frame: p.Frame) -> None:
        body, conn, node = frame.body, self.conn, self.node
        ws = conn.workspace_id
        if isinstance(body, p.Ping):
            if self._replies:
                self._reply(p.pong_frame(frame.ref))
            else:
                self.conn.send(p.pong_frame(frame.ref), keepalive=True)
        elif isinstance(body, CreateContact | UpdateContact | DeleteContact | AddNote):
            await self._submit(frame.ref, body)
        elif isinstance(body, p.Typing):
            await self._typing(body.contact_id, body.is_typing)
        elif isinstance(body, p.PresenceUpdate):
            node.liveness.note(conn.id, body.status, body.viewing, body.viewing_given,
                               body.call)
            user = await node.presence.update(ws, conn.id, body.status, body.viewing,
                                              body.viewing_given, body.call)
            if user is not None:
                await node.hub.announce(ws, "update", user, conn.id)
            if frame.ref is not None:
                self._reply(p.ack_frame(frame.ref))
        elif isinstance(body, p.Broadcast):
            if not getattr(node.broker, "connected", True):
                raise unavailable("the broker")
            out = {"type": "broadcast", "event": body.event, "payload": body.payload,
                   "user_id": conn.user_id}
            if body.to is None:
                await node.hub.publish(ws, out, "" if body.echo else conn.id)
            else:  # only to that member's connections, on every node
                await node.hub.direct(ws, body.to, out, "" if body.echo else conn.id)
            if frame.ref is not None:
                self._reply(p.ack_frame(frame.ref))
        elif isinstance(body, p.Ack):
            await self._receipt(body.seq, frame.ref)
        elif isinstance(body, p.Refresh):
            await self._refresh(body.token, frame.ref)

    # ---- replies in frame order ---------------------------------------------------------

    async def _submit(self, ref: str | None, mutation: Mutation) -> None:
        """Queue a mutation to the store and return: its ack or error is sent in its turn
        when the store answers. With :data:`MAX_IN_FLIGHT` unanswered, wait first."""
        conn = self.conn
        while self._in_flight >= MAX_IN_FLIGHT:
            if self._answer is None:
                self._answer = asyncio.Event()
            self._answer.clear()
            await self._answer.wait()
        if conn.close_code is not None:
            return  # closed while waiting: not processed
        future = self.node.service.submit(conn.workspace_id, conn.principal, mutation, ref,
                                          conn.role)
        reply = _Reply()
        if self._replies is None:
            self._replies = deque()
        self._replies.append(reply)
        self._in_flight += 1
        future.add_done_callback(functools.partial(self._answered, reply, ref))

    def _answered(self, reply: _Reply, ref: str | None,
                  future: asyncio.Future[Committed]) -> None:
        self._in_flight -= 1
        if self._answer is not None:
            self._answer.set()
        error = None if future.cancelled() else future.exception()
        if error is not None and is_outage(error):  # nothing applied: retry the same ref
            reply.frame = p.error_frame(unavailable(), ref)
        elif future.cancelled() or not (error is None or isinstance(error, Problem)):
            # the store logged it, once for its whole batch
            reply.frame = p.error_frame(Problem(Error.INTERNAL, "internal error"), ref)
        elif isinstance(error, Problem):
            reply.frame = p.error_frame(error, ref)
        else:
            committed = future.result()
            reply.frame = p.ack_frame(ref, committed.seq, committed.entity)
        replies, conn = self._replies, self.conn
        assert replies is not None
        while replies and (ready := replies[0].frame) is not None:
            replies.popleft()
            conn.send(ready)

    def _reply(self, frame: dict[str, Any]) -> None:
        """Send ``frame`` after the replies still owed for earlier frames."""
        if self._replies:
            self._replies.append(_Reply(frame))
        else:
            self.conn.send(frame)

    async def _typing(self, contact_id: str, is_typing: bool) -> None:
        conn, hub = self.conn, self.node.hub
        handle = conn.typing.pop(contact_id, None)
        if handle is not None:
            handle.cancel()
        if is_typing:
            conn.typing[contact_id] = asyncio.get_running_loop().call_later(
                self.node.settings.typing_timeout_s, self._typing_expired, contact_id
            )
        frame = {"type": "typing", "user_id": conn.user_id, "contact_id": contact_id,
                 "is_typing": is_typing}
        await hub.publish(conn.workspace_id, frame, conn.id)

    def _typing_expired(self, contact_id: str) -> None:
        self.conn.typing.pop(contact_id, None)
        self.node.spawn(self._typing(contact_id, False))

    async def _receipt(self, seq: int, ref: str | None) -> None:
        """A delivery receipt: the user's cursor and this session's acked count advance."""
        conn = self.conn
        top = min(seq, conn.last_seq)
        if conn.first_seq and top > conn.acked_seq:
            low = max(conn.acked_seq, conn.first_seq - 1)
            if top > low:
                conn.session.events_acked += top - low
                conn.dirty = True
            conn.acked_seq = top
        stored = await self.node.store.advance_cursor(conn.workspace_id, conn.user_id, seq)
        if ref is not None:
            self._reply(p.ack_frame(ref, data={"cursor": stored}))

    async def _refresh(self, token: str, ref: str | None) -> None:
        conn = self.conn
        try:
            principal = await self.node.verifier.verify(token)
        except AuthError as err:
            raise invalid("token", f"refresh refused: {err}") from None
        if principal.user_id != conn.user_id:
            raise Problem(Error.FORBIDDEN, "a refresh token must be for the same user")
        conn.principal = principal
        self._watch_expiry()
        self._reply(p.ack_frame(ref, data={"exp": principal.exp}))

    # ---- close --------------------------------------------------------------------------

    async def close(self) -> None:
        node, conn = self.node, self.conn
        if self._expiry is not None:
            self._expiry.cancel()
        typing = list(conn.typing)
        await conn.stop()
        await node.hub.detach(conn)
        for contact_id in typing:
            await self._typing(contact_id, False)
        for handle in conn.typing.values():
            handle.cancel()
        conn.typing.clear()
        node.liveness.release(conn.id)  # before the leave: see livespace.liveness
        left = await node.presence.leave(conn.workspace_id, conn.id)
        if left is not None:
            await node.hub.announce(conn.workspace_id, "leave", left)
        else:
            await node.hub.tabs(conn.workspace_id, conn.user_id, -1)
        node.metrics.connection_closed(conn)
        conn.session.disconnected_at = now_iso()
        await node.save_session(conn)
