"""AMI's protocol: typed messages (msgpack header + raw array frames, never pickle) and the
ZMQ helpers every AMI process uses.

Messages: :class:`Contribution`, :class:`Progress`, :class:`Done` (workers and collectors),
:class:`GraphUpdate` (manager), :class:`Command` / :class:`Reply` (clients and the manager),
:class:`ViewUpdate` and :class:`Status` (published results).
"""

from ._messages import (
    MESSAGES,
    NO_HEARTBEAT,
    Command,
    Contribution,
    Done,
    GraphUpdate,
    Message,
    Progress,
    Reply,
    Status,
    ViewUpdate,
    decode,
    encode,
)
from ._net import StopFlag, bound, connected, recv, send
from ._security import Security, check_bind, is_local, make_keys
from ._wire import WireError, pack, unpack

__all__ = [
    "MESSAGES",
    "NO_HEARTBEAT",
    "Command",
    "Contribution",
    "Done",
    "GraphUpdate",
    "Message",
    "Progress",
    "Reply",
    "Security",
    "Status",
    "StopFlag",
    "ViewUpdate",
    "WireError",
    "bound",
    "check_bind",
    "connected",
    "decode",
    "encode",
    "is_local",
    "make_keys",
    "pack",
    "recv",
    "send",
    "unpack",
]
