"""slicer-cloud: 3D Slicer over an internet connection.

Four ways to use Slicer remotely from one package: a web viewer (``viewer``), a headless compute
API (``compute``), a remote desktop (``desktop``) and Jupyter integration (``jupyter``).
"""

__version__ = "0.1.0"
