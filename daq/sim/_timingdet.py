"""The ``timing`` detector: the shot's timing tags as data, in every event.

Integers only, so ``read`` (one Shot) and ``read_batch`` (numpy on SHOT_DTYPE columns) are two
exact implementations of the same copy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from daq.timing import FLAG_BEAM, FLAG_LASER, FLAG_XRAY, Shot

from ._base import Detector, FieldSpec

__all__ = ["TimingDetector"]

_FIELDS = (
    FieldSpec("pulse_id", np.dtype("<u8")),
    FieldSpec("fiducial", np.dtype("<u4")),
    FieldSpec("counter", np.dtype("<u8")),
    FieldSpec("eventcodes", np.dtype("u1"), (256,)),
    FieldSpec("beam_present", np.dtype("u1")),
    FieldSpec("xray_on", np.dtype("u1")),
    FieldSpec("laser_on", np.dtype("u1")),
    FieldSpec("readout_groups", np.dtype("<u2")),
)


class TimingDetector(Detector):
    """Pulse id, fiducial, counter, ``eventcodes`` (256 flags, 1 = present), light status and
    the readout-group mask of the shot."""

    kind = "timing"

    @property
    def fields(self) -> tuple[FieldSpec, ...]:
        return _FIELDS

    def read(self, shot: Shot, out: dict[str, np.ndarray] | None = None) -> dict[str, Any]:
        codes = self._buffer(out, _FIELDS[3])
        bits = np.frombuffer(shot.event_codes.to_bytes(32, "little"), dtype=np.uint8)
        codes[:] = np.unpackbits(bits, bitorder="little")
        return {
            "pulse_id": np.uint64(shot.pulse_id),
            "fiducial": np.uint32(shot.fiducial),
            "counter": np.uint64(shot.counter),
            "eventcodes": codes,
            "beam_present": np.uint8(shot.beam_present),
            "xray_on": np.uint8(shot.xray_on),
            "laser_on": np.uint8(shot.laser_on),
            "readout_groups": np.uint16(shot.readout_groups),
        }

    def read_batch(self, shots: np.ndarray, out: dict[str, np.ndarray]) -> None:
        self._check_batch(shots, out)
        for name in ("pulse_id", "fiducial", "counter", "readout_groups"):
            out[name][...] = shots[name]
        out["eventcodes"][...] = np.unpackbits(shots["event_codes"], axis=1, bitorder="little")
        flags = shots["flags"]
        out["beam_present"][...] = flags & FLAG_BEAM
        out["xray_on"][...] = (flags & FLAG_XRAY) != 0
        out["laser_on"][...] = (flags & FLAG_LASER) != 0
