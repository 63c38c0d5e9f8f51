"""`slicer-cloud deploy cloud-init`: user-data that Debian's `cloud-init schema` accepts, whose
setup script is valid shell, and whose example in deploy/cloud-init/ is what the command writes."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from slicer_cloud.deploy.compose import cloud_init
from slicer_cloud.errors import SlicerCloudError

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "deploy" / "cloud-init" / "user-data.yaml"
EXAMPLE_ARGS = ["--domain", "slicer.example.org", "--repo", "https://github.com/example/slicer-cloud.git", "--ref", "main",
                "--email", "ops@example.org", "--", "--with-pacs", "--memory-per-user=8G"]


def schema(path: Path) -> subprocess.CompletedProcess:
    command = shutil.which("cloud-init")
    assert command, "cloud-init is missing: scripts/bootstrap.sh installs Debian's cloud-init"
    return subprocess.run([command, "schema", "--config-file", str(path)], capture_output=True, text=True, timeout=120)


def test_the_example_is_what_the_command_writes_and_is_valid(tmp_path: Path) -> None:
    out = tmp_path / "user-data.yaml"
    done = subprocess.run([sys.executable, "-m", "slicer_cloud.cli", "deploy", "cloud-init", "--out", str(out), *EXAMPLE_ARGS],
                          capture_output=True, text=True, timeout=120, env=os.environ)
    assert done.returncode == 0, done.stderr
    assert out.read_text() == EXAMPLE.read_text(), "deploy/cloud-init/user-data.yaml is stale: write it again with the command"
    checked = schema(EXAMPLE)
    assert checked.returncode == 0 and "Valid cloud-config" in checked.stdout, checked.stdout + checked.stderr


def test_the_schema_check_catches_a_broken_user_data(tmp_path: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text())
    data["package_update"] = "sometimes"  # must be a boolean
    broken = tmp_path / "broken.yaml"
    broken.write_text("#cloud-config\n" + yaml.safe_dump(data))
    assert schema(broken).returncode != 0


def test_the_setup_script_is_valid_shell_with_the_answers_private() -> None:
    data = yaml.safe_load(cloud_init(domain="lab.example.org", admin="teacher", repo="https://git.example.org/slicer-cloud.git", ref="v0.1.0"))
    files = {f["path"]: f for f in data["write_files"]}
    answers = files["/etc/slicer-cloud/answers.env"]
    assert answers["permissions"] == "0600"
    assert "SLICER_CLOUD_DOMAIN=lab.example.org" in answers["content"] and "SLICER_CLOUD_REF=v0.1.0" in answers["content"]
    script = files["/usr/local/sbin/slicer-cloud-setup"]["content"]
    assert subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True).returncode == 0
    assert "up -d" in script and "docker build" in script
    # the setup script reads its answers from the private file; nothing secret is in the user-data
    assert "SECRET" not in EXAMPLE.read_text() and "PASSWORD" not in EXAMPLE.read_text()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"domain": "bad domain"}, "is not a host name"),
        ({"repo": "https://x;rm -rf /"}, "an https://"),
        ({"ref": "main; reboot"}, "a branch or tag"),
        ({"options": ["--out=/etc"]}, "cannot be passed on"),
        ({"options": ["$(reboot)"]}, "cannot be passed on"),
        ({"email": "not-an-address"}, "is not an email address"),
    ],
)
def test_bad_answers_are_refused(kwargs: dict, message: str) -> None:
    args = {"domain": "lab.example.org", "admin": "admin", "repo": "https://git.example.org/s.git", "ref": "main", **kwargs}
    with pytest.raises(SlicerCloudError, match=message.replace("(", r"\(").replace("$", r"\$")):
        cloud_init(**args)
