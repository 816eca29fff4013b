"""An event builder process: joins its multicast group, reassembles fragments, builds events
and hands them, in time order, to its sinks (the recorder, and the shared-memory ring when the
partition asks for monitoring). It acknowledges every transition to the control process."""

from __future__ import annotations

import logging
import signal
import socket
import time
from collections.abc import Callable
from typing import Any

import zmq

from daq.config import PartitionConfig
from daq.eb import BufferPool, Built, BuiltBatch, EventBuilder
from daq.net import (
    FLAG_BATCH,
    FLAG_TIMING,
    FragmentError,
    Reassembly,
    parse,
    parse_batch,
    receiver,
    socket_drops,
)
from daq.record import Recorder, RecordingError, Sink
from daq.xtc import Dgram, TransitionId, XtcError

from ._link import ControlLink

log = logging.getLogger("daq.eb")
MAX_REASSEMBLIES = 256


class BuilderProcess:
    def __init__(self, cfg: PartitionConfig, index: int, *, record: bool = True,
                 sinks: list[Sink] | None = None, monitor: bool = False) -> None:
        self.cfg = cfg
        self.index = index
        self.monitor = monitor
        self.role = "meb" if monitor else "eb"
        builder_id = cfg.builders + index if monitor else index
        self.pool = BufferPool()
        self.eb = EventBuilder(builder_id, cfg.group_members(), timeout=cfg.eb_timeout,
                               transition_timeout=cfg.eb_transition_timeout, pool=self.pool)
        self.sinks: list[Sink] = list(sinks or [])
        self.recorder: Recorder | None = None
        if record and cfg.recording.enabled and not monitor:
            self.recorder = Recorder(cfg.data_root, cfg.experiment, index,
                                     chunk_bytes=cfg.recording.chunk_bytes,
                                     inline_limit=cfg.recording.inline_limit,
                                     direct=cfg.recording.direct_io)
            self.sinks.insert(0, self.recorder)
        self.epoch = -1
        self.stop = False
        self.partial: dict[tuple[int, int], Reassembly] = {}
        self.c = {"datagrams": 0, "bytes": 0, "bad_datagrams": 0, "checksum_errors": 0,
                  "foreign_datagrams": 0,
                  "stale_epoch": 0, "fragment_dups": 0, "reassembly_dropped": 0,
                  "built_bytes": 0, "sink_errors": 0}
        self.sockets: list[socket.socket] = []

    def run(self) -> int:
        net = self.cfg.network
        groups = range(self.cfg.builders) if self.monitor else [self.index]
        sockets = self.sockets
        for g in groups:
            rx, effective = receiver(net.builder_group(g), net.builder_port, net.interface,
                                     net.rcvbuf)
            sockets.append(rx)
            log.info("%s %d on %s:%d, receive buffer %d bytes", self.role, self.index,
                     net.builder_group(g), net.builder_port, effective)
        link = ControlLink(self.cfg.control, self.role, self.index)
        ctl = link.open()
        self._open_sinks()
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        poller = zmq.Poller()
        poller.register(ctl, zmq.POLLIN)
        for rx in sockets:
            poller.register(rx, zmq.POLLIN)
        buf = bytearray(1 << 16)
        mv = memoryview(buf)
        last_status = last_flush = 0.0
        try:
            while not self.stop:
                ready = dict(poller.poll(20))
                if ctl in ready:
                    kind, body = link.recv()
                    if kind == "cmd" and body.get("cmd") == "exit":
                        break
                    if kind == "cmd" and body.get("cmd") == "expect":
                        self.on_expect(body, link)
                for k, rx in enumerate(sockets):
                    if rx.fileno() not in ready:
                        continue
                    for _ in range(256):
                        try:
                            n = rx.recv_into(buf, 0, socket.MSG_DONTWAIT)
                        except BlockingIOError:
                            break
                        # a monitor hears every transition once per group: keep group 0's
                        if k and buf[5] != TransitionId.L1Accept:
                            continue
                        self.on_datagram(mv, n, link)
                self.deliver(self.eb.poll(), link)
                now = time.monotonic()
                if now - last_flush > 0.2:
                    last_flush = now
                    self._flush(link)
                if now - last_status > 0.5:
                    last_status = now
                    link.send("status", self.status())
        finally:
            for rx in sockets:
                rx.close()
            for sink in self.sinks:
                try:
                    sink.close(complete=False)
                except Exception:
                    log.exception("closing a sink failed")
            link.send("status", self.status())
            link.close()
        return 0

    def _open_sinks(self) -> None:
        for sink in self.sinks:
            opener = getattr(sink, "open", None)
            if opener is not None:
                opener()

    def _flush(self, link: ControlLink) -> None:
        if self.recorder is not None:
            try:
                self.recorder.flush()
            except RecordingError as exc:
                self.c["sink_errors"] += 1
                link.send("error", {"role": "eb", "id": self.index, "message": str(exc)})

    def status(self) -> dict[str, Any]:
        per_socket = [socket_drops(s) for s in self.sockets if s.fileno() >= 0]
        drops = sum(per_socket) if per_socket and min(per_socket) >= 0 else -1
        return {"role": self.role, "id": self.index, **self.c, **self.eb.counters.asdict(),
                "depth": self.eb.depth, "partial": len(self.partial),
                "kernel_drops": drops,
                "run": self.recorder.run if self.recorder else None,
                "disk_wait": round(self.recorder.disk_wait, 3) if self.recorder else 0.0,
                "recording_error": self.recorder.failed if self.recorder else None}

    def on_expect(self, body: dict[str, Any], link: ControlLink) -> None:
        """A transition announced by control: record it even if no datagram of it arrives."""
        try:
            tid, key = int(body["transition"]), int(body["pulse_id"])
            sec, ns, epoch = int(body["seconds"]), int(body["nanoseconds"]), int(body["epoch"])
        except (KeyError, TypeError, ValueError):
            self.c["bad_datagrams"] += 1
            return
        if epoch < self.epoch:
            return
        if epoch > self.epoch:
            self.epoch = epoch
            self.eb.reset()
            self.partial.clear()
        self.deliver(self.eb.expect(key, tid, sec, ns), link)

    def on_datagram(self, mv: memoryview, n: int, link: ControlLink) -> None:
        c = self.c
        c["datagrams"] += 1
        c["bytes"] += n
        try:
            head = parse(mv, n)
        except FragmentError as exc:
            c["checksum_errors" if exc.reason == "checksum" else
              "foreign_datagrams" if exc.reason == "foreign" else "bad_datagrams"] += 1
            return
        if head.partition != self.cfg.partition or head.flags & FLAG_TIMING:
            c["foreign_datagrams"] += 1
            return
        if head.epoch < self.epoch:
            c["stale_epoch"] += 1
            return
        if head.transition == TransitionId.Configure and head.epoch > self.epoch:
            self.epoch = head.epoch
            self.eb.reset()
            self.partial.clear()
        elif head.epoch > self.epoch:
            self.epoch = head.epoch  # joined mid-configuration (builder restarted)
        if head.flags & FLAG_BATCH:
            self.on_batch(head.node, bytes(mv[40:n]), link)
            return
        if head.count == 1:
            data: bytes | bytearray | memoryview = bytes(mv[40:n])
        else:
            key = (head.node, head.pulse_id)
            part = self.partial.get(key)
            if part is None:
                if len(self.partial) >= MAX_REASSEMBLIES:
                    oldest = min(self.partial, key=lambda k: k[1])
                    del self.partial[oldest]
                    c["reassembly_dropped"] += 1
                part = self.partial[key] = Reassembly(head.total, head.count,
                                                      self.pool.get(head.total))
            try:
                done = part.add(head, mv, n)
            except FragmentError as exc:
                c["fragment_dups" if exc.reason == "duplicate" else "bad_datagrams"] += 1
                return
            if not done:
                return
            del self.partial[key]
            data = part.buf
        try:
            dgram = Dgram(data, source=f"node {head.node}")
        except XtcError:
            c["bad_datagrams"] += 1
            return
        if dgram.service != head.transition:
            c["bad_datagrams"] += 1
            return
        self.deliver(self.eb.add(head.node, head.pulse_id, dgram), link)

    def on_batch(self, node: int, payload: bytes, link: ControlLink) -> None:
        try:
            pids, rows = parse_batch(payload)
        except FragmentError:
            self.c["bad_datagrams"] += 1
            return
        self.deliver(self.eb.add_batch(node, pids, rows), link)

    def _put(self, sink: Sink, put: Callable[[Any], None], arg: Any) -> str | None:
        """Run one sink's ``put(arg)``; a failure is counted and returned as the message."""
        try:
            put(arg)
        except RecordingError as exc:
            self.c["sink_errors"] += 1
            return str(exc)
        except Exception as exc:
            self.c["sink_errors"] += 1
            log.exception("sink failed")
            return f"{type(sink).__name__}: {exc}"
        return None

    def deliver_rows(self, batch: BuiltBatch, link: ControlLink) -> None:
        """A batch of complete L1Accepts: each sink takes the rows at once if it can."""
        self.c["built_bytes"] += batch.data.nbytes
        for sink in self.sinks:
            put_rows = getattr(sink, "put_rows", None)
            if put_rows is not None:
                error = self._put(sink, put_rows, batch.data)
            else:
                error = self._put(sink, _put_each(sink), batch)
            if error is not None:
                link.send("error", {"role": self.role, "id": self.index, "message": error})

    def deliver(self, events: list[Built], link: ControlLink) -> None:
        for ev in events:
            if isinstance(ev, BuiltBatch):
                self.deliver_rows(ev, link)
                continue
            dg = ev.dgram()
            self.c["built_bytes"] += dg.size
            error = None
            for sink in self.sinks:
                error = self._put(sink, sink.put, dg) or error
            if ev.service != TransitionId.L1Accept and not self.monitor:
                if ev.service != TransitionId.SlowUpdate:
                    link.send("status", self.status())
                    link.send("ack", {"role": "eb", "id": self.index, "transition": ev.service,
                                      "missing": list(ev.missing), "error": error,
                                      "run": self.recorder.run if self.recorder else None})
            elif error is not None:
                link.send("error", {"role": self.role, "id": self.index, "message": error})
            del dg
            ev.release()  # every sink has copied it


def _put_each(sink: Sink) -> Callable[[BuiltBatch], None]:
    """A sink without ``put_rows`` takes a batch one dgram at a time."""
    def put(batch: BuiltBatch) -> None:
        for dg in batch.dgrams():
            sink.put(dg)
    return put


class ShmemSink:
    """The shared-memory ring as an event-builder sink (``[monitor] tag`` in the config)."""

    def __init__(self, cfg: PartitionConfig) -> None:
        from shmem import ShmemServer

        assert cfg.monitor_tag is not None
        self.server = ShmemServer(cfg.monitor_tag, n_buffers=cfg.monitor_buffers,
                                  buffer_size=cfg.monitor_buffer_size)

    def open(self) -> None:
        self.server.open()

    def put(self, dgram: Dgram) -> None:
        self.server.put(dgram)  # never blocks: a full ring drops and counts

    def close(self, complete: bool = False) -> None:
        self.server.close()


def main(cfg: PartitionConfig, index: int, record: bool = True, monitor: bool = False) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s eb %(message)s")
    sinks: list[Sink] = [ShmemSink(cfg)] if monitor else []
    return BuilderProcess(cfg, index, record=record, sinks=sinks, monitor=monitor).run()
