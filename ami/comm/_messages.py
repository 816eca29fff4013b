"""The typed messages of AMI's protocol, their registry, and their checked (de)serialisation.

Every message is a frozen dataclass with a ``TYPE`` and a ``VERSION``; the header carries both,
and :func:`decode` refuses unknown types, other versions, missing or extra fields and fields of
the wrong type before anything uses them.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from ._wire import WireError, pack, unpack

NO_HEARTBEAT = -1


@dataclass(frozen=True, kw_only=True)
class Contribution:
    """Partial accumulator states of one heartbeat, worker -> collector -> collector.

    ``watermark``: the sender will send nothing more for any heartbeat up to it. ``workers``:
    counters of the workers behind the sender, by worker id.
    """

    TYPE: ClassVar[str] = "contribution"
    VERSION: ClassVar[int] = 1
    sender: str
    heartbeat: int
    graph_version: int
    watermark: int
    events: int
    states: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, list[Any]] = field(default_factory=dict)
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    late: int = 0


@dataclass(frozen=True, kw_only=True)
class Progress:
    """Nothing to contribute, but every heartbeat up to ``watermark`` is finished (and alive)."""

    TYPE: ClassVar[str] = "progress"
    VERSION: ClassVar[int] = 1
    sender: str
    watermark: int
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    late: int = 0


@dataclass(frozen=True, kw_only=True)
class Done:
    """The sender's source has ended: it contributes nothing more."""

    TYPE: ClassVar[str] = "done"
    VERSION: ClassVar[int] = 1
    sender: str
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class GraphUpdate:
    """Manager -> workers and collectors: the graph of ``graph_version``, used from heartbeat
    ``apply_from`` on (NO_HEARTBEAT: from the receiver's next heartbeat)."""

    TYPE: ClassVar[str] = "graph"
    VERSION: ClassVar[int] = 1
    graph_version: int
    graph: dict[str, Any]
    apply_from: int = NO_HEARTBEAT
    sources: dict[str, str] = field(default_factory=dict)  # name -> port type


@dataclass(frozen=True, kw_only=True)
class Command:
    """Client -> manager: ``cmd`` with its arguments."""

    TYPE: ClassVar[str] = "command"
    VERSION: ClassVar[int] = 1
    cmd: str
    args: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Reply:
    """Manager -> client: the result of a command, or the reason it was refused."""

    TYPE: ClassVar[str] = "reply"
    VERSION: ClassVar[int] = 1
    ok: bool
    result: Any = None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class ViewUpdate:
    """Global collector -> clients (topic ``view:<name>``): a view's value at a heartbeat.

    ``time`` is the heartbeat's start (event time, seconds); ``events`` the events merged into
    this heartbeat; ``error`` the latest error of the nodes behind the view, if any.
    """

    TYPE: ClassVar[str] = "view"
    VERSION: ClassVar[int] = 1
    view: str
    heartbeat: int
    time: float
    events: int
    graph_version: int
    value: Any = None
    error: str = ""


@dataclass(frozen=True, kw_only=True)
class Status:
    """Global collector -> clients (topic ``status``) and manager: counters of the system."""

    TYPE: ClassVar[str] = "status"
    VERSION: ClassVar[int] = 1
    heartbeat: int
    time: float
    events: int
    published: int
    age: float
    graph_version: int
    workers: dict[str, dict[str, Any]] = field(default_factory=dict)
    late: int = 0
    dropped: int = 0
    mismatched: int = 0
    incomplete: int = 0
    errors: dict[str, list[Any]] = field(default_factory=dict)
    finished: bool = False


Message = Contribution | Progress | Done | GraphUpdate | Command | Reply | ViewUpdate | Status
MESSAGES: dict[str, type[Any]] = {
    cls.TYPE: cls
    for cls in (Contribution, Progress, Done, GraphUpdate, Command, Reply, ViewUpdate, Status)
}


def encode(msg: Any) -> list[Any]:
    """Frames of a message (send with ``copy=False``)."""
    header = {f.name: getattr(msg, f.name) for f in dataclasses.fields(msg)}
    header.update(type=msg.TYPE, version=msg.VERSION)  # no message has fields of these names
    return pack(header)


def decode(frames: Sequence[Any], *, expect: tuple[type[Any], ...] = (),
           max_header: int = 1 << 24) -> Any:
    """The message in ``frames``, checked; WireError saying what is wrong."""
    header = unpack(frames, max_header=max_header)
    kind = header.pop("type", None)
    cls = MESSAGES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise WireError(f"unknown message type {kind!r}")
    if expect and cls not in expect:
        raise WireError(f"unexpected message type {kind!r}")
    version = header.pop("version", None)
    if version != cls.VERSION:
        raise WireError(f"{kind} message version {version!r}, expected {cls.VERSION}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    extra = set(header) - names
    if extra:
        raise WireError(f"{kind} message: unknown field(s) {', '.join(sorted(extra))}")
    for f in dataclasses.fields(cls):
        if f.name not in header:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise WireError(f"{kind} message: field '{f.name}' is missing")
            continue
        if not _conforms(header[f.name], hints[f.name]):
            raise WireError(f"{kind} message: field '{f.name}' has the wrong type "
                            f"({type(header[f.name]).__name__})")
    return cls(**header)


def _conforms(value: Any, hint: Any) -> bool:
    if hint is Any:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_conforms(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if origin is dict:
        key_t, val_t = typing.get_args(hint)
        return isinstance(value, dict) and all(
            _conforms(k, key_t) and _conforms(v, val_t) for k, v in value.items())
    if origin is list:
        (item_t,) = typing.get_args(hint)
        return isinstance(value, list) and all(_conforms(v, item_t) for v in value)
    return isinstance(value, hint)


