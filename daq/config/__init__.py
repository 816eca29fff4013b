"""Partition configuration: the TOML file ``daq run`` and every DAQ process read."""

from ._partition import (
    DetectorConfig,
    NetworkConfig,
    NodeConfig,
    PartitionConfig,
    PartitionError,
    RecordingConfig,
    ScanConfig,
    load_partition,
    parse_partition,
)

__all__ = [
    "DetectorConfig",
    "NetworkConfig",
    "NodeConfig",
    "PartitionConfig",
    "PartitionError",
    "RecordingConfig",
    "ScanConfig",
    "load_partition",
    "parse_partition",
]
