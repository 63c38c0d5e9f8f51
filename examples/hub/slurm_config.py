# A hub whose users' slicer-cloud servers run as SLURM jobs on the cluster's compute nodes:
#
#     SLICER_CLOUD_HUB_CLUSTER_IP=10.0.0.5 slicer-cloud hub --ip 0.0.0.0 --config examples/hub/slurm_config.py
#
# Run it on a login node (or any machine with sbatch/squeue/scancel and the cluster's file
# systems), as root or with sudo rights to submit as each user: each user logs in with their
# cluster account (JupyterHub's PAM login), picks cores, memory, hours (and a partition, a GPU)
# in the spawn form, and their server runs as `sbatch` under their own account; the hub's proxy
# reaches it, and stopping the server (or the idle culler) cancels the job. See docs/scale.md.
import os

c = get_config()  # noqa: F821 - provided by JupyterHub when it loads this file

c.JupyterHub.spawner_class = "slicer_cloud.hub.spawners.SlicerCloudSlurmSpawner"
# Jobs on compute nodes call the hub's API: its address on the cluster network (loopback works only
# when the jobs run on this very machine).
c.JupyterHub.hub_ip = os.environ.get("SLICER_CLOUD_HUB_CLUSTER_IP", "127.0.0.1")
c.Spawner.start_timeout = 900  # a job may wait in the queue
c.Spawner.http_timeout = 300

c.SlicerCloudSlurmSpawner.max_cores = 16
c.SlicerCloudSlurmSpawner.max_memory_gib = 64
c.SlicerCloudSlurmSpawner.max_hours = 12
c.SlicerCloudSlurmSpawner.default_cores = 4
c.SlicerCloudSlurmSpawner.default_memory_gib = 16
c.SlicerCloudSlurmSpawner.default_hours = 4
# The partitions offered in the form (the first is the default), and what the GPU box asks for.
c.SlicerCloudSlurmSpawner.partitions = [p for p in os.environ.get("SLICER_CLOUD_HUB_PARTITIONS", "").split(",") if p]
c.SlicerCloudSlurmSpawner.gpu_gres = os.environ.get("SLICER_CLOUD_HUB_GPU_GRES", "")
# Shell lines run in the job before the server, e.g. loading the environment slicer-cloud is in:
# c.SlicerCloudSlurmSpawner.req_prologue = "source /shared/slicer-cloud/.venv/bin/activate"
