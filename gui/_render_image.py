"""Images and 2-D histograms: colour map, levels with a histogram, hover readout of row, column
and value, and draggable, resizable rectangles bound to the graph's ROI nodes."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QPointF, QRectF, QTimer
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QVBoxLayout,
)

from ._render_base import TRACE_COLORS, Renderer

COLORMAPS = ("viridis", "inferno", "magma", "plasma", "cividis", "grey", "CET-L4", "CET-D1")
ROI_DRAG_INTERVAL_MS = 250  # parameters sent at most this often while a rectangle is dragged


class ImageRenderer(Renderer):
    """A 2-D array (or the last two axes of a stack, summed over the others) as an image."""

    kind = "image"

    def __init__(self, histogram2d: bool = False) -> None:
        super().__init__()
        self.hist2d = histogram2d
        self.kind = "hist2d" if histogram2d else "image"
        self.frame: np.ndarray | None = None
        self.extent: tuple[float, float, float, float] | None = None  # x0, y0, width, height
        self.rois: dict[str, pg.RectROI] = {}
        self._dragging: dict[str, dict[str, int]] = {}
        self._setting = False
        self.layout_ = QVBoxLayout(self)
        self.layout_.setContentsMargins(0, 0, 0, 0)
        bar = QHBoxLayout()
        self.cmap = QComboBox()
        self.cmap.addItems(COLORMAPS)
        self.cmap.currentTextChanged.connect(self.set_colormap)
        self.auto = QCheckBox("auto levels")
        self.auto.setChecked(True)
        self.readout = QLabel("row -, col -: -")
        bar.addWidget(QLabel("colour map"))
        bar.addWidget(self.cmap)
        bar.addWidget(self.auto)
        bar.addStretch(1)
        bar.addWidget(self.readout)
        self.layout_.addLayout(bar)
        self.canvas = pg.GraphicsLayoutWidget()
        self.plot = self.canvas.addPlot()
        self.plot.setAspectLocked(not histogram2d)
        if not histogram2d:
            self.plot.invertY(True)
        self.image = pg.ImageItem()
        self.plot.addItem(self.image)
        self.hist = pg.HistogramLUTItem()
        self.hist.setImageItem(self.image)
        self.canvas.addItem(self.hist)
        self.hist.sigLevelChangeFinished.connect(self._levels_by_user)
        self.layout_.addWidget(self.canvas, 1)
        self.canvas.scene().sigMouseMoved.connect(self._hover)
        self._throttle = QTimer(self)
        self._throttle.setSingleShot(True)
        self._throttle.setInterval(ROI_DRAG_INTERVAL_MS)
        self._throttle.timeout.connect(self._flush_drag)
        self.set_colormap(COLORMAPS[0])

    # -- data --------------------------------------------------------------------------------
    def show_value(self, value: Any) -> None:
        if self.hist2d and isinstance(value, dict):
            counts = np.asarray(value["counts"], dtype=np.float64).T  # rows: y
            xe, ye = np.asarray(value["xedges"]), np.asarray(value["yedges"])
            self.extent = (float(xe[0]), float(ye[0]), float(xe[-1] - xe[0]),
                           float(ye[-1] - ye[0]))
            frame = counts
        else:
            frame = np.asarray(value)
            if frame.ndim > 2:
                frame = frame.reshape(-1, *frame.shape[-2:]).sum(axis=0)
        first = self.frame is None or self.frame.shape != frame.shape
        self.frame = frame
        levels = None
        if self.auto.isChecked():
            levels = _levels(frame)
        self._setting = True
        try:
            if levels is not None:
                self.image.setImage(frame, autoLevels=False, levels=levels)
                self.hist.setLevels(*levels)
            else:
                self.image.setImage(frame, autoLevels=False)
        finally:
            self._setting = False
        if self.extent is not None:
            self.image.setRect(QRectF(*self.extent))
        if first:
            self.plot.autoRange()

    def _levels_by_user(self) -> None:
        if not self._setting and self.frame is not None:
            self.auto.setChecked(False)  # the user moved the levels: keep them

    def set_colormap(self, name: str) -> None:
        try:
            cmap = pg.colormap.get(name) if name != "grey" else pg.ColorMap(
                [0.0, 1.0], [(0, 0, 0), (255, 255, 255)])
        except (FileNotFoundError, KeyError, ValueError):
            return
        self.hist.gradient.setColorMap(cmap)
        self.hist.gradient.showTicks(False)  # one tick per colour stop costs ~15 ms per paint
        if self.cmap.currentText() != name:
            self.cmap.setCurrentText(name)

    def _hover(self, pos: QPointF) -> None:
        if self.frame is None or not self.plot.sceneBoundingRect().contains(pos):
            return
        p = self.plot.vb.mapSceneToView(pos)
        if self.extent is not None:
            x0, y0, w, h = self.extent
            col = int(np.floor((p.x() - x0) / w * self.frame.shape[1]))
            row = int(np.floor((p.y() - y0) / h * self.frame.shape[0]))
        else:
            col, row = int(np.floor(p.x())), int(np.floor(p.y()))
        if 0 <= row < self.frame.shape[0] and 0 <= col < self.frame.shape[1]:
            self.readout.setText(f"row {row}, col {col}: {self.frame[row, col]:.6g}")
        else:
            self.readout.setText(f"row {row}, col {col}: -")

    def export(self) -> dict[str, np.ndarray]:
        return {} if self.frame is None else {"image": np.array(self.frame)}

    # -- settings ----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        out: dict[str, Any] = {"colormap": self.cmap.currentText(),
                               "auto_levels": self.auto.isChecked()}
        if not self.auto.isChecked():
            out["levels"] = [float(v) for v in self.hist.getLevels()]
        return out

    def restore(self, settings: dict[str, Any]) -> None:
        if isinstance(settings.get("colormap"), str):
            self.set_colormap(settings["colormap"])
        self.auto.setChecked(bool(settings.get("auto_levels", True)))
        levels = settings.get("levels")
        if isinstance(levels, list) and len(levels) == 2:
            self.hist.setLevels(float(levels[0]), float(levels[1]))
            self.image.setLevels(levels)

    # -- ROIs --------------------------------------------------------------------------------
    def set_nodes(self, nodes: list[Any]) -> None:
        """One rectangle per ``roi`` node reading this image, kept in step with its params."""
        if self.hist2d:
            return
        wanted = {n.name: n for n in nodes if n.op == "roi"}
        for name in [n for n in self.rois if n not in wanted]:
            self.plot.removeItem(self.rois.pop(name))
        for i, (name, node) in enumerate(wanted.items()):
            p = node.params
            r0, r1 = int(p.get("r0", 0)), int(p.get("r1", 100))
            c0, c1 = int(p.get("c0", 0)), int(p.get("c1", 100))
            roi = self.rois.get(name)
            if roi is None:
                roi = pg.RectROI((c0, r0), (c1 - c0, r1 - r0), snapSize=1.0, scaleSnap=True,
                                 translateSnap=True,
                                 pen=pg.mkPen(TRACE_COLORS[i % len(TRACE_COLORS)], width=2))
                roi.addScaleHandle((0, 0), (1, 1))
                roi.sigRegionChanged.connect(lambda r, n=name: self._dragged(n, r))
                roi.sigRegionChangeFinished.connect(lambda r, n=name: self._dragged(n, r, True))
                self.rois[name] = roi
                self.plot.addItem(roi)
            elif name not in self._dragging and self._bounds(roi) != (r0, r1, c0, c1):
                roi.setPos((c0, r0), update=False, finish=False)
                roi.setSize((c1 - c0, r1 - r0), update=True, finish=False)

    @staticmethod
    def _bounds(roi: pg.RectROI) -> tuple[int, int, int, int]:
        pos, size = roi.pos(), roi.size()
        c0, r0 = round(pos.x()), round(pos.y())
        return r0, r0 + max(1, round(size.y())), c0, c0 + max(1, round(size.x()))

    def _dragged(self, name: str, roi: pg.RectROI, finished: bool = False) -> None:
        r0, r1, c0, c1 = self._bounds(roi)
        self._dragging[name] = {"r0": r0, "r1": r1, "c0": c0, "c1": c1}
        if finished:
            self._flush_drag()
        elif not self._throttle.isActive():
            self._throttle.start()

    def _flush_drag(self) -> None:
        pending, self._dragging = self._dragging, {}
        for name, params in pending.items():
            self.params_edited.emit(name, params)

    def move_roi(self, name: str, r0: int, r1: int, c0: int, c1: int) -> None:
        """Move a rectangle as a user's drag would (for scripts and tests)."""
        roi = self.rois[name]
        roi.setPos((c0, r0), update=False, finish=False)
        roi.setSize((c1 - c0, r1 - r0), update=True, finish=True)


def _levels(frame: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite values (None if there are none); NaN costs a second pass."""
    if frame.size == 0:
        return None
    lo, hi = float(frame.min()), float(frame.max())
    if not (np.isfinite(lo) and np.isfinite(hi)):
        finite = frame[np.isfinite(frame)]
        if not finite.size:
            return None
        lo, hi = float(finite.min()), float(finite.max())
    return lo, hi if hi > lo else lo + 1.0
