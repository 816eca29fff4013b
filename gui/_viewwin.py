"""A window showing one view: a header with its heartbeat, event count and age, a renderer
chosen by the kind of value, and buttons to save the picture (PNG) and the data (CSV, NPY)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtGui import QCloseEvent
from PyQt5.QtWidgets import (
    QApplication,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from ami.comm import ViewUpdate

from ._model import view_kind
from ._render_base import Renderer, save_csv, save_npy
from ._render_misc import RENDERERS, make_renderer

EPICS_EPOCH_OFFSET = 631152000


class ViewWindow(QWidget):
    """One view. ``set_update`` keeps only the latest message; ``redraw`` (from the UI timer)
    draws it once."""

    params_edited = pyqtSignal(str, dict)
    closed = pyqtSignal(str)

    def __init__(self, view: str, ref: str = "", op: str | None = None,
                 kind: str | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.view, self.ref, self.op = view, ref, op
        self.forced_kind = kind
        self.renderer: Renderer | None = None
        self.pending: ViewUpdate | None = None
        self.last: ViewUpdate | None = None
        self.updates = 0
        self.draws = 0
        self.nodes: list[Any] = []
        self._restore: dict[str, Any] = {}
        self.setWindowTitle(f"AMI view: {view}")
        self.resize(720, 520)
        layout = QVBoxLayout(self)
        top = QHBoxLayout()
        self.title = QLabel(f"<b>{view}</b> &nbsp; <span style='color:gray'>{ref}</span>")
        self.info = QLabel("waiting for data")
        top.addWidget(self.title)
        top.addStretch(1)
        top.addWidget(self.info)
        layout.addLayout(top)
        self.error = QLabel("")
        self.error.setStyleSheet("color: #d33")
        self.error.setWordWrap(True)
        self.error.hide()
        layout.addWidget(self.error)
        self.body = QVBoxLayout()
        layout.addLayout(self.body, 1)
        bar = QHBoxLayout()
        self.kind_box = QComboBox()
        self.kind_box.addItems(["auto", *RENDERERS])
        if kind:
            self.kind_box.setCurrentText(kind)
        self.kind_box.currentTextChanged.connect(self._kind_changed)
        bar.addWidget(QLabel("show as"))
        bar.addWidget(self.kind_box)
        bar.addStretch(1)
        for text, fn in (("Save PNG", self._ask_png), ("Save CSV", self._ask_csv),
                         ("Save NPY", self._ask_npy)):
            b = QPushButton(text)
            b.clicked.connect(fn)
            bar.addWidget(b)
        layout.addLayout(bar)

    # -- data --------------------------------------------------------------------------------
    def set_update(self, msg: ViewUpdate) -> None:
        self.pending = msg
        self.updates += 1

    def redraw(self) -> bool:
        """Draw the pending update, if any; True if something was drawn."""
        msg, self.pending = self.pending, None
        if msg is None:
            return False
        self.last = msg
        age = time.time() - EPICS_EPOCH_OFFSET - msg.time
        self.info.setText(f"heartbeat {msg.heartbeat} · {msg.events} events · "
                          f"age {age:.1f} s · v{msg.graph_version}")
        self.error.setVisible(bool(msg.error))
        self.error.setText(msg.error)
        if msg.value is None:
            return False
        kind = self.forced_kind or view_kind(msg.value, self.op)
        if self.renderer is None or self.renderer.kind != kind:
            self._use(kind)
        assert self.renderer is not None
        try:
            self.renderer.show_value(msg.value)
        except (KeyError, TypeError, ValueError) as exc:
            self.error.setText(f"cannot show this value as {kind}: {exc}")
            self.error.show()
            return False
        self.draws += 1
        return True

    def _use(self, kind: str) -> None:
        old = self.renderer
        if old is not None:
            self._restore = old.settings()
            self.body.removeWidget(old)
            old.deleteLater()
        self.renderer = make_renderer(kind)
        self.renderer.restore(self._restore)
        self.renderer.params_edited.connect(self.params_edited)
        self.renderer.set_nodes(self.nodes)
        self.body.addWidget(self.renderer)

    def _kind_changed(self, text: str) -> None:
        self.forced_kind = None if text == "auto" else text
        if self.last is not None:
            self.pending = self.pending or self.last
            self.redraw()

    def set_nodes(self, nodes: list[Any]) -> None:
        """Graph nodes bound to this view (ROIs on an image, cursors on a trace)."""
        self.nodes = nodes
        if self.renderer is not None:
            self.renderer.set_nodes(nodes)

    # -- saving ------------------------------------------------------------------------------
    def save_png(self, path: str | Path) -> bool:
        """The window as shown (laid out first, so a view drawn just now is in it)."""
        layout = self.layout()
        if layout is not None:
            layout.activate()
        if self.renderer is not None:
            QApplication.sendPostedEvents()
        return bool(self.grab().save(str(path)))

    def save_data(self, path: str | Path) -> bool:
        """``.csv`` as columns, anything else as ``.npy`` (``.npz`` for several arrays)."""
        data = self.renderer.export() if self.renderer is not None else {}
        if not data:
            return False
        if str(path).endswith(".csv"):
            save_csv(path, data)
        else:
            save_npy(path, data)
        return True

    def _ask(self, suffix: str, what: str) -> str:
        name, _ = QFileDialog.getSaveFileName(self, f"Save {what}", f"{self.view}.{suffix}",
                                              f"{what} (*.{suffix})")
        return name

    def _ask_png(self) -> None:
        if name := self._ask("png", "PNG image"):
            self.save_png(name)

    def _ask_csv(self) -> None:
        if name := self._ask("csv", "CSV data"):
            self.save_data(name)

    def _ask_npy(self) -> None:
        if name := self._ask("npy", "NumPy data"):
            self.save_data(name)

    # -- session -----------------------------------------------------------------------------
    def settings(self) -> dict[str, Any]:
        g = self.geometry()
        return {"view": self.view, "kind": self.forced_kind,
                "geometry": [g.x(), g.y(), g.width(), g.height()],
                "renderer": self.renderer.settings() if self.renderer else self._restore}

    def restore(self, settings: dict[str, Any]) -> None:
        geometry = settings.get("geometry")
        if isinstance(geometry, list) and len(geometry) == 4:
            self.setGeometry(*(int(v) for v in geometry))
        if isinstance(settings.get("renderer"), dict):
            self._restore = settings["renderer"]
            if self.renderer is not None:
                self.renderer.restore(self._restore)

    def closeEvent(self, event: QCloseEvent | None) -> None:
        self.closed.emit(self.view)
        super().closeEvent(event)
