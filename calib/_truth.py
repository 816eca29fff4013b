"""The simulator's ground truth as calibration constants (``calib truth``).

A simulated detector is a pure function of its kind, name and parameters, so the constants it
was built with can be deployed for its runs: pedestals, pixel_rms, pixel_gain (ADU/keV, psana's
convention), pixel_status, common-mode parameters matching the simulated structure, and the
default geometry. Analysis then runs with perfect constants, and dark-run results can be
compared with them. Only :func:`simulated_truth` imports the simulator.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from ._default_geometry import default_geometry_text
from ._detectors import CommonMode, detector_spec
from ._errors import CalibError
from ._store import CalibStore, RunRange


def truth_constants(det_type: str, truth: dict[str, np.ndarray],
                    modules: int | None = None) -> dict[str, Any]:
    """Constants by ctype from a simulated detector's ``truth()``.

    Common mode: the detector type's default parameters when the simulation has common-mode
    noise (per row within a bank covers both its bank and row offsets), with ``cormax`` raised
    to 8 x the simulated common-mode rms so that no true offset is ever skipped; mode 0 without.
    """
    spec = detector_spec(det_type)
    out: dict[str, Any] = {
        ctype: np.asarray(truth[ctype])
        for ctype in ("pedestals", "pixel_rms", "pixel_gain", "pixel_status")
    }
    cm_rms = np.asarray(truth.get("cm_rms", np.zeros(2)), dtype=float)
    total = math.hypot(*cm_rms.tolist()) if cm_rms.size else 0.0
    cm = spec.common_mode
    if cm is None or total == 0.0:
        out["common_mode"] = np.array([0, 0, 0, 0], dtype=float)
    else:
        cm = CommonMode(alg=cm.alg, mode=cm.mode | 1, cormax=max(cm.cormax, 8.0 * total),
                        npixmin=cm.npixmin)
        out["common_mode"] = np.array(cm.pars(), dtype=float)
    out["geometry"] = default_geometry_text(det_type, modules)
    return out


def simulated_truth(kind: str, det_name: str, params: dict[str, Any] | None = None
                    ) -> tuple[dict[str, np.ndarray], int | None]:
    """``truth()`` of the simulated detector (kind, name, params) and its module count."""
    from daq.sim import make_detector  # the simulator is only needed here

    try:
        det = make_detector(kind, det_name, **(params or {}))
    except (ValueError, TypeError) as exc:
        raise CalibError(f"cannot build simulated {kind} {det_name!r}: {exc}") from None
    truth = det.truth()
    modules = getattr(getattr(det, "params", None), "modules", None)
    return truth, (modules if kind == "jungfrau" else None)


def deploy_truth(store: CalibStore, kind: str, det_name: str,
                 runs: RunRange | tuple[int, int | None] = (0, None),
                 params: dict[str, Any] | None = None, fmt: str = "npy") -> list[Path]:
    """Deploy the simulated detector's true constants for ``runs``; the paths written."""
    truth, modules = simulated_truth(kind, det_name, params)
    source = f"simulator truth of {kind} {det_name}" + (f" {params}" if params else "")
    paths = []
    for ctype, value in truth_constants(kind, truth, modules).items():
        f = "data" if ctype in ("geometry", "common_mode") else fmt
        paths.append(store.deploy(kind, det_name, ctype, value, runs=runs, fmt=f, source=source))
    return paths
