"""Recording: the sink that writes an event builder's output as XTC2 run files."""

from ._recorder import Recorder, RecordingError, Sink

__all__ = ["Recorder", "RecordingError", "Sink"]
