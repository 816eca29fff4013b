"""Compare two constant arrays (e.g. today's pedestals against last week's)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from ._errors import CalibError
from ._status import StatusBit


@dataclass(frozen=True)
class ConstantsDiff:
    """Summary of the differences between two constant arrays of the same shape."""

    shape: tuple[int, ...]
    n_pixels: int
    n_diff: int  # pixels whose values differ by more than atol
    max_abs_diff: float
    mean_diff: float  # mean of (new - old) over all pixels
    bits_set: dict[str, int] = field(default_factory=dict)  # status bits newly set: pixel counts
    bits_cleared: dict[str, int] = field(default_factory=dict)

    def summary(self) -> str:
        """One readable paragraph."""
        frac = self.n_diff / self.n_pixels if self.n_pixels else 0.0
        text = (
            f"shape {self.shape}: {self.n_diff} of {self.n_pixels} pixels differ "
            f"({100 * frac:.3g} %), max |diff| {self.max_abs_diff:.6g}, "
            f"mean diff {self.mean_diff:.6g}"
        )
        if self.bits_set or self.bits_cleared:
            text += f"; status bits set {self.bits_set}, cleared {self.bits_cleared}"
        return text


def _bit_name(bit: int) -> str:
    try:
        return StatusBit(1 << bit).name or f"bit{bit}"
    except ValueError:
        return f"bit{bit}"


def diff_constants(
    old: npt.ArrayLike, new: npt.ArrayLike, *, atol: float = 0.0, status: bool | None = None
) -> ConstantsDiff:
    """Differences from ``old`` to ``new``; ``status`` (default: both unsigned ints) also counts
    status bits set and cleared per bit."""
    a, b = np.asarray(old), np.asarray(new)
    if a.shape != b.shape:
        raise CalibError(f"cannot compare constants of shapes {a.shape} and {b.shape}")
    d = b.astype(np.float64) - a.astype(np.float64)
    absd = np.abs(d)
    is_status = status if status is not None else (a.dtype.kind == "u" and b.dtype.kind == "u")
    bits_set: dict[str, int] = {}
    bits_cleared: dict[str, int] = {}
    if is_status:
        ua, ub = a.astype(np.uint64), b.astype(np.uint64)
        changed = np.bitwise_or.reduce((ua ^ ub).ravel()) if ua.size else np.uint64(0)
        for bit in range(64):
            m = np.uint64(1 << bit)
            if not changed & m:
                continue
            on_a, on_b = (ua & m) != 0, (ub & m) != 0
            if n := int(np.count_nonzero(on_b & ~on_a)):
                bits_set[_bit_name(bit)] = n
            if n := int(np.count_nonzero(on_a & ~on_b)):
                bits_cleared[_bit_name(bit)] = n
        n_diff = int(np.count_nonzero(ua != ub))
    else:
        n_diff = int(np.count_nonzero(~(absd <= atol)))  # NaN counts as different
    return ConstantsDiff(
        shape=a.shape,
        n_pixels=int(a.size),
        n_diff=n_diff,
        max_abs_diff=float(np.nanmax(absd)) if absd.size else 0.0,
        mean_diff=float(d.mean()) if d.size else 0.0,
        bits_set=bits_set,
        bits_cleared=bits_cleared,
    )
