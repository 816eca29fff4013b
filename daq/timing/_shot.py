"""One triggered shot of the timing system, and its 64-byte wire encoding.

Wire layout (little-endian, version 1), identical to one record of ``SHOT_DTYPE`` so that a batch
from ``TimingSystem.shots()`` is also a run of encoded shots:

===  ====  ===============  ====================================================================
off  type  field            meaning
===  ====  ===============  ====================================================================
0    u8    version          1
1    u8    flags            bit 0 beam present, bit 1 x-ray on, bit 2 laser on (others zero)
2    u16   readout_groups   mask of the readout groups that read this shot (dgram env 15..0)
4    u32   fiducial         360 Hz fiducial, 0..131040
8    u64   pulse_id         56-bit count of base-clock ticks
16   u64   counter          count of triggered shots, 0, 1, 2, ...
24   u32   nanoseconds      timestamp, EPICS epoch (the u64 at 24 is ``seconds << 32 | ns``)
28   u32   seconds
32   u8    event_codes[32]  bit k (byte k // 8, bit k % 8) set when event code k is present
===  ====  ===============  ====================================================================
"""

from __future__ import annotations

import struct
from typing import Any, NamedTuple

import numpy as np

from ._constants import EPICS_EPOCH_OFFSET, FIDUCIAL_MAX, PULSE_ID_MAX

__all__ = [
    "FLAG_BEAM",
    "FLAG_LASER",
    "FLAG_XRAY",
    "SHOT_DTYPE",
    "SHOT_SIZE",
    "SHOT_VERSION",
    "Shot",
    "decode_shot",
    "decode_shots",
    "encode_shot",
]

SHOT_VERSION = 1
SHOT_SIZE = 64
FLAG_BEAM = 1
FLAG_XRAY = 2
FLAG_LASER = 4
_FLAGS_KNOWN = FLAG_BEAM | FLAG_XRAY | FLAG_LASER

_STRUCT = struct.Struct("<BBHIQQII32s")
assert _STRUCT.size == SHOT_SIZE

#: numpy record with the wire layout; ``batch.tobytes()`` is the concatenated encodings
SHOT_DTYPE = np.dtype(
    [
        ("version", "u1"),
        ("flags", "u1"),
        ("readout_groups", "<u2"),
        ("fiducial", "<u4"),
        ("pulse_id", "<u8"),
        ("counter", "<u8"),
        ("nanoseconds", "<u4"),
        ("seconds", "<u4"),
        ("event_codes", "u1", (32,)),
    ]
)
assert SHOT_DTYPE.itemsize == SHOT_SIZE


class Shot(NamedTuple):
    """A triggered shot: the timing system's tags for one event (immutable, cheap to build).

    ``event_codes`` is an int bit set: bit k set means event code k is present.
    """

    pulse_id: int
    fiducial: int
    seconds: int
    nanoseconds: int
    counter: int
    event_codes: int
    readout_groups: int
    laser_on: bool
    xray_on: bool
    beam_present: bool

    @property
    def timestamp64(self) -> int:
        """The XTC2 event key ``seconds << 32 | nanoseconds``."""
        return (self.seconds << 32) | self.nanoseconds

    @property
    def posix_time(self) -> float:
        """The shot's time in POSIX seconds (float: ~0.2 us resolution today)."""
        return self.seconds + EPICS_EPOCH_OFFSET + self.nanoseconds * 1e-9

    @property
    def codes(self) -> tuple[int, ...]:
        """The event codes present, ascending."""
        bits, base = self.event_codes, 0
        out: list[int] = []
        while bits:
            if bits & 0xFF:
                out.extend(base + i for i in range(8) if bits >> i & 1)
            bits >>= 8
            base += 8
        return tuple(out)

    def has_code(self, code: int) -> bool:
        """Whether event code ``code`` is present."""
        return bool(self.event_codes >> code & 1)

    @property
    def flags(self) -> int:
        """The wire flags byte (``FLAG_BEAM | FLAG_XRAY | FLAG_LASER``)."""
        return (
            (FLAG_BEAM if self.beam_present else 0)
            | (FLAG_XRAY if self.xray_on else 0)
            | (FLAG_LASER if self.laser_on else 0)
        )

    def reads(self, group: int) -> bool:
        """Whether readout group ``group`` reads this shot."""
        return bool(self.readout_groups >> group & 1)

    def encode(self) -> bytes:
        """The 64-byte wire encoding (see the module docstring)."""
        return encode_shot(self)

    @classmethod
    def from_record(cls, rec: Any) -> Shot:
        """A Shot from one ``SHOT_DTYPE`` record (e.g. ``batch[i]``)."""
        flags = int(rec["flags"])
        return cls(
            int(rec["pulse_id"]),
            int(rec["fiducial"]),
            int(rec["seconds"]),
            int(rec["nanoseconds"]),
            int(rec["counter"]),
            int.from_bytes(np.asarray(rec["event_codes"], dtype=np.uint8).tobytes(), "little"),
            int(rec["readout_groups"]),
            bool(flags & FLAG_LASER),
            bool(flags & FLAG_XRAY),
            bool(flags & FLAG_BEAM),
        )


