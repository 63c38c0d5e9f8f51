"""Process-tree helpers on Linux's /proc: who descends from whom, how much memory they hold,
and making this process the reaper of its orphaned descendants."""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
from dataclasses import dataclass
from pathlib import Path

_PR_SET_CHILD_SUBREAPER = 36
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcInfo:
    pid: int
    ppid: int
    name: str
    rss_bytes: int


def read_proc(pid: int) -> ProcInfo | None:
    """The /proc facts of one process, or None when it is gone (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        status = Path(f"/proc/{pid}/status").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The name sits in parentheses and may itself contain spaces or parentheses.
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":
        return None
    rss_kib = 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            rss_kib = int(line.split()[1])
            break
    return ProcInfo(pid=pid, ppid=int(fields[1]), name=name, rss_bytes=rss_kib * 1024)


def all_processes() -> list[ProcInfo]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            info = read_proc(int(entry))
            if info is not None:
                found.append(info)
    return found


def descendants(root: int) -> list[ProcInfo]:
    """Every live process below ``root`` (not ``root`` itself), parents before children."""
    children: dict[int, list[ProcInfo]] = {}
    for info in all_processes():
        children.setdefault(info.ppid, []).append(info)
    result: list[ProcInfo] = []
    stack = [root]
    while stack:
        for child in children.get(stack.pop(), []):
            result.append(child)
            stack.append(child.pid)
    return result


def tree_memory(root: int) -> list[ProcInfo]:
    """``root`` and its descendants, each with its resident memory."""
    head = read_proc(root)
    return ([head] if head else []) + descendants(root)


def become_subreaper() -> bool:
    """Make orphaned descendants (a daemon a program forks off) children of this process, so
    that stopping the service can find and end them. False where the kernel refuses."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def set_parent_death_signal(sig: int = signal.SIGTERM) -> None:
    """Have the kernel send ``sig`` to this process when its parent dies, even by kill -9, so a
    service never outlives the server that started it (Linux; elsewhere nothing happens)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the signal was set: act as if it came
        os.kill(os.getpid(), sig)


def parent_death_prefix() -> list[str]:
    """A command prefix that has the kernel end the child if this service dies without cleaning
    up (SIGKILL, a crash). util-linux ``setpriv`` sets it; it survives the exec."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", "--"] if setpriv else []
