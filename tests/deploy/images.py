"""Builds the images the deployment tests run, on a real Docker engine, with no registry.

Nothing is pulled: the base is made from Debian's packages (debootstrap, then ``docker import``),
the slicer-cloud image is built from ``deploy/docker/Dockerfile`` on that base from a wheelhouse
built here with pip (its cache makes a re-run quick), and the test-only Caddy and Orthanc
images are Debian's packages on the same base. Every image carries a label with the hash of its
inputs, so an unchanged image is never built twice.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = Path(__file__).resolve().parent / "dockerfiles"
SOCKET = Path("/var/run/docker.sock")
BASE_TAG = "local/debian:bookworm"
HASH_LABEL = "org.slicer-cloud.test.inputs"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
# The CA bundle of the network the tests run on (a TLS proxy may sit between us and the
# package indexes): handed to builds as a build-context file of a throwaway stage only.
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def cache_dir() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    folder = base / "slicer-cloud" / "image-build"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def docker_cli() -> str:
    found = shutil.which("docker")
    if found is None:
        raise AssertionError("the docker command is missing: scripts/bootstrap.sh installs Debian's docker.io")
    return found


def docker(*args: str, check: bool = True, capture: bool = True, timeout: float = 1800, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([docker_cli(), *args], capture_output=capture, text=True, timeout=timeout, **kwargs)
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout[-3000:] if done.stdout else ''}\n{done.stderr[-3000:] if done.stderr else ''}")
    return done


def ensure_engine(deadline_s: float = 120) -> int | None:
    """Start dockerd (as root) unless it already answers; returns the PID it was started with,
    or None when it was already running. It is left running: it is the machine's engine."""
    if engine_answers():
        return None
    dockerd = shutil.which("dockerd")
    if dockerd is None:
        raise AssertionError("dockerd is missing: scripts/bootstrap.sh installs Debian's docker.io")
    if os.geteuid() != 0:
        raise AssertionError("the Docker engine is not running and starting it needs root")
    log = open(cache_dir() / "dockerd.log", "ab")
    process = subprocess.Popen([dockerd], stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if engine_answers():
            return process.pid
        if process.poll() is not None:
            raise AssertionError(f"dockerd exited with {process.returncode}; see {cache_dir() / 'dockerd.log'}")
        time.sleep(0.5)
    raise AssertionError(f"dockerd did not answer within {deadline_s} s")


def engine_answers() -> bool:
    if not SOCKET.exists() or shutil.which("docker") is None:
        return False
    return subprocess.run([docker_cli(), "info"], capture_output=True, timeout=60).returncode == 0


def image_label(tag: str) -> str | None:
    done = docker("image", "inspect", "--format", "{{json .Config.Labels}}", tag, check=False)
    if done.returncode != 0:
        return None
    labels = json.loads(done.stdout.strip() or "null") or {}
    return labels.get(HASH_LABEL)


def digest(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() if isinstance(part, str) else part)
        h.update(b"\0")
    return h.hexdigest()[:16]


def tree_digest(*paths: Path) -> str:
    h = hashlib.sha256()
    for root in paths:
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts)
        for path in files:
            h.update(str(path.relative_to(REPO)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()[:16]


def base_image() -> str:
    """Debian bookworm (minbase) imported as BASE_TAG, made once by debootstrap."""
    if docker("image", "inspect", BASE_TAG, check=False).returncode == 0:
        return BASE_TAG
    if shutil.which("debootstrap") is None:
        raise AssertionError("debootstrap is missing: scripts/bootstrap.sh installs it")
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        root = Path(tmp) / "rootfs"
        subprocess.run(["nice", "-n", "10", "debootstrap", "--variant=minbase", "bookworm", str(root), DEBIAN_MIRROR],
                       check=True, capture_output=True, timeout=1200)
        # the same package sources a debian:bookworm-slim image has
        (root / "etc/apt/sources.list").write_text(
            f"deb {DEBIAN_MIRROR} bookworm main\ndeb {DEBIAN_MIRROR} bookworm-updates main\n"
            "deb http://deb.debian.org/debian-security bookworm-security main\n")
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        docker("import", "-", BASE_TAG, stdin=tar.stdout)
        tar.wait()
    return BASE_TAG


LOCK = REPO / "deploy" / "docker" / "requirements.lock"


def wheelhouse() -> Path:
    """Wheels of every pinned package of the image (deploy/docker/requirements.lock), built by the
    host's pip (its cache makes this quick after the first time); made once per lock file."""
    key = digest(LOCK.read_bytes(), sys.version)
    folder = cache_dir() / f"wheels-{key}"
    if (folder / ".complete").exists():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(["nice", "-n", "10", sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir", str(folder), "-r", str(LOCK)],
                   check=True, capture_output=True, timeout=3600)
    (folder / ".complete").write_text("")
    return folder


def build_context(into: Path) -> Path:
    """A build context holding what the Dockerfile copies, with the wheelhouse in its wheels/
    (slicer-cloud itself is built from the source inside, with setuptools from the wheelhouse)."""
    context = into / "context"
    for name in ("pyproject.toml", "README.md"):
        (context / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, context / name)
    shutil.copytree(REPO / "src", context / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    shutil.copytree(REPO / "deploy" / "docker", context / "deploy" / "docker", ignore=shutil.ignore_patterns("*.whl"))
    shutil.copy2(REPO / ".dockerignore", context / ".dockerignore")
    wheels = context / "deploy" / "docker" / "wheels"
    for wheel in wheelhouse().glob("*.whl"):
        try:
            os.link(wheel, wheels / wheel.name)
        except OSError:
            shutil.copy2(wheel, wheels / wheel.name)
    return context


def slicer_cloud_images() -> tuple[str, str]:
    """``slicer-cloud:VERSION`` and ``slicer-cloud-hub:VERSION``, built from deploy/docker/Dockerfile
    on the Debian base with no package index but Debian's; rebuilt only when an input changed."""
    version = project_version()
    user_tag, hub_tag = f"slicer-cloud:{version}", f"slicer-cloud-hub:{version}"
    key = digest(tree_digest(REPO / "src", REPO / "deploy" / "docker", REPO / "pyproject.toml", REPO / "README.md", REPO / ".dockerignore"),
                 base_image())
    if image_label(user_tag) == key and image_label(hub_tag) == key:
        return user_tag, hub_tag
    with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
        context = build_context(Path(tmp))
        common = ["build", "--build-arg", f"BASE_IMAGE={BASE_TAG}", "--build-arg", "PIP_NO_INDEX=1", "--build-arg", f"VERSION={version}",
                  "--label", f"{HASH_LABEL}={key}", "-f", str(context / "deploy" / "docker" / "Dockerfile")]
        for target, tag in (("singleuser", user_tag), ("hub", hub_tag)):
            done = subprocess.run(["nice", "-n", "10", docker_cli(), *common, "--target", target, "-t", tag, str(context)],
                                  capture_output=True, text=True, timeout=3000)
            if done.returncode != 0:
                raise AssertionError(f"building {tag} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return user_tag, hub_tag


def caddy_image() -> str:
    """Debian's Caddy on the Debian base, standing in for the official caddy image."""
    tag = "local/caddy:bookworm"
    dockerfile = DOCKERFILES / "caddy.Dockerfile"
    key = digest(dockerfile.read_bytes(), base_image())
    if image_label(tag) != key:
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            docker("build", "--build-arg", f"BASE_IMAGE={BASE_TAG}", "--label", f"{HASH_LABEL}={key}", "-t", tag, "-f", str(dockerfile), tmp)
    return tag