def encode_shot(shot: Shot) -> bytes:
    """``shot`` as 64 bytes for multicasting to readout nodes."""
    return _STRUCT.pack(
        SHOT_VERSION,
        shot.flags,
        shot.readout_groups,
        shot.fiducial,
        shot.pulse_id,
        shot.counter,
        shot.nanoseconds,
        shot.seconds,
        shot.event_codes.to_bytes(32, "little"),
    )


def decode_shot(buf: bytes | bytearray | memoryview) -> Shot:
    """The Shot encoded in ``buf`` (exactly 64 bytes); ValueError on a bad size or version."""
    if len(buf) != SHOT_SIZE:
        raise ValueError(f"an encoded shot is {SHOT_SIZE} bytes, got {len(buf)}")
    version, flags, groups, fid, pid, counter, ns, sec, codes = _STRUCT.unpack(buf)
    if version != SHOT_VERSION:
        raise ValueError(f"encoded shot version {version}, this reader knows {SHOT_VERSION}")
    if flags & ~_FLAGS_KNOWN:
        raise ValueError(f"encoded shot has unknown flag bits 0x{flags & ~_FLAGS_KNOWN:02x}")
    if pid > PULSE_ID_MAX or fid > FIDUCIAL_MAX or ns >= 1_000_000_000:
        raise ValueError(f"encoded shot out of range: pulse id {pid}, fiducial {fid}, ns {ns}")
    return Shot(
        pid,
        fid,
        sec,
        ns,
        counter,
        int.from_bytes(codes, "little"),
        groups,
        bool(flags & FLAG_LASER),
        bool(flags & FLAG_XRAY),
        bool(flags & FLAG_BEAM),
    )


def decode_shots(buf: bytes | bytearray | memoryview) -> np.ndarray:
    """A ``SHOT_DTYPE`` array viewing ``buf`` (a whole number of encoded shots), version-checked."""
    if len(buf) % SHOT_SIZE:
        raise ValueError(f"{len(buf)} bytes is not a whole number of {SHOT_SIZE}-byte shots")
    arr = np.frombuffer(buf, dtype=SHOT_DTYPE)
    if arr.size and not np.all(arr["version"] == SHOT_VERSION):
        bad = int(arr["version"][arr["version"] != SHOT_VERSION][0])
        raise ValueError(f"encoded shot version {bad}, this reader knows {SHOT_VERSION}")
    if arr.size and (np.any(arr["flags"] & (0xFF ^ _FLAGS_KNOWN))
                     or np.any(arr["pulse_id"] > PULSE_ID_MAX)
                     or np.any(arr["fiducial"] > FIDUCIAL_MAX)
                     or np.any(arr["nanoseconds"] >= 1_000_000_000)):
        raise ValueError("encoded shot with unknown flag bits or out of range (pulse id, "
                         "fiducial or nanoseconds)")
    return arr
