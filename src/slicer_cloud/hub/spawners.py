"""Spawners of ``slicer-cloud hub``: JupyterHub's local-process spawners, starting the
slicer-cloud single-user server (:mod:`slicer_cloud.hub.singleuser`) on the portal.

* :class:`SlicerCloudSpawner` (the default): each user's server runs as that user's account on
  this machine (accounts must exist; JupyterHub's PAM login checks their passwords). The
  operating system keeps users' files and processes apart.
* :class:`SlicerCloudSlurmSpawner`: each user's server is a SLURM job on a compute node, its
  resources chosen from a form (see the class).
* :class:`SlicerCloudDemoSpawner`: no accounts needed; every server runs as the hub's own account
  in its own folder (outside the hub's state folder; a folder inside it is refused). The hub's
  login and each server's token checks keep users' pages, services and websockets apart, but
  their notebooks' code runs as the hub's account: it can read other users' files and the hub's
  own state (cookie secret, database), and so act as any user. For a demo or a trusted class,
  never for strangers (see docs/hub.md).
"""

from __future__ import annotations

import html
import os
import re
import sys
from pathlib import Path

import batchspawner  # also registers the hub API a SLURM job reports its server's port to
from jupyterhub.spawner import LocalProcessSpawner, SimpleLocalProcessSpawner
from traitlets import Dict, Float, Integer, List, Unicode, default


def singleuser_command() -> list[str]:
    return [sys.executable, "-m", "slicer_cloud.hub.singleuser"]


class SlicerCloudSpawner(LocalProcessSpawner):
    """Each user's slicer-cloud server, as that user (see the module's notes)."""

    @default("cmd")
    def _cmd(self) -> list[str]:
        return singleuser_command()

    @default("default_url")
    def _default_url(self) -> str:
        return "/slicer/"


def check_user_folder(folder: str | Path, state_dir: str | Path) -> Path:
    """A user's folder for a server that runs as the hub's account: never the hub's state folder,
    inside it or around it (a user's file browser would show the cookie secret and database)."""
    user = Path(folder).resolve()
    if not str(state_dir):
        return user
    state = Path(state_dir).resolve()
    if user == state or state in user.parents or user in state.parents:
        raise ValueError(
            f"The user folder {user} overlaps the hub's state folder {state} (its cookie secret and "
            "database): set SLICER_CLOUD_HUB_USERS_DIR (or home_dir_template) to a folder outside it."
        )
    return user


class SlicerCloudDemoSpawner(SimpleLocalProcessSpawner):
    """Each user's slicer-cloud server in ``home_dir_template``, as the hub's account."""

    hub_state_dir = Unicode("", config=True, help="The hub's state folder: user folders may not overlap it.")

    async def start(self):
        check_user_folder(self.home_dir, self.hub_state_dir)
        return await super().start()

    @default("cmd")
    def _cmd(self) -> list[str]:
        return singleuser_command()

    @default("default_url")
    def _default_url(self) -> str:
        return "/slicer/"

    home_dir_template = Unicode("slicer-cloud-hub/users/{username}", config=True,
                                help="Each user's folder (their data and notebooks); {username} is replaced.")
    #: what the hub passes on from its environment (besides the JUPYTERHUB_ variables)
    env_keep = List(["PATH", "PYTHONPATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "XDG_CACHE_HOME",
                     "VTK_DEFAULT_OPENGL_WINDOW"], config=True)


# --- SLURM: each user's server as a SLURM job (JupyterHub's batchspawner) ---------------------

_FORM = """
<div class="form-group"><label for="sc-cores">CPU cores</label>
  <input class="form-control" id="sc-cores" name="cores" type="number" min="1" max="{max_cores}" value="{cores}"></div>
<div class="form-group"><label for="sc-memory">Memory (GiB)</label>
  <input class="form-control" id="sc-memory" name="memory_gib" type="number" min="1" max="{max_memory}" value="{memory}"></div>
<div class="form-group"><label for="sc-hours">Hours</label>
  <input class="form-control" id="sc-hours" name="hours" type="number" min="0.25" step="0.25" max="{max_hours}" value="{hours}"></div>
<div class="form-group"><label for="sc-partition">Partition</label>
  <select class="form-control" id="sc-partition" name="partition">{partitions}</select></div>
{gpu}
"""
_GPU = """<div class="form-group"><label><input type="checkbox" name="gpu" value="on"> One GPU ({gres})</label></div>"""


