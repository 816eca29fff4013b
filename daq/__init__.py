"""The simulated data-acquisition system: format, timing, detectors, readout, event building,
recording and run control."""

__all__: list[str] = []
