"""Traces (waveforms and 1-D arrays, with recent traces, their average and draggable cursors),
1-D histograms, strip charts, scatter plots and means binned by a scan value."""

from __future__ import annotations

from collections import deque
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QPointF
from PyQt5.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSpinBox, QVBoxLayout

from ._model import CURSOR_PARAMS
from ._render_base import TRACE_COLORS, Renderer

CURSOR_OPS = ("cursor_value", "cursor_integral", "cursor_ratio", "cursor_difference",
              "cursor_moments")
MAX_TRACES = 20


class _PlotRenderer(Renderer):
    def __init__(self, xlabel: str = "", ylabel: str = "") -> None:
        super().__init__()
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        self.bar = QHBoxLayout()
        self.readout = QLabel("")
        self.bar.addStretch(1)
        self.bar.addWidget(self.readout)
        self.layout_.addLayout(self.bar)
        self.canvas = pg.PlotWidget()
        self.plot = self.canvas.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", xlabel)
        self.plot.setLabel("left", ylabel)
        self.layout_.addWidget(self.canvas, 1)
        self.canvas.scene().sigMouseMoved.connect(self._hover)
        self.data: dict[str, np.ndarray] = {}

    def _hover(self, pos: QPointF) -> None:
        if self.plot.sceneBoundingRect().contains(pos):
            p = self.plot.vb.mapSceneToView(pos)
            self.hover_text(p.x(), p.y())

    def hover_text(self, x: float, y: float) -> None:
        self.readout.setText(f"x {x:.6g}, y {y:.6g}")

    def export(self) -> dict[str, np.ndarray]:
        return {k: np.array(v) for k, v in self.data.items()}


class LineRenderer(_PlotRenderer):
    """The latest trace, the previous ones fading, their running average, and one vertical
    cursor per position parameter of the cursor nodes reading this trace."""

    kind = "line"

    def __init__(self) -> None:
        super().__init__("sample", "value")
        self.keep = QSpinBox()
        self.keep.setRange(1, MAX_TRACES)
        self.keep.setValue(3)
        self.keep.setPrefix("traces ")
        self.show_avg = QCheckBox("average")
        self.show_avg.setChecked(True)
        reset = QPushButton("reset average")
        reset.clicked.connect(self.reset_average)
        for w in (self.keep, self.show_avg, reset):
            self.bar.insertWidget(self.bar.count() - 2, w)
        self.cursor_label = QLabel("")
        self.layout_.addWidget(self.cursor_label)
        self.traces: deque[np.ndarray] = deque(maxlen=MAX_TRACES)
        self.curves: list[pg.PlotDataItem] = []
        self.avg_curve = self.plot.plot(pen=pg.mkPen("#ff6a6a", width=2), name="average")
        self.main = self.plot.plot(pen=pg.mkPen(TRACE_COLORS[0], width=1.5), name="latest")
        self.sum: np.ndarray | None = None
        self.count = 0
        self.cursors: dict[tuple[str, str], pg.InfiniteLine] = {}

    def reset_average(self) -> None:
        self.sum, self.count = None, 0

    def show_value(self, value: Any) -> None:
        y = np.asarray(value, dtype=np.float64).ravel()
        if self.sum is None or self.sum.shape != y.shape:
            self.sum, self.count = np.zeros_like(y), 0
            self.traces.clear()
        self.sum += np.nan_to_num(y)
        self.count += 1
        self.traces.append(y)
        history = list(self.traces)[-self.keep.value():-1]
        while len(self.curves) < len(history):
            self.curves.append(self.plot.plot())
        for i, curve in enumerate(self.curves):
            if i < len(history):
                alpha = int(40 + 140 * (i + 1) / (len(history) + 1))
                curve.setData(history[i], pen=pg.mkPen((120, 170, 255, alpha)))
            else:
                curve.setData([], [])
        self.main.setData(y)
        avg = self.sum / self.count
        self.avg_curve.setData(avg if self.show_avg.isChecked() else [])
        self.data = {"latest": y, "average": avg}
        self._cursor_readout()

    def set_nodes(self, nodes: list[Any]) -> None:
        wanted: dict[tuple[str, str], float] = {}
        for node in nodes:
            if node.op in CURSOR_OPS:
                for p in CURSOR_PARAMS:
                    if p in node.params:
                        wanted[(node.name, p)] = float(node.params[p])
        for key in [k for k in self.cursors if k not in wanted]:
            self.plot.removeItem(self.cursors.pop(key))
        for i, (key, x) in enumerate(sorted(wanted.items())):
            line = self.cursors.get(key)
            if line is None:
                color = TRACE_COLORS[(i + 1) % len(TRACE_COLORS)]
                line = pg.InfiniteLine(pos=x, angle=90, movable=True,
                                       pen=pg.mkPen(color, width=1.5, style=2),
                                       label=f"{key[0]}.{key[1]}",
                                       labelOpts={"position": 0.92, "color": color})
                line.sigPositionChangeFinished.connect(lambda ln, k=key: self._moved(k, ln))
                line.sigPositionChanged.connect(lambda _ln: self._cursor_readout())
                self.cursors[key] = line
                self.plot.addItem(line)
            elif not line.moving and abs(line.value() - x) > 1e-9:
                line.setValue(x)
        self._cursor_readout()

    def _moved(self, key: tuple[str, str], line: pg.InfiniteLine) -> None:
        self.params_edited.emit(key[0], {key[1]: float(line.value())})

    def move_cursor(self, node: str, param: str, x: float) -> None:
        """Move a cursor as a user's drag would (for scripts and tests)."""
        line = self.cursors[(node, param)]
        line.setValue(x)
        line.sigPositionChangeFinished.emit(line)

    def _cursor_readout(self) -> None:
        y = self.traces[-1] if self.traces else None
        parts = []
        for (node, param), line in sorted(self.cursors.items()):
            x = float(line.value())
            text = f"{node}.{param} = {x:.4g}"
            if y is not None and y.size:
                text += f" (y {np.interp(x, np.arange(y.size), y):.4g})"
            parts.append(text)
        self.cursor_label.setText("   ".join(parts))

    def settings(self) -> dict[str, Any]:
        return {"traces": self.keep.value(), "average": self.show_avg.isChecked()}

    def restore(self, settings: dict[str, Any]) -> None:
        if isinstance(settings.get("traces"), int):
            self.keep.setValue(settings["traces"])
        self.show_avg.setChecked(bool(settings.get("average", True)))


