"""``slicer-cloud deploy``: ready-made deployments written from a few answers (one module per
target: :mod:`.compose`), and what the container image runs (:mod:`.healthcheck`)."""
