"""Offline access (psana style) and reduction (smalldata_tools style).

- :class:`DataSource` reads recorded runs (or runs being recorded, ``live=True``): all streams
  merged in time order through the small data, steps, EPICS and scan values, psana-style
  detector handles (``run.Detector("epix").calib(evt)``), random access by timestamp, fiducial
  or pulse id, and a small-data filter that decides whether an event's big data are read.
  Under ``mpiexec`` rank 0 reads the small data and hands batches to the other ranks.
- :class:`SmallData` (``ds.smalldata(...)``) writes per-event results to HDF5 in the smalldata
  layout, with run sums that are identical serially and under MPI.
- Reductions: :func:`droplets`, :func:`droplet_photons`, :func:`photons`, :func:`sparsify`, and
  the smalldata_tools-style functions (:class:`ROIFunc`, :class:`DropletFunc`, ...), the
  screeners (:class:`BoolFilter`, ...) and the producer (:func:`produce`, ``ami smalldata``).
"""

from ._datasource import DataSource
from ._detector import AreaDetector, Detector, EpicsPV, ScanVariable
from ._errors import OfflineError
from ._event import OfflineEvent
from ._filters import AllEvents, BoolFilter, CompositeFilter, Filter, RangeFilter, ThresholdFilter
from ._funcs import (
    AzimuthalFunc,
    CFDHits,
    DetContext,
    Droplet2Photons,
    DropletFunc,
    Func,
    PhotonFunc,
    ProjectionFunc,
    ROIFunc,
    SparsifyFunc,
    WfIntegration,
)
from ._producer import CubeSpec, ProducerConfig, build_config, load_config, produce
from ._reduce import (
    Droplets,
    Photons,
    droplet_photons,
    droplets,
    photon_counts,
    photons,
    sparsify,
    unsparsify,
)
from ._run import Run, Step
from ._smalldata import SmallData
from ._stream import LiveTimeoutWarning

__all__ = [
    "AllEvents",
    "AreaDetector",
    "AzimuthalFunc",
    "BoolFilter",
    "CFDHits",
    "CompositeFilter",
    "CubeSpec",
    "DataSource",
    "DetContext",
    "Detector",
    "Droplet2Photons",
    "DropletFunc",
    "Droplets",
    "EpicsPV",
    "Filter",
    "Func",
    "LiveTimeoutWarning",
    "OfflineError",
    "OfflineEvent",
    "PhotonFunc",
    "Photons",
    "ProducerConfig",
    "ProjectionFunc",
    "ROIFunc",
    "RangeFilter",
    "Run",
    "ScanVariable",
    "SmallData",
    "SparsifyFunc",
    "Step",
    "ThresholdFilter",
    "WfIntegration",
    "build_config",
    "droplet_photons",
    "droplets",
    "load_config",
    "photon_counts",
    "photons",
    "produce",
    "sparsify",
    "unsparsify",
]
