"""What every renderer of a view does: show the latest value, export it, save its settings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import QWidget

pg.setConfigOptions(imageAxisOrder="row-major", antialias=False)

TRACE_COLORS = ("#ffd24a", "#4ac6ff", "#ff6a6a", "#8cff6a", "#d28cff", "#ffffff")


class Renderer(QWidget):
    """Base of the widgets that draw one kind of value. ``show_value`` is called from the UI
    timer (at most 30 Hz) with the latest value only."""

    kind = "base"
    params_edited = pyqtSignal(str, dict)  # node name, changed parameters (ROI, cursors)

    def show_value(self, value: Any) -> None:
        raise NotImplementedError

    def export(self) -> dict[str, np.ndarray]:
        """The data shown, as named arrays (for CSV and NPY files)."""
        return {}

    def settings(self) -> dict[str, Any]:
        return {}

    def restore(self, settings: dict[str, Any]) -> None:
        """Apply what :meth:`settings` returned (unknown keys ignored)."""

    def set_nodes(self, nodes: list[Any]) -> None:
        """The graph nodes bound to this view (ROIs of an image, cursors of a trace)."""


def as_array(value: Any) -> np.ndarray:
    return np.asarray(value, dtype=np.float64) if not isinstance(value, np.ndarray) else value


def save_csv(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """Columns of equal-length 1-D arrays with a header line, or one 2-D array as a matrix
    (``# name`` on the first line); scalars become one-element columns."""
    arrays = {k: np.atleast_1d(np.asarray(v)) for k, v in data.items()}
    two_d = [k for k, v in arrays.items() if v.ndim >= 2]
    if two_d:
        k = two_d[0]
        a = arrays[k]
        np.savetxt(path, a.reshape(-1, a.shape[-1]), delimiter=",", fmt="%.10g",
                   header=f"{k} shape {list(a.shape)}")
        return
    n = max((v.size for v in arrays.values()), default=0)
    cols = []
    for v in arrays.values():
        col = np.full(n, np.nan)
        flat = v.ravel().astype(np.float64, copy=False)
        col[: flat.size] = flat
        cols.append(col)
    table = np.column_stack(cols) if cols else np.empty((0, 0))
    np.savetxt(path, table, delimiter=",", fmt="%.10g", header=",".join(arrays), comments="")


def save_npy(path: str | Path, data: dict[str, np.ndarray]) -> None:
    """One array as ``.npy``; several as ``.npz`` next to it (same stem)."""
    p = Path(path)
    if len(data) == 1:
        np.save(p, np.asarray(next(iter(data.values()))))
    else:
        arrays: dict[str, Any] = {k: np.asarray(v) for k, v in data.items()}
        np.savez(p.with_suffix(".npz"), **arrays)
