"""shmem package (see docs/)."""

__all__: list[str] = []
