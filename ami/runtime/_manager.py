"""The manager: owns the graph, validates it against the announced sources, hands it to the
workers and collectors (at a heartbeat boundary), and answers clients' commands.

Every command is checked (name, argument names, types and sizes) before it is used; a refused
command gets a Reply with ``ok=False`` and a message saying why.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq

from ami.comm import (
    NO_HEARTBEAT,
    Command,
    GraphUpdate,
    Reply,
    Security,
    Status,
    StopFlag,
    WireError,
    bound,
    connected,
    decode,
    encode,
    recv,
    send,
)
from ami.graph import Graph, GraphError, Node, validate
from ami.ops import ParamError, default_registry

from ._results import STATUS_TOPIC

MAX_COMMAND_BYTES = 1 << 20
MAX_TEXT = 4096
MAX_SOURCES = 10_000


@dataclass
class ManagerConfig:
    """The manager's endpoints (it binds ``command`` and ``graph``; it reads ``results``)."""

    command: str
    graph: str
    results: str
    hz: float = 10.0
    graph_file: str | None = None
    graph_dir: str = "."
    security: Security = field(default_factory=Security)


class CommandError(ValueError):
    """A command refused: the text goes back to the client."""


def _arg(args: dict[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in args:
        raise CommandError(f"missing argument '{name}'")
    value = args[name]
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise CommandError(f"argument '{name}' has the wrong type ({type(value).__name__})")
    if isinstance(value, str) and len(value) > MAX_TEXT:
        raise CommandError(f"argument '{name}' is longer than {MAX_TEXT} characters")
    return value


class ManagerState:
    """The manager's data and command handlers, without sockets (tested directly)."""

    def __init__(self, cfg: ManagerConfig, clock: Callable[[], float] = time.monotonic) -> None:
        self.cfg = cfg
        self.clock = clock
        self.graph = Graph()
        self.version = 0
        self.apply_from = NO_HEARTBEAT
        self.sources: dict[str, dict[str, Any]] = {}
        self.members: dict[str, dict[str, Any]] = {}
        self.status: Status | None = None
        self.registry = default_registry()
        self.changed = False
        self.handlers: dict[str, tuple[frozenset[str], Callable[[dict[str, Any]], Any]]] = {
            "hello": (frozenset({"name", "role"}), self.hello),
            "announce": (frozenset({"name", "sources"}), self.announce),
            "get_sources": (frozenset(), lambda a: self.sources),
            "get_graph": (frozenset(), lambda a: self.graph_reply()),
            "set_graph": (frozenset({"graph"}), self.set_graph),
            "add_node": (frozenset({"node"}), self.add_node),
            "update_node": (frozenset({"node"}), self.update_node),
            "remove_node": (frozenset({"name"}), self.remove_node),
            "set_view": (frozenset({"name", "ref"}), self.set_view),
            "remove_view": (frozenset({"name"}), self.remove_view),
            "list_views": (frozenset(), lambda a: dict(self.graph.views)),
            "list_ops": (frozenset(), lambda a: self.list_ops()),
            "save_graph": (frozenset({"file"}), self.save_graph),
            "load_graph": (frozenset({"file"}), self.load_graph),
            "status": (frozenset(), lambda a: self.status_reply()),
        }

    def handle(self, cmd: Command) -> Reply:
        entry = self.handlers.get(cmd.cmd)
        if entry is None:
            return Reply(ok=False, error=f"unknown command '{cmd.cmd[:64]}' (known: "
                         f"{', '.join(sorted(self.handlers))})")
        allowed, fn = entry
        extra = set(cmd.args) - allowed
        if extra:
            return Reply(ok=False, error=f"{cmd.cmd}: unknown argument(s) "
                         f"{', '.join(sorted(map(str, extra)))[:200]}")
        try:
            return Reply(ok=True, result=fn(cmd.args))
        except (CommandError, GraphError, ParamError, OSError) as exc:
            return Reply(ok=False, error=f"{cmd.cmd}: {exc}")

    # -- members and sources -----------------------------------------------------------------
    def hello(self, args: dict[str, Any]) -> Any:
        name, role = _arg(args, "name", str), _arg(args, "role", str)
        self.members[name] = {"role": role, "since": self.clock()}
        return self.graph_reply()

    def announce(self, args: dict[str, Any]) -> Any:
        _arg(args, "name", str)
        sources = _arg(args, "sources", dict)
        if len(sources) > MAX_SOURCES:
            raise CommandError(f"more than {MAX_SOURCES} sources")
        for name, info in sources.items():
            if not (isinstance(name, str) and isinstance(info, dict)
                    and isinstance(info.get("type"), str)):
                raise CommandError(f"source {str(name)[:80]!r} is malformed")
        new = {n: i for n, i in sources.items() if n not in self.sources}
        self.sources.update(sources)
        if new and self.version:
            self.changed = True  # collectors need the source types to plan the graph
        return {"known": len(self.sources)}

    def source_types(self) -> dict[str, str]:
        return {n: str(i["type"]) for n, i in self.sources.items()}

    # -- graph -------------------------------------------------------------------------------
    def graph_reply(self) -> dict[str, Any]:
        return {"graph": self.graph.to_dict(), "version": self.version,
                "sources": self.source_types()}

    def update(self) -> GraphUpdate:
        return GraphUpdate(graph_version=self.version, graph=self.graph.to_dict(),
                           apply_from=self.apply_from, sources=self.source_types())

    def _install(self, graph: Graph) -> dict[str, Any]:
        if self.sources:
            validate(graph, self.source_types(), self.registry)
        else:  # nothing announced yet: check what can be checked without sources
            for node in graph.nodes:
                self.registry.get(node.op).check(node.params)
        self.graph = graph
        self.version += 1
        last = self.status.heartbeat if self.status is not None else -1
        margin = max(2, int(self.cfg.hz * 0.3))
        self.apply_from = last + margin if last >= 0 else NO_HEARTBEAT
        self.changed = True
        return {"version": self.version, "apply_from": self.apply_from}

    def set_graph(self, args: dict[str, Any]) -> Any:
        return self._install(Graph.from_dict(_arg(args, "graph", dict)))

    def add_node(self, args: dict[str, Any]) -> Any:
        node = Node.from_dict(_arg(args, "node", dict))
        if node.name in self.graph.names():
            raise CommandError(f"a node named '{node.name}' exists already (use update_node)")
        return self._install(self.graph.with_node(node))

    def update_node(self, args: dict[str, Any]) -> Any:
        node = Node.from_dict(_arg(args, "node", dict))
        if node.name not in self.graph.names():
            raise CommandError(f"there is no node named '{node.name}' (use add_node)")
        return self._install(self.graph.with_node(node))

    def remove_node(self, args: dict[str, Any]) -> Any:
        return self._install(self.graph.without_node(_arg(args, "name", str)))

    def set_view(self, args: dict[str, Any]) -> Any:
        views = {**self.graph.views, _arg(args, "name", str): _arg(args, "ref", str)}
        return self._install(Graph(self.graph.nodes, views))

    def remove_view(self, args: dict[str, Any]) -> Any:
        name = _arg(args, "name", str)
        if name not in self.graph.views:
            raise CommandError(f"there is no view named '{name}'")
        views = {v: r for v, r in self.graph.views.items() if v != name}
        return self._install(Graph(self.graph.nodes, views))

    def _path(self, args: dict[str, Any]) -> Path:
        name = _arg(args, "file", str)
        if "/" in name or "\\" in name or name.startswith(".") or not name.endswith(".json"):
            raise CommandError("give a plain file name ending in .json (graphs are kept in "
                               "the manager's graph folder)")
        return Path(self.cfg.graph_dir) / name

    def save_graph(self, args: dict[str, Any]) -> Any:
        path = self._path(args)
        self.graph.save(path)
        return {"file": str(path)}

    def load_graph(self, args: dict[str, Any]) -> Any:
        return self._install(Graph.load(self._path(args)))

    def list_ops(self) -> list[dict[str, Any]]:
        return [{"name": s.name, "category": s.category, "kind": s.kind, "doc": s.doc,
                 "inputs": [[p.name, p.type] for p in s.inputs],
                 "outputs": [[p.name, p.type] for p in s.outputs],
                 "params": [p.name for p in s.params]} for s in self.registry.all()]

    def status_reply(self) -> dict[str, Any]:
        out: dict[str, Any] = {"graph_version": self.version, "sources": len(self.sources),
                               "members": sorted(self.members)}
        if self.status is not None:
            s = self.status
            out.update(heartbeat=s.heartbeat, published=s.published, age=s.age,
                       events=s.events, workers=s.workers, late=s.late, dropped=s.dropped,
                       incomplete=s.incomplete, mismatched=s.mismatched, errors=s.errors,
                       finished=s.finished,
                       missing=sorted(w for w, c in s.workers.items()
                                      if c.get("state") == "missing"))
        return out


def run_manager(cfg: ManagerConfig, stop: StopFlag | None = None) -> int:
    """Serve commands until stopped."""
    stop = stop or StopFlag()
    state = ManagerState(cfg)
    if cfg.graph_file:
        state.graph = Graph.load(cfg.graph_file)
        state.version = 1
    ctx = zmq.Context()
    auth = cfg.security.authenticator(ctx)
    router = bound(ctx, zmq.ROUTER, cfg.command, cfg.security)
    pub = bound(ctx, zmq.PUB, cfg.graph, cfg.security)
    sub = connected(ctx, zmq.SUB, cfg.results, cfg.security)
    sub.subscribe(STATUS_TOPIC)
    poller = zmq.Poller()
    poller.register(router, zmq.POLLIN)
    poller.register(sub, zmq.POLLIN)
    last_publish = 0.0
    try:
        while not stop.is_set():
            for sock, _ in poller.poll(timeout=50):
                if sock is sub:
                    with contextlib.suppress(WireError):
                        state.status = recv(sub, topic=True, expect=(Status,))
                    continue
                frames = router.recv_multipart(copy=False)
                identity, body = frames[0], frames[1:]
                try:
                    if sum(len(f.buffer) for f in body) > MAX_COMMAND_BYTES:
                        raise WireError(f"command larger than {MAX_COMMAND_BYTES} bytes")
                    reply = state.handle(recv_frames(body))
                    if state.changed and state.version:  # before the reply: see announce
                        state.changed = False
                        last_publish = time.monotonic()
                        send(pub, state.update(), topic=b"graph")
                except WireError as exc:
                    reply = Reply(ok=False, error=f"malformed command: {exc}")
                except Exception as exc:
                    reply = Reply(ok=False, error=f"command failed: {type(exc).__name__}: {exc}")
                router.send_multipart([identity.bytes, *encode(reply)], copy=False)
            now = time.monotonic()
            if state.changed or now - last_publish > 1.0:  # republish for late subscribers
                state.changed = False
                last_publish = now
                if state.version:
                    send(pub, state.update(), topic=b"graph")
    finally:
        for s in (router, pub, sub):
            s.close()
        if auth is not None:
            auth.stop()
        ctx.term()
    return 0


def recv_frames(body: list[Any]) -> Command:
    """The command in a client's frames (checked)."""
    msg = decode([f.buffer for f in body], expect=(Command,), max_header=MAX_COMMAND_BYTES)
    assert isinstance(msg, Command)
    return msg
