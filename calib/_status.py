"""Pixel status bits (the ``pixel_status`` constant: uint64, 0 = good)."""

from __future__ import annotations

import enum

import numpy as np
import numpy.typing as npt


class StatusBit(enum.IntFlag):
    """Why a pixel is bad. Bits 0-4 follow the project convention; COLD and BAD_GAIN are
    additions."""

    DEAD = 1 << 0  # no response: rms ~ 0 (stuck) in the dark run
    HOT = 1 << 1  # pedestal far above the detector median
    NOISY = 1 << 2  # rms far above the median rms
    SATURATED = 1 << 3  # dark level at or above the saturation level
    USER = 1 << 4  # masked by hand
    COLD = 1 << 5  # pedestal far below the detector median
    BAD_GAIN = 1 << 6  # gain switching: often in another gain stage in its stage's dark run


ALL_STATUS_BITS = 0xFFFF_FFFF_FFFF_FFFF


def good_pixels(status: npt.ArrayLike, bits: int = ALL_STATUS_BITS) -> npt.NDArray[np.bool_]:
    """True where none of ``bits`` is set in ``status`` (psana's ``(status & bits) == 0``)."""
    arr = np.asarray(status).astype(np.uint64, copy=False)
    return (arr & np.uint64(bits)) == 0