class Hist1DRenderer(_PlotRenderer):
    kind = "hist1d"

    def __init__(self) -> None:
        super().__init__("value", "count")
        self.curve = self.plot.plot(stepMode="center", fillLevel=0,
                                    brush=(74, 198, 255, 90), pen=pg.mkPen("#4ac6ff"))
        self.info = QLabel("")
        self.bar.insertWidget(0, self.info)

    def show_value(self, value: Any) -> None:
        edges, counts = np.asarray(value["edges"]), np.asarray(value["counts"])
        self.curve.setData(edges, counts)
        self.data = {"low_edge": edges[:-1], "high_edge": edges[1:], "count": counts}
        self.info.setText(f"entries {counts.sum():.6g}  under {value.get('underflow', 0):.6g}"
                          f"  over {value.get('overflow', 0):.6g}  nan {value.get('nan', 0):.6g}")


class StripRenderer(_PlotRenderer):
    """Latest values against time, the newest at the right edge (0 s)."""

    kind = "strip"

    def __init__(self) -> None:
        super().__init__("time (s, 0 = latest)", "value")
        self.curve = self.plot.plot(pen=pg.mkPen("#ffd24a"), symbol="o", symbolSize=3,
                                    symbolBrush="#ffd24a", symbolPen=None)

    def show_value(self, value: Any) -> None:
        t, y = np.asarray(value["keys"]), np.asarray(value["y"])
        rel = t - t[-1] if t.size else t
        self.curve.setData(rel, y)
        self.data = {"time": t, "value": y}


class ScatterRenderer(_PlotRenderer):
    kind = "scatter"

    def __init__(self) -> None:
        super().__init__("x", "y")
        self.points = pg.ScatterPlotItem(size=4, pen=None, brush=pg.mkBrush(74, 198, 255, 160))
        self.plot.addItem(self.points)

    def show_value(self, value: Any) -> None:
        x, y = np.asarray(value["x"]), np.asarray(value["y"])
        self.points.setData(x, y)
        self.data = {"x": x, "y": y}


class BinnedRenderer(_PlotRenderer):
    """Mean of a value for each scan step."""

    kind = "binned"

    def __init__(self) -> None:
        super().__init__("scan value", "mean")
        self.curve = self.plot.plot(pen=pg.mkPen("#8cff6a"), symbol="o", symbolSize=6)

    def show_value(self, value: Any) -> None:
        x, m, n = (np.asarray(value[k]) for k in ("values", "mean", "counts"))
        y = m if m.ndim == 1 else m.reshape(m.shape[0], -1).mean(axis=1)
        self.curve.setData(x, y)
        self.data = {"scan": x, "mean": y, "count": n}
