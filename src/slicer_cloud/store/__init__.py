"""The data store: a root folder, safe path resolution and atomic writes (plus, for the compute
API, a SQLite index of items). Services share data through here, never through each other."""

from slicer_cloud.store.atomic import atomic_output, stream_to_file
from slicer_cloud.store.paths import DataRoot

__all__ = ["DataRoot", "atomic_output", "stream_to_file"]
