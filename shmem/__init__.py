"""Shared-memory monitoring: a ring of XTC2 dgrams fed by the event builder, read zero-copy.

The server (``ShmemServer``) owns one segment per tag and is the event builder's sink:
``put(dgram)`` never blocks. Clients attach by tag in ``shared`` or ``distributed`` groups and
read ``daq.xtc.Dgram`` views straight out of the segment. See docs/shmem.md.
"""

from ._cache import TransitionCache
from ._client import Batch, Message, ShmemClient, attach, status
from ._errors import (
    AttachRefusedError,
    ServerGoneError,
    ServerNotFoundError,
    ShmemError,
    TagInUseError,
)
from ._layout import validate_tag
from ._replay import ReplaySource, replay
from ._server import ShmemServer

__all__ = [
    "AttachRefusedError",
    "Batch",
    "Message",
    "ReplaySource",
    "ServerGoneError",
    "ServerNotFoundError",
    "ShmemClient",
    "ShmemError",
    "ShmemServer",
    "TagInUseError",
    "TransitionCache",
    "attach",
    "replay",
    "status",
    "validate_tag",
]
