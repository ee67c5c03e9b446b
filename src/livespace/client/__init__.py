"""Python clients of livespace.

- :func:`connect` (:mod:`livespace.client.sdk`): the SDK, a workspace kept live
  (snapshot then live, reconnects, offline mutation queue, token refresh);
- :class:`Client` (:mod:`livespace.client.lowlevel`): one raw socket, frames in and out,
  what the tests drive the server with.
"""

from livespace.client.events import Events
from livespace.client.lowlevel import DURABLE, Client, Refused
from livespace.client.sdk import LivespaceClient, connect
from livespace.client.snapshot import LivespaceError

__all__ = ["DURABLE", "Client", "Events", "LivespaceClient", "LivespaceError", "Refused",
           "connect"]
