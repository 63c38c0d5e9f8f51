"""A real single-node SLURM for the tests and benchmarks, from Debian's ``slurm-wlm`` and
``munge``: a munged of its own (its own socket), ``slurmctld`` and ``slurmd`` with a minimal
``slurm.conf`` of their own, free ports chosen at start, state and spool in a temporary folder,
all stopped by PID; the controller and the node are addressed on loopback. Needs root (slurmd
runs jobs as their users)."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from slicer_cloud.web.serving import free_port

CONF = """\
ClusterName=slicercloudtest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket={munge_socket}
SlurmUser=root
SlurmdUser=root
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={run}/slurmctld.pid
SlurmdPidFile={run}/slurmd.pid
SlurmctldLogFile={run}/slurmctld.log
SlurmdLogFile={run}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
KillWait=5
MinJobAge=30
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
NodeName={host} NodeAddr=127.0.0.1 NodeHostname={host} CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""


@dataclass
class Slurm:
    folder: Path
    conf: Path
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def env(self) -> dict[str, str]:
        """What a process needs to talk to this cluster (sbatch, squeue, dask-jobqueue)."""
        return {"SLURM_CONF": str(self.conf)}

    def command(self, *argv: str, timeout: float = 60) -> str:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env={**os.environ, **self.env})
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} failed: {done.stderr.strip()}")
        return done.stdout

    def jobs(self) -> list[dict[str, str]]:
        """The queue: one dict per job (id, name, state)."""
        out = self.command("squeue", "--noheader", "--format=%i|%j|%T")
        return [dict(zip(("id", "name", "state"), line.split("|"))) for line in out.splitlines() if line.strip()]

    def log(self) -> str:
        return "".join((self.folder / "run" / name).read_text(errors="replace")[-4000:]
                       for name in ("slurmctld.log", "slurmd.log") if (self.folder / "run" / name).exists())

    def stop(self) -> None:
        # jobs first: their processes (slurmstepd and below) would outlive slurmd
        with contextlib.suppress(Exception):
            for job in self.jobs():
                self.command("scancel", job["id"], timeout=30)
            _wait(lambda: not self.jobs(), 60, "jobs still running at the end")
        for process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in reversed(self.processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)


def _wait(predicate, timeout_s: float, what: str, log=lambda: "") -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(Exception):
            if predicate():
                return
        time.sleep(0.2)
    raise AssertionError(f"SLURM: {what} within {timeout_s} s\n{log()}")


def start_slurm(cpus: int | None = None, memory_mb: int = 8000) -> Slurm:
    for program in ("munged", "slurmctld", "slurmd", "sbatch"):
        if shutil.which(program) is None and not Path(f"/usr/sbin/{program}").exists():
            raise AssertionError(f"{program} is missing: run scripts/bootstrap.sh (Debian's slurm-wlm and munge).")
    if os.geteuid() != 0:
        raise AssertionError("The SLURM test cluster needs root (slurmd starts jobs as their users).")
    # Under /tmp itself (sticky): munged refuses folders others could write, and runs as munge.
    folder = Path(tempfile.mkdtemp(prefix="slicer-cloud-slurm-"))
    os.chmod(folder, 0o755)
    munge_dir = folder / "munge"
    munge_dir.mkdir()
    os.chmod(munge_dir, 0o755)  # clients must reach the socket; the key stays in /etc/munge
    munge = pwd.getpwnam("munge")
    os.chown(munge_dir, munge.pw_uid, munge.pw_gid)
    for name in ("state", "spool", "run"):
        (folder / name).mkdir()
    host = socket.gethostname()
    conf = folder / "slurm.conf"
    socket_path = munge_dir / "munge.socket"
    conf.write_text(CONF.format(
        host=host, ctld_port=free_port(), slurmd_port=free_port(), munge_socket=socket_path, state=folder / "state",
        spool=folder / "spool", run=folder / "run", cpus=cpus or os.cpu_count() or 1, memory_mb=memory_mb,
    ))  # fmt: skip
    slurm = Slurm(folder, conf)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        slurm.processes.append(subprocess.Popen(
            ["/usr/sbin/munged", "-F", f"--socket={socket_path}", f"--pid-file={munge_dir}/munged.pid",
             f"--log-file={munge_dir}/munged.log", f"--seed-file={munge_dir}/munged.seed"],
            user=munge.pw_uid, group=munge.pw_gid, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        _wait(socket_path.exists, 30, "munged did not open its socket")
        slurm.processes.append(subprocess.Popen(["/usr/sbin/slurmctld", "-D", "-c", "-f", str(conf)], env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: slurm.command("sinfo", "--noheader", timeout=10) is not None, 60, "slurmctld did not answer", slurm.log)
        slurm.processes.append(subprocess.Popen(["/usr/sbin/slurmd", "-D", "-c", "-f", str(conf), "-N", host], env=env,
                                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait(lambda: slurm.command("sinfo", "--noheader", "--format=%T", timeout=10).strip() == "idle", 90,
              "the node never became idle", slurm.log)
    except BaseException:
        slurm.stop()
        raise
    return slurm


@contextlib.contextmanager
def running_slurm(**options) -> Iterator[Slurm]:
    slurm = start_slurm(**options)
    try:
        yield slurm
    finally:
        slurm.stop()
