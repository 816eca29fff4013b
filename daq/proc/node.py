"""A readout node: reads its detectors for each shot of its readout group and sends the
contribution (a Segment-level Parent) by UDP multicast to event builder ``counter % nBuilders``;
transitions go to every builder.

The node joins the timing group, waits for a Configure (so a node restarted mid-run joins at
the next Configure), declares its detectors' Names, and from then on encodes each event with a
fixed-layout template into a reused buffer, the detectors writing their arrays straight into it.
"""

from __future__ import annotations

import logging
import signal
import socket
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import msgpack
import numpy as np
import zmq

from daq.config import NodeConfig, PartitionConfig
from daq.net import (
    FLAG_BATCH,
    FLAG_TIMING,
    FragmentError,
    batch_capacity,
    batch_payload,
    fragments,
    parse,
    receiver,
    sender,
    socket_drops,
)
from daq.sim import Detector, make_detector
from daq.timing import Shot, decode_shots
from daq.xtc import (
    NAMES_ID_STEPINFO,
    Alg,
    DataType,
    DgramTemplate,
    Field,
    Names,
    NamesBlock,
    ParentBlock,
    ShapesDataBlock,
    TransitionId,
    make_dgram,
    segment_src,
)
from daq.xtc._stream import runinfo_names

from ._link import ControlLink

log = logging.getLogger("daq.node")
SLOW_KINDS = {"epics"}  #: read at SlowUpdate, not per shot
PIPELINE_BYTES = 1 << 20  #: contributions this big are read in a thread while the last is sent
WARMUP_SHOT = Shot(pulse_id=1, fiducial=1, seconds=1, nanoseconds=0, counter=0, event_codes=0,
                   readout_groups=1, laser_on=True, xray_on=True, beam_present=True)


