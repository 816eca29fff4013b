"""What the calibration needs to know about each simulated detector type."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ._errors import CalibError

_MEAN_ALGS = frozenset({2})  # LCLS-I algorithm #2 is the mean; the others here are medians


@dataclass(frozen=True)
class CommonMode:
    """Common-mode parameters, psana's ``cmpars=(alg, mode, cormax, npixmin)``.

    ``mode`` bits: 4 per bank, 1 per row within a bank, 2 per column within a bank (applied in
    that order); 0 disables the correction. Corrections of ``|cm| >= cormax`` or from
    ``npixmin`` or fewer good pixels are skipped. Pixels above ``threshold`` (ADU, after the
    pedestal: photons) do not enter the statistic. ``statistic`` is "median" (what LCLS-II always
    uses) or "mean".
    """

    alg: int = 7
    mode: int = 7
    cormax: float = 100.0
    npixmin: int = 10
    threshold: float = math.inf
    statistic: str = "median"

    def __post_init__(self) -> None:
        if self.statistic not in ("median", "mean"):
            raise CalibError(
                f"common-mode statistic must be 'median' or 'mean', not {self.statistic!r}"
            )
        if not 0 <= self.mode <= 7:
            raise CalibError(
                f"common-mode mode must be 0..7 (bits: 4 banks, 1 rows, 2 columns), not {self.mode}"
            )

    @classmethod
    def from_pars(cls, pars: Sequence[float], threshold: float = math.inf) -> CommonMode | None:
        """From psana ``cmpars`` (alg, mode, cormax, npixmin); None when ``mode`` is 0.

        alg 2 (LCLS-I's mean of sub-threshold pixels) selects the mean, any other the median.
        """
        p = [float(v) for v in np.asarray(pars, dtype=float).ravel()]
        if len(p) < 2:
            raise CalibError(f"common-mode parameters need at least (alg, mode), got {p}")
        alg, mode = int(p[0]), int(p[1])
        if mode == 0:
            return None
        return cls(
            alg=alg,
            mode=mode,
            cormax=p[2] if len(p) > 2 else 100.0,
            npixmin=int(p[3]) if len(p) > 3 else 10,
            threshold=threshold,
            statistic="mean" if alg in _MEAN_ALGS else "median",
        )

    def pars(self) -> tuple[int, int, float, int]:
        """The psana ``cmpars`` tuple."""
        return (self.alg, self.mode, self.cormax, self.npixmin)


@dataclass(frozen=True)
class DetectorSpec:
    """Shape, raw type, common-mode banks and geometry segment of one detector type."""

    name: str
    segment_shape: tuple[int, int]
    segments: int  # 0: one segment and 2-D data (cameras, epix100); else the leading dimension
    raw_dtype: str
    banks: tuple[int, int]  # common-mode bank (rows, columns) within a segment
    segment_type: str  # geometry segment name
    gain_switching: bool = False
    common_mode: CommonMode | None = None

    def data_shape(self, segments: int | None = None) -> tuple[int, ...]:
        """Shape of one event's raw array (``segments`` overrides the module count)."""
        n = self.segments if segments is None else segments
        return self.segment_shape if n == 0 else (n, *self.segment_shape)

    def constants_shape(self, segments: int | None = None) -> tuple[int, ...]:
        """Shape of pedestals and gains: one per gain range for gain-switching detectors."""
        shape = self.data_shape(segments)
        return (3, *shape) if self.gain_switching else shape


DETECTORS: dict[str, DetectorSpec] = {
    "cspad": DetectorSpec(
        "cspad", (185, 388), 32, "int16", (185, 194), "SENS2X1:V1",
        common_mode=CommonMode(mode=1, cormax=100.0, npixmin=10),
    ),
    "epix100": DetectorSpec(
        "epix100", (704, 768), 0, "uint16", (352, 96), "EPIX100A",
        common_mode=CommonMode(mode=3, cormax=30.0, npixmin=10),
    ),
    "jungfrau": DetectorSpec(
        "jungfrau", (512, 1024), 1, "uint16", (256, 64), "JUNGFRAU:V2", gain_switching=True,
        common_mode=CommonMode(mode=3, cormax=10.0, npixmin=10),
    ),
    "opal": DetectorSpec(
        "opal", (1024, 1024), 0, "uint16", (1024, 1024), "MTRX:V2:1024:1024:5.5:5.5"
    ),
}


def detector_spec(det_type: str) -> DetectorSpec:
    """The spec of a known detector type; CalibError listing the known ones otherwise."""
    try:
        return DETECTORS[det_type]
    except KeyError:
        raise CalibError(
            f"unknown detector type {det_type!r} (known: {', '.join(sorted(DETECTORS))})"
        ) from None
