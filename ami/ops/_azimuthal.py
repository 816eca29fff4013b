"""Azimuthal integration: an image to I(q) or I(r) in fixed bins.

The geometry (pixel positions, beam centre, detector distance, wavelength) fixes which bin every
pixel falls in and its intensity correction; :class:`AzimuthalIntegrator` computes both once and
each event only bins pixel values. Geometry follows smalldata's ``azimuthalBinning`` with the
detector normal to the beam (no tilt): with pixel position (x, y) in the detector plane,
``r = sqrt((x - xc)² + (y - yc)² + d²)``, ``cos 2θ = d / r`` and ``q = 4π/λ · sin θ``. Optional
corrections divide each pixel by the solid-angle factor ``(d / r)³`` and by the polarisation
factor ``(1 - P)(1 - sin²φ·sin²2θ) + P(1 - cos²φ·sin²2θ)``, φ measured from the y axis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from ._kernels import bin_sum_kernel

ArrayLike = npt.ArrayLike
Unit = Literal["q", "r", "2theta"]
UNITS: tuple[Unit, ...] = ("q", "r", "2theta")
HC_KEV_ANGSTROM = 12.398419843320026  # λ[Å] = HC / E[keV]


@dataclass(frozen=True)
class AzimuthalResult:
    """Bin centres (1/Å for q, mm for r, degrees for 2θ), mean corrected intensity per bin (NaN in
    empty bins) and the number of pixels that went into each bin."""

    centers: np.ndarray
    intensity: np.ndarray
    counts: np.ndarray


class AzimuthalIntegrator:
    """Radial average of images whose pixels sit at ``x``, ``y`` (mm, any array shape).

    ``center`` is the beam position (xc, yc) in mm, ``distance`` the sample-detector distance in
    mm. Give ``wavelength`` (Å) or ``photon_energy`` (keV) for ``unit="q"`` or ``"2theta"``.
    Bins are ``nbins`` equal bins over ``range`` (default: the span of the unmasked pixels).
    ``mask`` (True = good) drops pixels for good; NaN pixels are dropped per event.
    ``polarization`` is the fraction P of polarisation in the y plane (smalldata ``Pplane``;
    0 for a horizontally polarised beam along x), or None for no correction.
    """

    def __init__(
        self,
        x: ArrayLike,
        y: ArrayLike,
        *,
        distance: float,
        center: tuple[float, float] = (0.0, 0.0),
        wavelength: float | None = None,
        photon_energy: float | None = None,
        nbins: int = 100,
        unit: Unit = "q",
        range: tuple[float, float] | None = None,
        mask: ArrayLike | None = None,
        polarization: float | None = None,
        solid_angle: bool = True,
    ) -> None:
        xx = np.asarray(x, dtype=np.float64)
        yy = np.asarray(y, dtype=np.float64)
        if xx.shape != yy.shape:
            raise ValueError(f"x shape {xx.shape} does not match y shape {yy.shape}")
        if not distance > 0:
            raise ValueError(f"distance ({distance}) must be positive (mm)")
        if int(nbins) != nbins or nbins < 1:
            raise ValueError(f"nbins ({nbins}) must be a whole number >= 1")
        if unit not in UNITS:
            raise ValueError(f"unit {unit!r} must be one of {', '.join(UNITS)}")
        if wavelength is None and photon_energy is not None:
            if not photon_energy > 0:
                raise ValueError(f"photon_energy ({photon_energy}) must be positive (keV)")
            wavelength = HC_KEV_ANGSTROM / photon_energy
        if wavelength is not None and not wavelength > 0:
            raise ValueError(f"wavelength ({wavelength}) must be positive (Å)")
        if unit == "q" and wavelength is None:
            raise ValueError("unit 'q' needs a wavelength (Å) or a photon_energy (keV)")
        if polarization is not None and not 0 <= polarization <= 1:
            raise ValueError(f"polarization ({polarization}) must be between 0 and 1")
        self.shape = xx.shape
        self.unit = unit
        dx, dy = xx - center[0], yy - center[1]
        rho2 = dx * dx + dy * dy
        r = np.sqrt(rho2 + distance * distance)
        two_theta = np.arccos(distance / r)
        if unit == "q":
            assert wavelength is not None
            coord = 4 * np.pi / wavelength * np.sin(two_theta / 2)
        elif unit == "r":
            coord = np.sqrt(rho2)
        else:
            coord = np.degrees(two_theta)
        correction = np.ones(self.shape)
        if solid_angle:
            correction *= (distance / r) ** 3
        if polarization is not None:
            with np.errstate(invalid="ignore", divide="ignore"):
                rho = np.sqrt(rho2)
                sin2_phi = np.where(rho > 0, dx * dx / np.where(rho > 0, rho2, 1.0), 0.0)
            sin2_2t = np.sin(two_theta) ** 2
            correction *= (1 - polarization) * (1 - sin2_phi * sin2_2t) + polarization * (
                1 - (1 - sin2_phi) * sin2_2t
            )
        good = np.ones(self.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
        if good.shape != self.shape:
            raise ValueError(f"mask shape {good.shape} does not match pixel shape {self.shape}")
        good = good & np.isfinite(coord) & (correction > 0)
        if range is None:
            lo, hi = (coord[good].min(), coord[good].max()) if good.any() else (0.0, 1.0)
            if hi <= lo:  # one value only: a unit-wide bin around it
                lo, hi = lo - 0.5, lo + 0.5
        else:
            lo, hi = float(range[0]), float(range[1])
            if hi <= lo:
                raise ValueError(f"range upper end ({hi}) must be greater than lower end ({lo})")
        self.edges = np.linspace(lo, hi, int(nbins) + 1)
        self.centers = (self.edges[:-1] + self.edges[1:]) / 2
        index = np.floor((coord - lo) / (hi - lo) * nbins)
        index = np.where(coord == hi, nbins - 1, index)  # the top edge belongs to the last bin
        good &= (index >= 0) & (index < nbins)
        self._index = np.where(good, index, -1).astype(np.int32).ravel()
        with np.errstate(divide="ignore"):
            self._weight = np.where(good, 1.0 / np.where(good, correction, 1.0), 0.0).ravel()
        self._index.flags.writeable = False
        self._weight.flags.writeable = False

    @classmethod
    def from_pixel_grid(
        cls,
        shape: tuple[int, int],
        *,
        center: tuple[float, float],
        pixel_size: float,
        distance: float,
        **kwargs: object,
    ) -> AzimuthalIntegrator:
        """A plain rectangular detector: ``center`` is the beam at (row, col) in pixel units
        (fractions allowed), ``pixel_size`` in mm. Other keywords as for the constructor."""
        if not pixel_size > 0:
            raise ValueError(f"pixel_size ({pixel_size}) must be positive (mm)")
        rows, cols = np.indices(shape, dtype=np.float64)
        return cls(
            cols * pixel_size,
            rows * pixel_size,
            center=(center[1] * pixel_size, center[0] * pixel_size),
            distance=distance,
            **kwargs,  # type: ignore[arg-type]
        )

    @property
    def bin_index(self) -> np.ndarray:
        """Bin of every pixel (flattened, -1 = dropped); read-only."""
        return self._index

    def __call__(self, image: ArrayLike) -> AzimuthalResult:
        img = np.asarray(image)
        if img.shape != self.shape:
            raise ValueError(f"image shape {img.shape} does not match geometry {self.shape}")
        if img.dtype.kind not in "f":
            img = img.astype(np.float64)
        sums = np.empty(self.centers.size)
        counts = np.empty(self.centers.size, dtype=np.int64)
        bin_sum_kernel(self._index, np.ascontiguousarray(img).ravel(), self._weight, sums, counts)
        with np.errstate(invalid="ignore", divide="ignore"):
            intensity = sums / counts
        return AzimuthalResult(self.centers, intensity, counts)