class SlicerCloudSlurmSpawner(batchspawner.SlurmSpawner):
    """Each user's slicer-cloud server (portal, viewer, desktop, API) as a SLURM job on a compute
    node, its resources chosen from the spawn form within the limits below; the hub's proxy
    reaches it, behind the same login; stopping or culling the server cancels the job.

    By default the job is submitted as the user (``sudo -E -u USER sbatch``: accounts on the
    cluster, as batchspawner expects). With ``exec_prefix = ""`` and a ``home_dir_template`` every
    job runs as the hub's account in its own folder (a demo or a trusted class, as the demo
    spawner)."""

    max_cores = Integer(8, config=True, help="Most CPU cores a user may ask for.")
    max_memory_gib = Integer(32, config=True, help="Most memory a user may ask for, in GiB.")
    max_hours = Float(8.0, config=True, help="Longest job a user may ask for, in hours.")
    default_cores = Integer(2, config=True)
    default_memory_gib = Integer(8, config=True)
    default_hours = Float(2.0, config=True)
    partitions = List(Unicode(), config=True, help="Partitions offered in the form (the first is the default); empty: the cluster's default.")
    gpu_gres = Unicode("", config=True, help="What the GPU box asks for, e.g. gpu:1 (sbatch --gres); empty: no GPU box.")
    home_dir_template = Unicode("", config=True, help="Each user's folder ({username} replaced) when jobs run as the hub's account; empty: the user's home.")
    node_addresses = Dict(config=True, help="Compute node name (as squeue prints it) -> address the hub reaches it at.")
    server_ip = Unicode("0.0.0.0", config=True, help="Address the user's server listens on, on its compute node (the hub must reach it).")
    #: the sbatch command's environment is this spawner's: SLURM_CONF where the cluster needs it
    env_keep = List(["PATH", "PYTHONPATH", "LANG", "LC_ALL", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "XDG_CACHE_HOME",
                     "VTK_DEFAULT_OPENGL_WINDOW", "SLURM_CONF"], config=True)

    @default("cmd")
    def _cmd(self) -> list[str]:
        # batchspawner's wrapper (it reports the server's port to the hub) runs JupyterHub's
        # single-user server with the slicer-cloud extensions: both from this environment
        from slicer_cloud.hub.singleuser import EXTENSION_ARGS

        args = [_here("jupyterhub-singleuser"), *EXTENSION_ARGS]
        if not self.exec_prefix.strip() and os.geteuid() == 0:
            args.append("--ServerApp.allow_root=True")  # the hub's own account is root (tests, containers)
        return args

    @default("batchspawner_singleuser_cmd")
    def _wrapper(self) -> str:
        return _here("batchspawner-singleuser")

    @default("default_url")
    def _default_url(self) -> str:
        return "/slicer/"

    @default("req_srun")
    def _srun(self) -> str:
        return ""  # the server is the job's only task; srun would add a step (and its own environment handling)

    @default("req_homedir")
    def _homedir(self) -> str:
        if self.home_dir_template:
            return self.home_dir_template.format(username=self.user.name)
        return super()._req_homedir_default()

    @default("options_form")
    def _form(self) -> str:
        partitions = "".join(f'<option value="{html.escape(p)}">{html.escape(p)}</option>' for p in self.partitions) \
            or '<option value="">(default)</option>'
        # defaults above a maximum (a site that lowered the maxima only) are shown at the maximum
        return _FORM.format(max_cores=self.max_cores, cores=min(self.default_cores, self.max_cores),
                            max_memory=self.max_memory_gib, memory=min(self.default_memory_gib, self.max_memory_gib),
                            max_hours=self.max_hours, hours=min(self.default_hours, self.max_hours),
                            partitions=partitions, gpu=_GPU.format(gres=html.escape(self.gpu_gres)) if self.gpu_gres else "")

    @default("options_from_form")
    def _parse_form(self):
        return self.resources_from_form

    def resources_from_form(self, form: dict[str, list[str]]) -> dict:
        """The form's values, checked against the limits; a bad one is refused with the reason
        (the hub shows it above the form)."""

        def number(name: str, label: str, low: float, high: float, kind=int):
            text = (form.get(name) or [""])[0].strip()
            try:
                value = kind(text)
            except ValueError:
                raise ValueError(f"{label}: a number is required, not {text[:20]!r}.") from None
            if not low <= value <= high:
                raise ValueError(f"{label}: choose between {low:g} and {high:g} (got {value:g}).")
            return value

        partition = (form.get("partition") or [""])[0]
        if self.partitions and partition not in self.partitions:
            raise ValueError(f"Partition: choose one of {', '.join(self.partitions)}.")
        if not self.partitions:
            partition = ""
        return {
            "cores": number("cores", "CPU cores", 1, self.max_cores),
            "memory_gib": number("memory_gib", "Memory (GiB)", 1, self.max_memory_gib),
            "hours": number("hours", "Hours", 0.25, self.max_hours, float),
            "partition": partition,
            "gpu": bool(self.gpu_gres) and (form.get("gpu") or [""])[0] == "on",
        }

    def _apply_resources(self) -> None:
        """The job's resources from the user's options, which may also come through the REST
        API unchecked: clamped to the limits, the partition one of those offered."""
        options = self.user_options or {}
        cores = min(max(1, int(options.get("cores", self.default_cores))), self.max_cores)
        memory = min(max(1, int(options.get("memory_gib", self.default_memory_gib))), self.max_memory_gib)
        # (values from the form were checked already; these bounds hold for the REST API's too)
        minutes = max(15, round(min(float(options.get("hours", self.default_hours)), self.max_hours) * 60))
        partition = str(options.get("partition") or "")
        if partition not in self.partitions:
            partition = self.partitions[0] if self.partitions else ""
        gpu = bool(options.get("gpu")) and bool(self.gpu_gres)
        self.req_nprocs = str(cores)
        self.req_memory = f"{memory}G"
        self.req_runtime = f"{minutes // 60:02d}:{minutes % 60:02d}:00"
        self.req_partition = partition
        self.req_gres = self.gpu_gres if gpu else ""
        # batchspawner also puts user_options into the job script's template: only checked values
        self.user_options = {"cores": cores, "memory_gib": memory, "hours": minutes / 60, "partition": partition, "gpu": gpu}

    hub_state_dir = Unicode("", config=True, help="The hub's state folder: user folders may not overlap it.")

    async def start(self):
        self._apply_resources()
        if self.home_dir_template:
            check_user_folder(self.req_homedir, self.hub_state_dir)
            Path(self.req_homedir).mkdir(parents=True, exist_ok=True)
        return await super().start()

    def user_env(self, env: dict) -> dict:
        if self.home_dir_template:  # the hub's account, in the user's folder
            env["USER"] = self.user.name
            env["HOME"] = self.req_homedir
            return env
        return super().user_env(env)

    def get_env(self) -> dict:
        env = super().get_env()
        if "JUPYTERHUB_SERVICE_URL" in env:  # batchspawner's wrapper puts the real port in
            env["JUPYTERHUB_SERVICE_URL"] = re.sub(r"^(https?://)[^/]*?(:\d+)?/", rf"\g<1>{self.server_ip}\g<2>/",
                                                   env["JUPYTERHUB_SERVICE_URL"], count=1)
        return env

    def state_gethost(self) -> str:
        host = super().state_gethost()
        return self.node_addresses.get(host, host)


def _here(program: str) -> str:
    """A console script of this environment, by absolute path (the job's PATH may differ)."""
    candidate = Path(sys.executable).parent / program
    return str(candidate) if candidate.exists() else program
