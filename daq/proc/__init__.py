"""The DAQ's processes: timing master, readout nodes, event builders, run control, launcher."""
