"""The timing master: one process that publishes every shot and transition, in order.

It multicasts, on the timing group, batches of 64-byte shot records (L1Accept) and transition
records (msgpack: time, pulse id, and what control attached: run number, scan values...). Every
slot of the stream has its own counter, pulse id and timestamp, so transitions and shots are
ordered by pulse id everywhere. While enabled it paces itself to the beam rate (or runs unpaced),
emits SlowUpdates at the configured rate, and stops after ``max_events`` shots if asked.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

import msgpack
import zmq

from daq.config import PartitionConfig
from daq.net import FLAG_TIMING, fragments, sender
from daq.timing import TimingSystem
from daq.xtc import TransitionId

from ._link import ControlLink

log = logging.getLogger("daq.timing")
BATCH_SECONDS = 0.002  #: at high rates, shots are sent in batches of this much beam time
MAX_BATCH = 512


class TimingMaster:
    def __init__(self, cfg: PartitionConfig) -> None:
        self.cfg = cfg
        self.system = TimingSystem(cfg.timing)
        self.counter = 0
        self.epoch = 0
        self.enabled = False
        self.max_events: int | None = None
        self.sent_events = 0
        self.enable_events = 0
        self.next_slow = 0.0
        self.stop = False
        self.datagrams = 0

    def run(self) -> int:
        net = self.cfg.network
        sock = sender(net.interface, net.ttl)
        link = ControlLink(self.cfg.control, "timing", 0)
        ctl = link.open()
        self.system.start()
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        poller = zmq.Poller()
        poller.register(ctl, zmq.POLLIN)
        last_status = 0.0
        try:
            while not self.stop:
                timeout = 0 if self.enabled else 200
                for _ in range(8 if self.enabled else 1):
                    if not dict(poller.poll(timeout)):
                        break
                    kind, body = link.recv()
                    if kind == "cmd":
                        self.command(body, sock, link)
                    timeout = 0
                if self.enabled:
                    self.emit_shots(sock, link)
                now = time.monotonic()
                if now - last_status > 0.5:
                    last_status = now
                    link.send("status", self.status())
        finally:
            sock.close()
            link.close()
        return 0

    def status(self) -> dict[str, Any]:
        return {"role": "timing", "id": 0, "enabled": self.enabled, "events": self.sent_events,
                "counter": self.counter, "datagrams": self.datagrams, "epoch": self.epoch}

    def command(self, body: dict[str, Any], sock: Any, link: ControlLink) -> None:
        cmd = body.get("cmd")
        if cmd == "exit":
            self.stop = True
        elif cmd == "transition":
            tid = int(body["transition"])
            if tid == TransitionId.Configure:
                self.epoch += 1
            if tid == TransitionId.Disable:
                self.enabled = False
            shot = self.send_transition(sock, tid, body.get("info", {}))
            if tid == TransitionId.Enable:
                self.enabled = True
                self.max_events = body.get("max_events")
                self.enable_events = 0
                self.next_slow = time.monotonic() + self._slow_period()
            link.send("status", self.status())
            link.send("ack", {"transition": tid, "counter": self.counter,
                              "pulse_id": shot.pulse_id, "seconds": shot.seconds,
                              "nanoseconds": shot.nanoseconds, "epoch": self.epoch})

    def _slow_period(self) -> float:
        hz = self.cfg.slow_update_hz
        return 1.0 / hz if hz > 0 else float("inf")

    def _catch_up(self) -> None:
        """Paced runs: skip the counter to now, so shots resume at wall-clock time after a
        pause instead of bursting to catch up (pulse ids advance as real time does)."""
        if not self.system.unpaced:
            now = int((time.time() - self.system.start_posix) * self.system.beam_rate) + 1
            self.counter = max(self.counter, now)

    def send_transition(self, sock: Any, tid: int, info: dict[str, Any]) -> Any:
        if tid != TransitionId.SlowUpdate:
            self._catch_up()
        shot = self.system.shot(self.counter)
        self.counter += 1
        payload = msgpack.packb({"seconds": shot.seconds, "nanoseconds": shot.nanoseconds,
                                 "pulse_id": shot.pulse_id, "counter": shot.counter,
                                 "info": info}, use_bin_type=True)
        self._send(sock, tid, shot.pulse_id, payload)
        return shot

    def _send(self, sock: Any, tid: int, pulse_id: int, payload: bytes) -> None:
        net = self.cfg.network
        for parts in fragments(payload, fragment_size=net.fragment_size, transition=tid,
                               partition=self.cfg.partition, node=0, pulse_id=pulse_id,
                               epoch=self.epoch, flags=FLAG_TIMING,
                               full_crc=net.checksum == "full"):
            sock.sendmsg(parts, (), 0, (net.timing_group, net.timing_port))
            self.datagrams += 1

    def emit_shots(self, sock: Any, link: ControlLink) -> None:
        system = self.system
        left = None if self.max_events is None else self.max_events - self.enable_events
        if left is not None and left <= 0:
            self.enabled = False
            link.send("status", self.status())
            link.send("done", {"what": "enable", "events": self.enable_events})
            return
        n = 1 if not system.unpaced and system.beam_rate < 1 / BATCH_SECONDS else \
            max(1, min(MAX_BATCH, int(system.beam_rate * BATCH_SECONDS)))
        if system.unpaced:
            n = MAX_BATCH // 4
        if left is not None:
            n = min(n, left)
        records = system.shots(self.counter, n)
        last = records[-1]
        if not system.unpaced:
            shot = system.shot(self.counter + n - 1)
            system.pace(shot)
        self.counter += n
        self.enable_events += n
        self.sent_events += n
        self._send(sock, TransitionId.L1Accept, int(last["pulse_id"]), records.tobytes())
        if time.monotonic() >= self.next_slow:
            self.next_slow += self._slow_period()
            self.send_transition(sock, TransitionId.SlowUpdate, {})


def main(cfg: PartitionConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s timing %(message)s")
    return TimingMaster(cfg).run()
