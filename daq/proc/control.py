"""Run control: one process that sequences the partition's transitions.

Members (timing master, readout nodes, event builders) connect with a DEALER and say hello;
command-line clients send requests (``configure``, ``beginrun``, ``beginstep``, ``enable``,
``disable``, ``endstep``, ``endrun``, ``unconfigure``, ``status``, ``shutdown``). A transition
is sent to the timing master, which multicasts it in order with the shots; the nodes contribute;
the control process replies once every builder has recorded it (or reports who did not).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import time
from pathlib import Path
from typing import Any

import zmq

from daq.config import PartitionConfig
from daq.xtc import TransitionId
from daq.xtc._files import parse_name, xtc_dir

from ._link import pack, unpack

log = logging.getLogger("daq.control")
MEMBER_SILENCE = 3.0  #: a member not heard from for this long is not connected

#: state reached after each transition, and the state each needs before it
STATES = ["reset", "configured", "running", "stepping", "enabled"]
TRANSITIONS: dict[str, tuple[TransitionId, str, str]] = {
    "configure": (TransitionId.Configure, "reset", "configured"),
    "beginrun": (TransitionId.BeginRun, "configured", "running"),
    "beginstep": (TransitionId.BeginStep, "running", "stepping"),
    "enable": (TransitionId.Enable, "stepping", "enabled"),
    "disable": (TransitionId.Disable, "enabled", "stepping"),
    "endstep": (TransitionId.EndStep, "stepping", "running"),
    "endrun": (TransitionId.EndRun, "running", "configured"),
    "unconfigure": (TransitionId.Unconfigure, "configured", "reset"),
}
PATH_TO = {  # how to get from any state to "enabled" and back down, for the CLI helpers
    "up": ["configure", "beginrun", "beginstep", "enable"],
    "down": ["disable", "endstep", "endrun", "unconfigure"],
}


def next_run_number(root: Path, expt: str, floor: int = 0) -> int:
    """One more than the largest run recorded for the experiment (files in any state)."""
    best = floor
    d = xtc_dir(root, expt)
    if d.is_dir():
        for p in list(d.iterdir()) + (list((d / "smalldata").iterdir())
                                      if (d / "smalldata").is_dir() else []):
            info = parse_name(p)
            if info is not None and info.expt == expt:
                best = max(best, info.run)
    return best + 1


class Control:
    def __init__(self, cfg: PartitionConfig, *, transition_timeout: float = 60.0) -> None:
        self.cfg = cfg
        self.state = "reset"
        self.members: dict[bytes, dict[str, Any]] = {}
        self.status: dict[str, dict[str, Any]] = {}
        self.errors: list[str] = []
        self.run_number: int | None = None
        self.last_run = 0
        self.step = -1
        self.epoch = 0
        self.transition_timeout = transition_timeout
        self.pending: dict[str, Any] | None = None  # the transition waiting for acks
        self.enable_done = False
        self.stop = False
        self.sock: zmq.Socket[Any] | None = None

    # -- members -----------------------------------------------------------------------------
    def expected(self) -> set[str]:
        names = {"timing-0"} | {f"eb-{i}" for i in range(self.cfg.builders)}
        names |= {f"node-{n.id}" for n in self.cfg.nodes}
        if self.cfg.monitor_tag is not None:
            names.add("meb-0")
        return names

    def present(self) -> set[str]:
        """Members heard from recently (they report status every half second)."""
        now = time.monotonic()
        return {m["name"] for m in self.members.values() if now - m["last"] < MEMBER_SILENCE}

    def ident_of(self, name: str) -> bytes | None:
        for ident, m in self.members.items():
            if m["name"] == name:
                return ident
        return None

    def touch(self, ident: bytes) -> None:
        member = self.members.get(ident)
        if member is not None:
            member["last"] = time.monotonic()

    def send_cmd(self, name: str, body: dict[str, Any]) -> None:
        ident = self.ident_of(name)
        if ident is None:
            raise RuntimeError(f"{name} is not connected")
        assert self.sock is not None
        self.sock.send_multipart([ident, b"", b"cmd", pack(body)])

    # -- loop --------------------------------------------------------------------------------
    def run(self) -> int:
        ctx = zmq.Context()
        sock = ctx.socket(zmq.ROUTER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTER_MANDATORY, 1)
        sock.bind(self.cfg.control)
        self.sock = sock
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))
        log.info("control listening on %s", self.cfg.control)
        try:
            while not self.stop:
                if sock.poll(100):
                    self.on_message(sock.recv_multipart())
                self.check_pending()
        finally:
            sock.close()
            ctx.term()
        return 0

    def on_message(self, frames: list[bytes]) -> None:
        ident = frames[0]
        if len(frames) < 3:
            return
        kind = frames[-2].decode(errors="replace")
        try:
            body = unpack(frames[-1])
        except (ValueError, Exception):
            log.warning("unreadable control message from %r", ident)
            return
        if kind == "req":
            self.on_request(ident, frames, body)
            return
        name = ident.decode(errors="replace")
        self.touch(ident)
        if kind == "hello":
            self.members[ident] = {"name": name, "pid": body.get("pid"), "since": time.time(),
                                   "last": time.monotonic()}
            log.info("%s connected (pid %s)", name, body.get("pid"))
        elif kind == "status":
            self.status[name] = body | {"at": time.time()}
        elif kind == "error":
            msg = f"{name}: {body.get('message')}"
            self.errors.append(msg)
            del self.errors[:-50]
            log.error(msg)
        elif kind == "ack" and self.pending is not None:
            if body.get("role") == "eb" and body.get("transition") == self.pending["tid"]:
                self.pending["acks"][name] = body
            elif body.get("role") is None and name == "timing-0":
                self.pending["timing_ack"] = True
                self.expect_everywhere(body)
        elif kind == "done" and body.get("what") == "enable":
            self.enable_done = True

    def expect_everywhere(self, ack: dict[str, Any]) -> None:
        """Tell every builder which transition to expect (pulse id, time), over this reliable
        link: a builder then records it even if every node's datagram of it was lost."""
        body = {"cmd": "expect", **{k: ack.get(k) for k in (
            "transition", "pulse_id", "seconds", "nanoseconds", "epoch")}}
        builders = [f"eb-{i}" for i in range(self.cfg.builders)]
        if self.cfg.monitor_tag is not None:
            builders.append("meb-0")
        for name in builders:
            try:
                self.send_cmd(name, body)
            except (RuntimeError, zmq.ZMQError):
                log.warning("could not tell %s to expect %s", name,
                            TransitionId.name_of(int(body.get("transition") or 0)))

    # -- requests ----------------------------------------------------------------------------
    def reply(self, ident: bytes, frames: list[bytes], body: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.send_multipart([ident, b"", b"rep", pack(body)])

    def on_request(self, ident: bytes, frames: list[bytes], body: dict[str, Any]) -> None:
        cmd = body.get("cmd")
        if not isinstance(cmd, str):
            self.reply(ident, frames, {"ok": False, "message": "request has no 'cmd' string"})
            return
        if cmd == "status":
            self.reply(ident, frames, self.describe())
        elif cmd == "shutdown":
            for m in list(self.members.values()):
                with contextlib.suppress(RuntimeError, zmq.ZMQError):
                    self.send_cmd(m["name"], {"cmd": "exit"})
            self.reply(ident, frames, {"ok": True, "message": "shutting down"})
            self.stop = True
        elif cmd in TRANSITIONS:
            if self.pending is not None:
                self.reply(ident, frames, {"ok": False, "message":
                           f"busy: {self.pending['name']} is still in progress"})
                return
            error = self.start_transition(cmd, body)
            if error:
                self.reply(ident, frames, {"ok": False, "message": error, "state": self.state})
            else:
                assert self.pending is not None
                self.pending["reply_to"] = (ident, frames)
        else:
            self.reply(ident, frames, {"ok": False, "message": f"unknown command {cmd!r}"})

    def describe(self) -> dict[str, Any]:
        now = time.time()
        missing = sorted(self.expected() - self.present())
        return {"ok": True, "state": self.state, "run": self.run_number, "step": self.step,
                "experiment": self.cfg.experiment, "members": sorted(self.present()),
                "missing": missing, "enable_done": self.enable_done,
                "pids": {m["name"]: m["pid"] for m in self.members.values()},
                "errors": self.errors[-10:],
                "processes": {k: v | {"age": now - v["at"]} for k, v in self.status.items()}}

    def start_transition(self, cmd: str, body: dict[str, Any]) -> str | None:
        tid, need, after = TRANSITIONS[cmd]
        if self.state != need:
            return f"cannot {cmd} in state {self.state!r} (needs {need!r})"
        missing = sorted(self.expected() - self.present())
        if missing:
            return f"cannot {cmd}: not connected: {', '.join(missing)}"
        info: dict[str, Any] = {}
        if tid == TransitionId.Configure:
            self.epoch += 1
        elif tid == TransitionId.BeginRun:
            if body.get("record", True) and self.cfg.recording.enabled:
                floor = self.last_run
                self.run_number = next_run_number(self.cfg.data_root, self.cfg.experiment,
                                                  floor)
            else:
                self.run_number = self.last_run + 1
            self.last_run = self.run_number
            self.step = -1
            info = {"run": self.run_number, "expt": self.cfg.experiment}
        elif tid == TransitionId.BeginStep:
            self.step += 1
            info = {"step": self.step}
            if self.cfg.scan is not None and self.cfg.scan.values:
                values = self.cfg.scan.values
                info["value"] = values[self.step % len(values)]
        msg: dict[str, Any] = {"cmd": "transition", "transition": int(tid), "info": info}
        if tid == TransitionId.Enable:
            self.enable_done = False
            if body.get("events"):
                msg["max_events"] = int(body["events"])
        self.send_cmd("timing-0", msg)
        self.pending = {"name": cmd, "tid": int(tid), "after": after, "acks": {},
                        "deadline": time.monotonic() + float(body.get("timeout",
                                                                      self.transition_timeout)),
                        "info": info}
        return None

    def check_pending(self) -> None:
        p = self.pending
        if p is None:
            return
        builders = {f"eb-{i}" for i in range(self.cfg.builders)}
        done = builders <= set(p["acks"])
        timed_out = time.monotonic() > p["deadline"]
        if not done and not timed_out:
            return
        self.pending = None
        errors = [f"{n}: {a['error']}" for n, a in sorted(p["acks"].items()) if a.get("error")]
        missing_nodes = sorted({m for a in p["acks"].values() for m in a.get("missing", [])})
        if timed_out and not done:
            errors.append("no acknowledgement from " + ", ".join(sorted(builders -
                                                                         set(p["acks"]))))
        ok = not errors
        if ok or p["tid"] in (TransitionId.Disable, TransitionId.EndStep, TransitionId.EndRun,
                              TransitionId.Unconfigure):
            self.state = p["after"]  # end transitions always move down, even when damaged
        if p["tid"] == TransitionId.EndRun:
            self.run_number = None
        message = f"{p['name']} done" if ok else f"{p['name']} failed: " + "; ".join(errors)
        if missing_nodes:
            message += " (no contribution from node(s) " + ", ".join(map(str, missing_nodes)) \
                + ")"
        log.info(message)
        reply_to = p.get("reply_to")
        if reply_to is not None:
            self.reply(reply_to[0], reply_to[1], {"ok": ok, "message": message,
                                                  "state": self.state, "run": self.run_number
                                                  or p["info"].get("run"),
                                                  "missing_nodes": missing_nodes})


def main(cfg: PartitionConfig) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s control %(message)s")
    return Control(cfg).run()
