"""The GUI against a real AMI (``ami local`` processes reading a live shared-memory feed)."""

from __future__ import annotations

import numpy as np
import pytest
from PyQt5.QtGui import QImage

from ami.graph import Graph, Node
from gui import AmiClient, MainWindow
from gui._render_image import ImageRenderer
from gui._render_plots import LineRenderer

from .conftest import set_graph

pytestmark = pytest.mark.slow
WAIT = 15000


def fresh(win: MainWindow, view: str, after: int) -> bool:
    """The view drew an update of a graph version newer than ``after``."""
    w = win.windows.get(view)
    return w is not None and w.last is not None and w.last.graph_version > after \
        and w.draws > 0


def test_source_tree_shows_detectors_and_types(qtbot, window: MainWindow) -> None:
    tree = window.editor.source_tree
    found = {}
    for i in range(tree.topLevelItemCount()):
        det = tree.topLevelItem(i)
        for j in range(det.childCount()):
            found[f"{det.text(0)}:{det.child(j).text(0)}"] = det.child(j).text(1)
    assert found["cam:raw"] == "image"
    assert found["acq:wave"] == "array1d"
    assert found["gasdet:energy"] == "scalar"


def test_roi_then_projection_through_the_editor_gives_a_live_plot(qtbot, window) -> None:
    ed = window.editor
    assert ed.select_ref("cam:raw")
    roi = ed.add_operation("roi")
    assert ed.select_ref(f"{roi.name}.area")
    proj = ed.add_operation("projection")
    qtbot.waitUntil(lambda: ed.pending_applies == 0 and proj.name in window.client.graph.get(
        "views", {}), timeout=WAIT)
    win = window.open_view(proj.name)
    qtbot.waitUntil(lambda: win.draws > 0, timeout=WAIT)
    assert isinstance(win.renderer, LineRenderer)
    width = min(roi.params["c1"], 96) - roi.params["c0"]  # bounds are clipped to the image
    assert win.renderer.data["latest"].shape == (width,)
    assert np.all(win.renderer.data["latest"] > 0)


def test_moving_the_roi_changes_the_results(qtbot, window: MainWindow) -> None:
    graph = Graph((Node("r", "roi", {"image": "cam:raw"}, {"r0": 8, "r1": 40, "c0": 24,
                                                           "c1": 72}),
                   Node("p", "projection", {"image": "r.area"})),
                  {"image": "cam:raw", "proj": "p", "total": "r.sum"})
    set_graph(qtbot, window, graph)
    image, proj = window.open_view("image"), window.open_view("proj")
    qtbot.waitUntil(lambda: isinstance(image.renderer, ImageRenderer)
                    and "r" in image.renderer.rois and proj.draws > 0, timeout=WAIT)
    assert proj.renderer.data["latest"].size == 48
    version = window.client.graph_version
    image.renderer.move_roi("r", 10, 30, 5, 25)  # as a user's drag
    assert window.editor.graph.node("r").params == {"r0": 10, "r1": 30, "c0": 5, "c1": 25}
    qtbot.waitUntil(lambda: fresh(window, "proj", version), timeout=WAIT)
    assert proj.renderer.data["latest"].size == 20


def test_moving_a_cursor_changes_the_cursor_math(qtbot, window: MainWindow) -> None:
    graph = Graph((Node("ci", "cursor_integral", {"y": "acq:wave"}, {"a": 300.0, "b": 390.0}),),
                  {"wave": "acq:wave", "integral": "ci"})
    set_graph(qtbot, window, graph)
    wave, integral = window.open_view("wave"), window.open_view("integral")
    qtbot.waitUntil(lambda: isinstance(wave.renderer, LineRenderer)
                    and ("ci", "a") in wave.renderer.cursors and integral.draws > 0,
                    timeout=WAIT)
    assert abs(integral.last.value) < 3.0  # noise only between 300 and 390
    version = window.client.graph_version
    wave.renderer.move_cursor("ci", "a", 50.0)  # now the first pulse (sample 100) is inside
    assert window.editor.graph.node("ci").params["a"] == 50.0
    qtbot.waitUntil(lambda: fresh(window, "integral", version), timeout=WAIT)
    assert integral.last.value > 5.0
    assert "ci.a = 50" in wave.renderer.cursor_label.text()


def test_saved_png_shows_data_not_an_empty_canvas(qtbot, window: MainWindow, tmp_path) -> None:
    set_graph(qtbot, window, Graph((), {"image": "cam:raw"}))
    win = window.open_view("image")
    empty = tmp_path / "empty.png"
    assert win.save_png(empty)
    qtbot.waitUntil(lambda: win.draws > 0, timeout=WAIT)
    path = tmp_path / "image.png"
    assert win.save_png(path)
    assert _plot_variance(path) > 5 * max(_plot_variance(empty), 100.0)
    assert win.save_data(tmp_path / "image.npy")
    assert np.load(tmp_path / "image.npy").shape == (64, 96)
    assert win.save_data(tmp_path / "image.csv")
    assert np.loadtxt(tmp_path / "image.csv", delimiter=",").shape == (64, 96)


def _plot_variance(path) -> float:
    """Pixel variance in the middle of a picture (where the plot is)."""
    img = QImage(str(path)).convertToFormat(QImage.Format.Format_RGB32)
    ptr = img.constBits()
    ptr.setsize(img.byteCount())
    a = np.frombuffer(ptr, np.uint8).reshape(img.height(), img.bytesPerLine() // 4, 4)
    h, w = a.shape[:2]
    centre = a[h // 5: 4 * h // 5, w // 10: 7 * w // 10, :3].astype(np.float64)
    return float(centre.var())


def test_two_guis_attach_to_one_manager(qtbot, window: MainWindow, backend) -> None:
    set_graph(qtbot, window, Graph((), {"energy": "gasdet:energy"}))
    other = MainWindow(AmiClient(backend.client_config))
    qtbot.addWidget(other)
    other.start()
    try:
        a, b = window.open_view("energy"), other.open_view("energy")
        qtbot.waitUntil(lambda: a.draws > 0 and b.draws > 0 and other.editor.graph.views ==
                        {"energy": "gasdet:energy"}, timeout=WAIT)  # the graph reached both
    finally:
        other.stop()


def test_redraws_are_bounded_by_the_timer(qtbot, window: MainWindow) -> None:
    set_graph(qtbot, window, Graph((), {"energy": "gasdet:energy"}))
    win = window.open_view("energy")
    qtbot.waitUntil(lambda: win.draws >= 5, timeout=WAIT)
    assert window.timer.interval() >= 33  # at most 30 Hz
    assert win.draws <= window.ticks
    assert "events/s" in window.rate_label.text()
    assert window.status_line().startswith("manager up")


def test_status_bar_shows_results_before_any_view_is_opened(qtbot, window: MainWindow) -> None:
    """The status topic is subscribed at start: a window with no view open still shows the
    heartbeat and event rate (it once said "no results" until a view was opened)."""
    assert not window.windows
    qtbot.waitUntil(lambda: window.client.status_age() < 2.0, timeout=20000)
    qtbot.waitUntil(lambda: window.rate_label.text() != "no results", timeout=5000)
    assert window.age_label.text().startswith("heartbeat ")
