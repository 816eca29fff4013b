"""What ``shmem monitor`` shows: a running summary of the dgrams a client sees (no I/O)."""

from __future__ import annotations

from typing import Any

from daq.xtc import Decoder, Dgram, TransitionId, XtcError


class MonitorSummary:
    """Counts events, sizes, damage and transitions; reads the fiducial of ``timing``."""

    def __init__(self) -> None:
        self.decoder = Decoder()
        self.events = self.bytes = self.damaged = 0
        self.last_size = 0
        self.transitions: dict[str, int] = {}
        self.detectors: list[str] = []
        self.fiducial: int | None = None
        self.decode_errors = 0
        self._has_timing = False
        self._mark = (0.0, 0, 0)  # time, events, bytes at the last report

    def add(self, dg: Dgram) -> None:
        if dg.is_event:
            self.events += 1
            self.bytes += dg.size
            self.last_size = dg.size
            self.damaged += dg.damage != 0
            if self._has_timing:
                try:
                    fid = self.decoder.decode(dg).get("timing", "fiducial")
                except XtcError:
                    self.decode_errors += 1
                else:
                    if fid is not None:
                        self.fiducial = int(fid)
            return
        name = TransitionId.name_of(dg.service)
        self.transitions[name] = self.transitions.get(name, 0) + 1
        if dg.service == TransitionId.Configure:
            try:
                self.decoder.decode(dg)  # registers the Names blocks
            except XtcError:
                self.decode_errors += 1
            names = sorted({n.det_name for n in self.decoder.lookup.values()})
            self.detectors = names
            self._has_timing = "timing" in names

    def start(self, now: float) -> None:
        """Count the first line's rates from ``now`` (when the client attached)."""
        self._mark = (now, self.events, self.bytes)

    def line(self, now: float, client: dict[str, Any] | None = None) -> str:
        """One report line: rates since the previous line."""
        t0, e0, b0 = self._mark
        dt = now - t0 if t0 else 0.0
        rate = (self.events - e0) / dt if dt > 0 else 0.0
        mbps = (self.bytes - b0) / dt / 1e6 if dt > 0 else 0.0
        self._mark = (now, self.events, self.bytes)
        avg = self.bytes / self.events if self.events else 0
        parts = [f"events {self.events}", f"rate {rate:,.1f} Hz", f"{mbps:,.1f} MB/s",
                 f"size avg {avg:,.0f} B last {self.last_size:,} B",
                 f"damaged {self.damaged}"]
        if self.fiducial is not None:
            parts.append(f"fiducial {self.fiducial}")
        if client is not None:
            parts.append(f"skipped {client['skipped']}")
        return " | ".join(parts)

    def header(self) -> str:
        return f"detectors: {', '.join(self.detectors) or '(no Configure yet)'}"

    def final(self) -> dict[str, Any]:
        return {"events": self.events, "bytes": self.bytes, "damaged": self.damaged,
                "by_transition": dict(self.transitions), "detectors": list(self.detectors),
                "fiducial": self.fiducial}
