"""Scalars (the latest value large, with its recent history) and tables of any value; the
factory that picks a renderer by kind."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QFont
from PyQt5.QtWidgets import QLabel, QTableWidget, QTableWidgetItem, QVBoxLayout

from ._render_base import Renderer
from ._render_image import ImageRenderer
from ._render_plots import (
    BinnedRenderer,
    Hist1DRenderer,
    LineRenderer,
    ScatterRenderer,
    StripRenderer,
)

HISTORY = 600
TABLE_ROWS = 2000


class ScalarRenderer(Renderer):
    kind = "scalar"

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.label = QLabel("-")
        font = QFont()
        font.setPointSize(28)
        font.setBold(True)
        self.label.setFont(font)
        self.label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        layout.addWidget(self.label)
        self.canvas = pg.PlotWidget()
        self.canvas.setMaximumHeight(160)
        self.canvas.getPlotItem().setLabel("bottom", "updates ago")
        self.curve = self.canvas.plot(pen=pg.mkPen("#ffd24a"))
        layout.addWidget(self.canvas)
        self.history: deque[float] = deque(maxlen=HISTORY)

    def show_value(self, value: Any) -> None:
        v = float(value) if value is not None else float("nan")
        self.history.append(v)
        self.label.setText(f"{v:.6g}")
        y = np.fromiter(self.history, dtype=np.float64, count=len(self.history))
        self.curve.setData(np.arange(-y.size + 1, 1), y)

    def export(self) -> dict[str, np.ndarray]:
        return {"value": np.fromiter(self.history, dtype=np.float64, count=len(self.history))}


class TableRenderer(Renderer):
    """Any value as rows: a scalar, a 1-D array, a small 2-D array, a dict of columns."""

    kind = "table"

    def __init__(self) -> None:
        super().__init__()
        layout = QVBoxLayout(self)
        self.table = QTableWidget()
        layout.addWidget(self.table)
        self.columns: dict[str, np.ndarray] = {}

    def show_value(self, value: Any) -> None:
        cols = self._columns(value)
        self.columns = cols
        n = min(max((c.size for c in cols.values()), default=0), TABLE_ROWS)
        self.table.setColumnCount(len(cols))
        self.table.setHorizontalHeaderLabels(list(cols))
        self.table.setRowCount(n)
        for j, c in enumerate(cols.values()):
            for i in range(min(n, c.size)):
                self.table.setItem(i, j, QTableWidgetItem(f"{c[i]:.6g}" if c.dtype.kind in "fiub"
                                                          else str(c[i])))

    @staticmethod
    def _columns(value: Any) -> dict[str, np.ndarray]:
        if isinstance(value, dict):
            out = {}
            for k, v in value.items():
                a = np.atleast_1d(np.asarray(v))
                if a.ndim == 1:
                    out[str(k)] = a
                elif a.ndim == 2:
                    out.update({f"{k}[{j}]": a[:, j] for j in range(min(a.shape[1], 32))})
            return out
        a = np.atleast_1d(np.asarray(value))
        if a.ndim == 2:
            return {f"col {j}": a[:, j] for j in range(min(a.shape[1], 64))}
        return {"value": a.ravel()}

    def export(self) -> dict[str, np.ndarray]:
        return dict(self.columns)


RENDERERS: dict[str, Any] = {
    "image": ImageRenderer,
    "hist2d": lambda: ImageRenderer(histogram2d=True),
    "line": LineRenderer,
    "hist1d": Hist1DRenderer,
    "strip": StripRenderer,
    "scatter": ScatterRenderer,
    "binned": BinnedRenderer,
    "scalar": ScalarRenderer,
    "table": TableRenderer,
}


def make_renderer(kind: str) -> Renderer:
    """A renderer for a kind of :func:`gui._model.view_kind`."""
    r: Renderer = RENDERERS.get(kind, TableRenderer)()
    return r
