"""Screenshots for the documentation: a synthetic live feed, ``ami local``, the GUI with a demo
graph; writes ``main_window.png`` and one ``view_<kind>.png`` per kind of view.

``QT_QPA_PLATFORM=offscreen python -m gui.screenshots [--out docs/images] [--seconds 8]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

DEMO_GRAPH = {
    "schema": "ami-graph", "version": 1,
    "nodes": [
        {"name": "roi", "op": "roi", "inputs": {"image": "cam:raw"},
         "params": {"r0": 12, "r1": 44, "c0": 30, "c1": 78}},
        {"name": "proj", "op": "projection", "inputs": {"image": "roi.area"}},
        {"name": "laser_on", "op": "filter", "params": {"expression": "timing.laser > 0"}},
        {"name": "energy", "op": "histogram1d", "inputs": {"value": "gasdet:energy"},
         "params": {"nbins": 60, "lo": 0, "hi": 5}},
        {"name": "corr", "op": "histogram2d", "inputs": {"x": "gasdet:energy", "y": "roi.sum"},
         "params": {"nx": 50, "xlo": 0.5, "xhi": 4.0, "ny": 50, "ylo": 0, "yhi": 200000}},
        {"name": "strip", "op": "strip_chart", "inputs": {"value": "roi.sum"},
         "params": {"capacity": 600}},
        {"name": "xy", "op": "scatter", "inputs": {"x": "gasdet:energy", "y": "roi.sum"},
         "filter": "laser_on", "params": {"capacity": 600}},
        {"name": "pulse", "op": "cursor_integral", "inputs": {"y": "acq:wave"},
         "params": {"a": 80, "b": 125}},
        {"name": "hits", "op": "hit_finder", "inputs": {"data": "cam:raw"},
         "params": {"threshold": 300}},
        {"name": "mean_image", "op": "running_mean", "inputs": {"value": "cam:raw"}},
    ],
    "views": {"image": "cam:raw", "projection": "proj", "energy": "energy", "correlation": "corr",
              "roi_sum": "strip", "scatter": "xy", "wave": "acq:wave", "pulse_integral": "pulse",
              "hit_positions": "hits.positions", "mean_image": "mean_image"},
}
KINDS = {"image": "image", "projection": "line", "energy": "hist1d", "correlation": "hist2d",
         "roi_sum": "strip", "scatter": "scatter", "wave": "waveform_cursors",
         "pulse_integral": "scalar", "hit_positions": "table"}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gui.screenshots", description=__doc__)
    p.add_argument("--out", default="docs/images")
    p.add_argument("--seconds", type=float, default=8.0, help="live data before the pictures")
    args = p.parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtCore import QEventLoop, Qt, QTimer
    from PyQt5.QtWidgets import QApplication

    from ami.graph import Graph
    from gui import AmiClient, LiveFeed, LocalAmi, MainWindow

    app = QApplication.instance() or QApplication(sys.argv[:1])

    def spin(seconds: float) -> None:
        loop = QEventLoop()
        QTimer.singleShot(int(seconds * 1000), loop.quit)
        loop.exec_()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tag = f"guishots{os.getpid()}"
    with LiveFeed(tag, rate=30.0), LocalAmi(f"shmem://{tag}", workers=2) as ami:
        win = MainWindow(AmiClient(ami.client_config))
        win.resize(1500, 900)
        win.show()
        win.start()
        deadline = time.monotonic() + 30
        while not win.editor.sources and time.monotonic() < deadline:
            spin(0.2)
        win.editor.graph = Graph.from_dict(DEMO_GRAPH)
        win.editor._refresh()
        win.editor.apply()
        spin(1.0)
        for name in KINDS:
            win.open_view(name)
        win.windows["hit_positions"].kind_box.setCurrentText("table")
        spin(args.seconds)
        wave = win.windows["wave"]
        wave.resize(800, 560)
        written = []
        for name in KINDS:
            dock = win.docks[name]
            dock.setFloating(True)
            dock.resize(820, 580)
        spin(1.0)
        for name, kind in KINDS.items():
            path = out / f"view_{kind}.png"
            win.windows[name].save_png(path)
            written.append(path)
        for name in KINDS:
            win.docks[name].setFloating(False)
        for name in ("image", "projection", "wave"):
            win.docks[name].show()
        win.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, win.docks["image"])
        win.editor.select_ref("roi.sum")
        win.docks["image"].raise_()
        spin(1.5)
        path = out / "main_window.png"
        win.grab().save(str(path))
        written.append(path)
        win.stop()
        win.close()
    for path in written:
        print(f"wrote {path}")
    del app
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
