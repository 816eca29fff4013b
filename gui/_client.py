"""The GUI's connection to a running AMI: one I/O thread owns every socket (a DEALER to the
manager, a SUB to the global collector), so nothing on the network ever blocks the UI thread.

View updates are not queued to the UI: the thread keeps only the latest message of each view
(and the latest status) and counts the ones it superseded; the UI takes them at its own pace
(:meth:`AmiClient.take`). Commands go through a bounded queue and their replies come back as a
Qt signal. The manager is polled (``status``) to tell whether it is there; a silent manager
marks the connection lost, the socket is remade and polling goes on until it answers again.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import zmq
from PyQt5.QtCore import QObject, pyqtSignal

from ami.comm import Command, Reply, Security, Status, ViewUpdate, WireError, connected, recv
from ami.comm import send as zsend

Callback = Callable[[bool, Any, str], None]
MAX_PENDING = 256
_STATUS_TOPIC = b"status"


@dataclass(frozen=True)
class ClientConfig:
    """Where the manager and the results are, and how patient to be (seconds)."""

    command: str = "tcp://127.0.0.1:5560"
    results: str = "tcp://127.0.0.1:5562"
    security: Security = field(default_factory=Security)
    timeout: float = 2.0
    poll: float = 0.5
    sources_every: float = 2.0


@dataclass
class Statistics:
    """What the client received and dropped (superseded before the UI took it)."""

    received: int = 0
    superseded: int = 0
    malformed: int = 0
    requests: int = 0
    timeouts: int = 0
    refused_full: int = 0


@dataclass
class _Request:
    rid: int
    cmd: str
    args: dict[str, Any]
    internal: bool = False


class AmiClient(QObject):
    """A connection to AMI for the GUI. Construction does no I/O; :meth:`start` starts the I/O
    thread and :meth:`stop` ends it (both from the UI thread)."""

    connected_changed = pyqtSignal(bool)
    sources_changed = pyqtSignal(dict)
    graph_changed = pyqtSignal(dict, int)
    manager_status = pyqtSignal(dict)
    _replied = pyqtSignal(int, bool, object, str)

    def __init__(self, config: ClientConfig | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.config = config or ClientConfig()
        self.stats = Statistics()
        self.connected = False
        self.sources: dict[str, dict[str, Any]] = {}
        self.graph: dict[str, Any] = {}
        self.graph_version = -1
        self._ids = itertools.count(1)
        self._callbacks: dict[int, Callback] = {}
        self._requests: queue.Queue[_Request] = queue.Queue(maxsize=MAX_PENDING)
        self._lock = threading.Lock()
        self._views: dict[str, ViewUpdate] = {}
        self._status: Status | None = None
        self._status_time = 0.0
        self._wanted: set[str] | None = set()
        self._subs_dirty = threading.Event()
        self._subs_dirty.set()  # subscribe to the status topic at once, views or not
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._replied.connect(self._on_reply)

    # -- UI side -----------------------------------------------------------------------------
    def start(self) -> None:
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="ami-gui-io", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None

    def request(self, cmd: str, callback: Callback | None = None, **args: Any) -> int:
        """Queue a manager command; ``callback(ok, result, error)`` runs in the UI thread."""
        rid = next(self._ids)
        if callback is not None:
            self._callbacks[rid] = callback
        try:
            self._requests.put_nowait(_Request(rid, cmd, args))
        except queue.Full:
            self.stats.refused_full += 1
            self._callbacks.pop(rid, None)
            if callback is not None:
                callback(False, None, "too many commands waiting for the manager")
        return rid

    def subscribe(self, views: set[str] | None) -> None:
        """Receive these views (None: every view)."""
        with self._lock:
            self._wanted = None if views is None else set(views)
            for name in [v for v in self._views if views is not None and v not in views]:
                del self._views[name]
        self._subs_dirty.set()

    def take(self) -> tuple[dict[str, ViewUpdate], Status | None]:
        """The latest update of each view and the latest status since the last call."""
        with self._lock:
            views, self._views = self._views, {}
            status, self._status = self._status, None
        return views, status

    def status_age(self) -> float:
        """Seconds since the last status message from the collector (inf if none)."""
        return time.monotonic() - self._status_time if self._status_time else float("inf")

    def _on_reply(self, rid: int, ok: bool, result: object, error: str) -> None:
        cb = self._callbacks.pop(rid, None)
        if cb is not None:
            cb(ok, result, error)

    # -- I/O thread --------------------------------------------------------------------------
    def _run(self) -> None:
        cfg = self.config
        ctx: zmq.Context[Any] = zmq.Context()
        sub = ctx.socket(zmq.SUB)
        sub.linger = 0
        sub.rcvhwm = 64
        sub.reconnect_ivl = 100
        if cfg.results.startswith("tcp://"):
            cfg.security.client(sub)
        sub.connect(cfg.results)
        subscribed: set[bytes] = set()
        dealer = connected(ctx, zmq.DEALER, cfg.command, cfg.security, hwm=16)
        pending: _Request | None = None
        sent_at = 0.0
        last_poll = last_sources = -1e9
        poller = zmq.Poller()
        poller.register(sub, zmq.POLLIN)
        poller.register(dealer, zmq.POLLIN)
        try:
            while not self._stop.is_set():
                if self._subs_dirty.is_set():
                    self._subs_dirty.clear()
                    subscribed = self._resubscribe(sub, subscribed)
                now = time.monotonic()
                if pending is None:
                    pending = self._next_request(now, last_poll, last_sources)
                    if pending is not None:
                        if pending.cmd == "status":
                            last_poll = now
                        elif pending.cmd == "get_sources":
                            last_sources = now
                        zsend(dealer, Command(cmd=pending.cmd, args=pending.args))
                        self.stats.requests += 1
                        sent_at = now
                ready = dict(poller.poll(20))
                if sub in ready:
                    self._drain(sub)
                if dealer in ready and pending is not None:
                    try:
                        reply = recv(dealer, expect=(Reply,))
                    except WireError as exc:
                        reply = Reply(ok=False, error=f"malformed reply: {exc}")
                    self._answered(pending, reply)
                    pending = None
                elif pending is not None and time.monotonic() - sent_at > cfg.timeout:
                    self.stats.timeouts += 1
                    self._lost(pending)
                    pending = None
                    poller.unregister(dealer)
                    dealer.close()
                    dealer = connected(ctx, zmq.DEALER, cfg.command, cfg.security, hwm=16)
                    poller.register(dealer, zmq.POLLIN)
        finally:
            sub.close()
            dealer.close()
            ctx.term()
            self._fail_queued("the client stopped")

    def _resubscribe(self, sub: zmq.Socket[Any], current: set[bytes]) -> set[bytes]:
        with self._lock:
            wanted = self._wanted
        topics = {b"view:"} if wanted is None else {f"view:{v}".encode() for v in wanted}
        topics.add(_STATUS_TOPIC)
        for t in current - topics:
            sub.unsubscribe(t)
        for t in topics - current:
            sub.subscribe(t)
        return topics

    def _next_request(self, now: float, last_poll: float, last_sources: float) -> _Request | None:
        try:
            return self._requests.get_nowait()
        except queue.Empty:
            pass
        if now - last_sources >= self.config.sources_every and self.connected:
            return _Request(0, "get_sources", {}, internal=True)
        if now - last_poll >= self.config.poll:
            return _Request(0, "status", {}, internal=True)
        return None

    def _drain(self, sub: zmq.Socket[Any]) -> None:
        for _ in range(1000):
            try:
                msg = recv(sub, topic=True, expect=(ViewUpdate, Status))
            except zmq.Again:
                return
            except WireError:
                self.stats.malformed += 1
            else:
                self.stats.received += 1
                with self._lock:
                    if isinstance(msg, Status):
                        self._status = msg
                        self._status_time = time.monotonic()
                    elif self._wanted is None or msg.view in self._wanted:
                        if msg.view in self._views:
                            self.stats.superseded += 1
                        self._views[msg.view] = msg
            if not sub.poll(0):
                return

    def _answered(self, req: _Request, reply: Reply) -> None:
        if not self.connected:
            self.connected = True
            self.connected_changed.emit(True)
            self._queue_internal("get_sources")
        if not req.internal:
            self._replied.emit(req.rid, reply.ok, reply.result, reply.error)
            if reply.ok and req.cmd in ("set_graph", "add_node", "update_node", "remove_node",
                                        "set_view", "remove_view", "load_graph"):
                self._queue_internal("get_graph")
            return
        if not reply.ok:
            return
        result = reply.result
        if req.cmd == "status" and isinstance(result, dict):
            self.manager_status.emit(result)
            if result.get("graph_version") != self.graph_version:
                self._queue_internal("get_graph")
        elif req.cmd == "get_graph" and isinstance(result, dict):
            self.graph_version = int(result.get("version", 0))
            self.graph = dict(result.get("graph", {}))
            self.graph_changed.emit(self.graph, self.graph_version)
        elif req.cmd == "get_sources" and isinstance(result, dict) and result != self.sources:
            self.sources = result
            self.sources_changed.emit(result)

    def _queue_internal(self, cmd: str) -> None:
        try:
            self._requests.put_nowait(_Request(0, cmd, {}, internal=True))
        except queue.Full:
            self.stats.refused_full += 1

    def _lost(self, req: _Request) -> None:
        if not req.internal:
            self._replied.emit(req.rid, False, None,
                               f"no answer from the manager at {self.config.command}")
        if self.connected:
            self.connected = False
            self.graph_version = -1
            self.connected_changed.emit(False)

    def _fail_queued(self, why: str) -> None:
        while True:
            try:
                req = self._requests.get_nowait()
            except queue.Empty:
                return
            if not req.internal:
                self._replied.emit(req.rid, False, None, why)