class ReadoutNode:
    def __init__(self, cfg: PartitionConfig, node_id: int) -> None:
        self.cfg = cfg
        self.node: NodeConfig = cfg.node(node_id)
        self.node_id = node_id
        self.is_run_node = node_id == min(n.id for n in cfg.nodes)
        self.detectors: list[Detector] = []
        self.slow: list[tuple[Detector, Names]] = []
        self.names: list[Names] = []
        self.fast: list[tuple[Detector, Names, dict[str, np.ndarray]]] = []
        self.template: DgramTemplate | None = None
        self.bound: Any = None
        self.batch_cap = 1  #: contributions per batch datagram (1: no batching)
        # big contributions: two buffers, the next shot read in a thread while one is sent
        self._slots: list[tuple[Any, list[dict[str, np.ndarray]]]] = []
        self._turn = 0
        self._reader: ThreadPoolExecutor | None = None
        self._pending: tuple[Future[None], Any, Shot] | None = None
        self.epoch = -1
        self.configured = False
        self.stop = False
        self.report = False
        self.counters = {"events": 0, "bytes": 0, "transitions": 0, "timing_errors": 0,
                         "skipped_unconfigured": 0, "datagrams": 0}
        self.runinfo = runinfo_names(node_id) if self.is_run_node else None
        self.scan_names: Names | None = None
        if self.is_run_node and cfg.scan is not None:
            self.scan_names = Names.create(
                "scan", "scan", [Field("step", DataType.UINT32),
                                 Field(cfg.scan.variable, DataType.DOUBLE)],
                node_id=node_id, index=NAMES_ID_STEPINFO, alg=Alg.of("raw", 2, 0, 0))

    # -- configure --------------------------------------------------------------------------
    def configure(self) -> None:
        """Build detectors, their Names and the per-shot template (heavy work happens here)."""
        self.detectors = [make_detector(d.kind, d.name, **d.params) for d in self.node.detectors]
        self.names, self.fast, self.slow = [], [], []
        layout_items = []
        for index, det in enumerate(self.detectors):
            names = Names.create(det.det_name, det.det_type, det.xtc_fields(),
                                 node_id=self.node_id, index=index, det_id=det.det_id,
                                 alg=det.alg, segment=det.segment)
            self.names.append(names)
            if det.kind in SLOW_KINDS:
                self.slow.append((det, names))
                continue
            det.prepare()
            shapes = {f.name: tuple(f.shape) for f in det.fields if f.shape}
            layout_items.append((names, shapes))
            self.fast.append((det, names, {}))
        self.template = DgramTemplate(TransitionId.L1Accept,
                                      [(segment_src(self.node_id), layout_items)])
        self.bound = self.template.bind()
        for det, names, views in self.fast:
            for f in det.fields:
                if f.shape:
                    views[f.name] = self.bound.array(names, f.name)
            det.read(WARMUP_SHOT, out=views)  # compile / load kernels now, not on shot one
        self._slots = [(self.bound, [views for _, _, views in self.fast])]
        if self.template.size >= PIPELINE_BYTES:
            other = self.template.bind()
            self._slots.append((other, [{f.name: other.array(names, f.name)
                                         for f in det.fields if f.shape}
                                        for det, names, _ in self.fast]))
            if self._reader is None:
                self._reader = ThreadPoolExecutor(1, thread_name_prefix="read")
        net = self.cfg.network
        self.batch_cap = min(net.batch, batch_capacity(net.fragment_size, self.template.size))
        self.configured = True

    # -- contributions ---------------------------------------------------------------------
    def transition_blocks(self, tid: int, info: dict[str, Any], shot_time: float) -> list:
        blocks: list[Any] = []
        if tid == TransitionId.Configure:
            blocks = [NamesBlock(n) for n in self.names]
            if self.runinfo is not None:
                blocks.append(NamesBlock(self.runinfo))
            if self.scan_names is not None:
                blocks.append(NamesBlock(self.scan_names))
        elif tid == TransitionId.BeginRun and self.runinfo is not None:
            blocks = [ShapesDataBlock(self.runinfo, {"expt": str(info.get("expt", "")),
                                                     "runnum": int(info.get("run", 0))})]
        elif tid == TransitionId.BeginStep and self.scan_names is not None and "step" in info:
            blocks = [ShapesDataBlock(self.scan_names, {
                "step": int(info["step"]), self.scan_names.fields[1].name: float(info["value"])})]
        elif tid == TransitionId.SlowUpdate:
            for det, names in self.slow:
                reading = det.read(shot_time)  # type: ignore[arg-type]  # epics: POSIX time
                blocks.append(ShapesDataBlock(names, reading))
        return blocks

    def send(self, sock: socket.socket, dest: tuple[str, int], tid: int, pulse_id: int,
             payload: Any, flags: int = 0) -> None:
        net = self.cfg.network
        for parts in fragments(payload, fragment_size=net.fragment_size, transition=tid,
                               partition=self.cfg.partition, node=self.node_id,
                               pulse_id=pulse_id, epoch=self.epoch, flags=flags,
                               full_crc=net.checksum == "full"):
            sock.sendmsg(parts, (), 0, dest)
            self.counters["datagrams"] += 1

    def on_transition(self, sock: socket.socket, tid: int, pulse_id: int, epoch: int,
                      body: dict[str, Any]) -> None:
        self.flush_pending(sock)  # events go out before the transition that follows them
        if tid == TransitionId.Configure:
            self.epoch = epoch
            t0 = time.monotonic()
            self.configure()
            log.info("node %d configured %d detectors in %.1f s", self.node_id,
                     len(self.detectors), time.monotonic() - t0)
        elif not self.configured or epoch != self.epoch:
            self.counters["skipped_unconfigured"] += 1
            return
        info = body.get("info", {})
        posix = body["seconds"] + 631152000 + body["nanoseconds"] * 1e-9
        enc = make_dgram(tid, body["seconds"], body["nanoseconds"], [ParentBlock(
            segment_src(self.node_id), self.transition_blocks(tid, info, posix))])
        data = enc.tobytes()
        net = self.cfg.network
        for b in range(self.cfg.builders):
            self.send(sock, (net.builder_group(b), net.builder_port), tid, pulse_id, data)
        self.counters["transitions"] += 1
        self.report = True
        if tid == TransitionId.Unconfigure:
            self.configured = False

    def on_shots(self, sock: socket.socket, shots: np.ndarray) -> None:
        """The shots of one timing datagram (``SHOT_DTYPE`` records): those of this node's
        readout group are read and sent, in batches per builder when several fit a datagram."""
        if not self.configured:
            self.counters["skipped_unconfigured"] += len(shots)
            return
        mine = shots[(shots["readout_groups"] >> self.node.group) & 1 == 1]
        cap = self.batch_cap
        if cap < 2 or len(mine) < 2:
            for rec in mine:
                self.on_shot(sock, Shot.from_record(rec))
            return
        self.flush_pending(sock)  # never read in two threads at once
        nb = self.cfg.builders
        which = mine["counter"] % nb
        for b in range(nb):
            sel = mine[which == b] if nb > 1 else mine
            for k in range(0, len(sel), cap):
                part = sel[k : k + cap]
                if len(part) == 1:
                    self.on_shot(sock, Shot.from_record(part[0]))
                else:
                    self.send_batch(sock, b, part)

    def send_batch(self, sock: socket.socket, builder: int, shots: np.ndarray) -> None:
        """Encode the contributions of ``shots`` column-wise and send them in one datagram."""
        assert self.template is not None
        batch = self.template.bind_batch(len(shots))
        batch.set_times(shots["seconds"], shots["nanoseconds"])
        batch.set_envs(shots["readout_groups"])
        for det, names, _ in self.fast:
            det.read_batch(shots, {f.name: batch.field(names, f.name) for f in det.fields})
        net = self.cfg.network
        pids = shots["pulse_id"]
        payload = b"".join(batch_payload(pids, batch.data))
        self.send(sock, (net.builder_group(builder), net.builder_port), TransitionId.L1Accept,
                  int(pids[0]), payload, FLAG_BATCH)
        self.counters["events"] += len(shots)
        self.counters["bytes"] += batch.data.nbytes

    def on_shot(self, sock: socket.socket, shot: Shot) -> None:
        """Read and send one shot. Big contributions alternate between two buffers: the shot
        is read in a thread (numba releases the GIL) while the previous one is being sent."""
        if len(self._slots) < 2:
            self._fill(self._slots[0], shot)
            self._send_event(sock, self._slots[0][0], shot)
            return
        slot = self._slots[self._turn]
        self._turn ^= 1
        assert self._reader is not None
        future = self._reader.submit(self._fill, slot, shot)
        self.flush_pending(sock)  # the other buffer; this one was sent before it was refilled
        self._pending = (future, slot[0], shot)

    def flush_pending(self, sock: socket.socket) -> None:
        """Send the shot still being read in the thread, if any (before anything else goes)."""
        if self._pending is not None:
            future, bound, shot = self._pending
            self._pending = None
            future.result()
            self._send_event(sock, bound, shot)

    def _fill(self, slot: tuple[Any, list[dict[str, np.ndarray]]], shot: Shot) -> None:
        bound, views_of = slot
        bound.set_time(shot.seconds, shot.nanoseconds)
        bound.set_env(shot.readout_groups)
        for (det, names, _), views in zip(self.fast, views_of, strict=True):
            values = det.read(shot, out=views)
            for name, value in values.items():
                if name not in views:
                    bound.set(names, name, value)

    def _send_event(self, sock: socket.socket, bound: Any, shot: Shot) -> None:
        net = self.cfg.network
        dest = (net.builder_group(shot.counter % self.cfg.builders), net.builder_port)
        self.send(sock, dest, TransitionId.L1Accept, shot.pulse_id, bound.view)
        self.counters["events"] += 1
        self.counters["bytes"] += bound.template.size

    # -- loop -------------------------------------------------------------------------------
    def run(self) -> int:
        net = self.cfg.network
        rx, effective = receiver(net.timing_group, net.timing_port, net.interface, net.rcvbuf)
        tx = sender(net.interface, net.ttl)
        link = ControlLink(self.cfg.control, "node", self.node_id)
        ctl = link.open()
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        poller = zmq.Poller()
        poller.register(ctl, zmq.POLLIN)
        poller.register(rx, zmq.POLLIN)
        buf = bytearray(1 << 16)
        mv = memoryview(buf)
        last_status = 0.0
        log.info("node %d (%s): timing %s:%d, receive buffer %d bytes", self.node_id,
                 self.node.name, net.timing_group, net.timing_port, effective)
        try:
            while not self.stop:
                ready = dict(poller.poll(200))
                if ctl in ready:
                    kind, body = link.recv()
                    if kind == "cmd" and body.get("cmd") == "exit":
                        break
                if rx.fileno() in ready:
                    for _ in range(64):
                        try:
                            n = rx.recv_into(buf, 0, socket.MSG_DONTWAIT)
                        except BlockingIOError:
                            break
                        self.on_datagram(tx, mv, n, link)
                    if self._pending is not None:  # nothing more queued: send the last read
                        try:
                            self.flush_pending(tx)
                        except Exception as exc:
                            self._report(link, exc, "L1Accept")
                now = time.monotonic()
                if now - last_status > 0.5 or self.report:
                    last_status = now
                    self.report = False
                    link.send("status", {"role": "node", "id": self.node_id, **self.counters,
                                         "configured": self.configured,
                                         "kernel_drops": socket_drops(rx)})
        finally:
            if self._reader is not None:
                self._reader.shutdown(wait=True)
            rx.close()
            tx.close()
            link.close()
        return 0

    def on_datagram(self, tx: socket.socket, mv: memoryview, n: int, link: ControlLink) -> None:
        try:
            head = parse(mv, n)
        except FragmentError:
            self.counters["timing_errors"] += 1
            return
        if head.partition != self.cfg.partition or not head.flags & FLAG_TIMING or \
                head.count != 1:
            self.counters["timing_errors"] += 1
            return
        payload = mv[40:n]
        try:
            if head.transition == TransitionId.L1Accept:
                if head.epoch != self.epoch:
                    self.counters["skipped_unconfigured"] += 1
                    return
                try:
                    shots = decode_shots(payload)
                except ValueError:
                    self.counters["timing_errors"] += 1
                    return
                self.on_shots(tx, shots)
            else:
                body = msgpack.unpackb(payload, raw=False)
                self.on_transition(tx, head.transition, head.pulse_id, head.epoch, body)
        except Exception as exc:  # a detector or encoding failure must be reported, not hidden
            self._report(link, exc, TransitionId.name_of(head.transition))

    def _report(self, link: ControlLink, exc: Exception, what: str) -> None:
        log.error("node %d failed on %s", self.node_id, what, exc_info=exc)
        link.send("error", {"role": "node", "id": self.node_id, "message": str(exc)})


def main(cfg: PartitionConfig, node_id: int) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s node %(message)s")
    return ReadoutNode(cfg, node_id).run()
