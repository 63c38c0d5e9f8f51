"""The Dask cluster the compute API uses on Kubernetes, as a ``DaskCluster`` resource of the Dask
operator (``dask-kubernetes``): built here from the operator's own ``make_cluster_spec`` and
rendered into ``deploy/kubernetes/dask-cluster.yaml`` (``python -m
slicer_cloud.compute.jobs.kubernetes > deploy/kubernetes/dask-cluster.yaml``), so the shipped file
and the code never drift apart (a test compares them).

What it adds to the operator's defaults: the slicer-cloud image (the workers run our modules),
mutual TLS from a Secret (the same files the API reads through ``SLICER_CLOUD_DASK_TLS_*``), the
shared data volume at the API's path, one single-threaded worker per pod with resource limits,
and pods that run as the image's unprivileged user with nothing to escalate.
"""

from __future__ import annotations

import sys
from typing import Any

from slicer_cloud import __version__

NAME = "slicer-cloud-dask"
IMAGE = f"slicer-cloud:{__version__}"
TLS_SECRET = "slicer-cloud-dask-tls"
TLS_DIR = "/etc/slicer-cloud/dask-tls"
DATA_CLAIM = "slicer-cloud-data"
DATA_DIR = "/data"
UID = 1000  # the image's user (deploy/docker/Dockerfile)

#: the compute API's view of the same cluster (its Deployment's environment)
API_ENV = {
    "SLICER_CLOUD_ENGINE": "dask",
    "SLICER_CLOUD_SCHEDULER": f"tls://{NAME}-scheduler:8786",
    "SLICER_CLOUD_DASK_TLS_CA_FILE": f"{TLS_DIR}/ca.crt",
    "SLICER_CLOUD_DASK_TLS_CERT_FILE": f"{TLS_DIR}/tls.crt",
    "SLICER_CLOUD_DASK_TLS_KEY_FILE": f"{TLS_DIR}/tls.key",
}
_TLS_ARGS = ["--tls-ca-file", f"{TLS_DIR}/ca.crt", "--tls-cert", f"{TLS_DIR}/tls.crt", "--tls-key", f"{TLS_DIR}/tls.key"]


def pod_security() -> tuple[dict[str, Any], dict[str, Any]]:
    """(pod securityContext, container securityContext): the image's user, nothing privileged."""
    pod = {"runAsNonRoot": True, "runAsUser": UID, "runAsGroup": UID, "fsGroup": UID, "seccompProfile": {"type": "RuntimeDefault"}}
    container = {"allowPrivilegeEscalation": False, "privileged": False, "capabilities": {"drop": ["ALL"]}}
    return pod, container


def dask_cluster_spec(*, image: str = IMAGE, workers: int = 2, cpu: str = "1", memory: str = "4Gi",
                      idle_timeout_s: int = 0) -> dict[str, Any]:
    from dask_kubernetes.operator import make_cluster_spec

    resources = {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}
    spec = make_cluster_spec(NAME, image=image, n_workers=workers, resources=resources, idle_timeout=idle_timeout_s)
    pod_context, container_context = pod_security()
    tls_volume = {"name": "dask-tls", "secret": {"secretName": TLS_SECRET, "defaultMode": 0o440}}
    data_volume = {"name": "data", "persistentVolumeClaim": {"claimName": DATA_CLAIM}}
    tls_mount = {"name": "dask-tls", "mountPath": TLS_DIR, "readOnly": True}
    scheduler = spec["spec"]["scheduler"]["spec"]
    worker = spec["spec"]["worker"]["spec"]
    scheduler_container = scheduler["containers"][0]
    scheduler_container["args"] = ["dask", "scheduler", "--host", "0.0.0.0", "--protocol", "tls", *_TLS_ARGS]
    worker_container = worker["containers"][0]
    # one module at a time per worker pod; the scheduler's address with its protocol (the operator's is tcp://)
    worker_container["args"] = ["dask", "worker", f"tls://{NAME}-scheduler:8786", "--name", "$(DASK_WORKER_NAME)",
                                "--nthreads", "1", "--memory-limit", "0", "--dashboard-address", "8788", *_TLS_ARGS]
    for pod, container, volumes, mounts in (
        (scheduler, scheduler_container, [tls_volume], [tls_mount]),
        (worker, worker_container, [tls_volume, data_volume], [tls_mount, {"name": "data", "mountPath": DATA_DIR}]),
    ):
        pod["securityContext"] = dict(pod_context)
        pod["automountServiceAccountToken"] = False  # the pods never call the Kubernetes API
        pod["volumes"] = volumes
        container["securityContext"] = dict(container_context)
        container["volumeMounts"] = mounts
        container["env"] = [{"name": "OMP_NUM_THREADS", "value": "1"}]
    # the dashboard's health probes speak HTTP; the scheduler's comm port now speaks TLS
    return spec


def main() -> None:
    import yaml

    header = "# Rendered by `python -m slicer_cloud.compute.jobs.kubernetes`; edit that module, not this file.\n"
    sys.stdout.write(header + yaml.safe_dump(dask_cluster_spec(), sort_keys=False))


if __name__ == "__main__":
    main()
