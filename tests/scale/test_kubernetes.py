"""Kubernetes, checked offline: every manifest in deploy/kubernetes/ validates against the schemas
of a current Kubernetes (kubernetes-validate, strict); the hub values build KubeSpawner pods (per
profile) that run the slicer-cloud image's single-user server unprivileged, with limits, a GPU
where asked and the user's own volume; the Dask cluster file is what the code renders, with
TLS, limits and unprivileged pods, and the API's engine points at it."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import kubernetes_validate
import pytest
import yaml

from slicer_cloud import __version__
from slicer_cloud.compute.jobs.kubernetes import API_ENV, dask_cluster_spec
from tests.conftest import run_async

DEPLOY = Path(__file__).parents[2] / "deploy" / "kubernetes"
K8S_VERSION = "1.37.0"  # the newest schemas kubernetes-validate carries
IMAGE = f"slicer-cloud:{__version__}"


def manifests() -> list[tuple[str, dict]]:
    found = []
    for path in sorted(DEPLOY.glob("*.yaml")):
        if path.name.endswith("-values.yaml"):
            continue  # chart values, not manifests: checked through KubeSpawner below
        found += [(f"{path.name}#{n}", doc) for n, doc in enumerate(yaml.safe_load_all(path.read_text())) if doc]
    return found


def as_pod(name: str, pod_spec: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": pod_spec}


def validate(doc: dict) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def assert_unprivileged(pod_spec: dict) -> None:
    pod_context = pod_spec.get("securityContext") or {}
    assert pod_context.get("runAsNonRoot") is True and pod_context.get("runAsUser", 1000) != 0
    assert not pod_spec.get("hostNetwork") and not pod_spec.get("hostPID") and not pod_spec.get("hostIPC")
    for container in pod_spec["containers"]:
        context = container.get("securityContext") or {}
        assert context.get("allowPrivilegeEscalation") is False and not context.get("privileged")
        assert container["resources"]["limits"]["cpu"] and container["resources"]["limits"]["memory"]
        assert not any(volume.get("hostPath") for volume in pod_spec.get("volumes", []))


@pytest.mark.parametrize("name,doc", manifests(), ids=lambda value: value if isinstance(value, str) else "")
def test_every_shipped_manifest_validates(name: str, doc: dict):
    if doc["kind"] == "DaskCluster":  # a custom resource: its pods and service are core kinds
        validate(as_pod("scheduler", doc["spec"]["scheduler"]["spec"]))
        validate(as_pod("worker", doc["spec"]["worker"]["spec"]))
        validate({"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"}, "spec": doc["spec"]["scheduler"]["service"]})
        return
    validate(doc)
    if doc["kind"] == "Deployment":
        pod = doc["spec"]["template"]["spec"]
        assert_unprivileged(pod)
        assert {c["image"] for c in pod["containers"]} == {IMAGE}


def test_a_broken_manifest_is_refused():
    # the control: the validator does catch a wrong field
    deployment = next(doc for _, doc in manifests() if doc["kind"] == "Deployment")
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {"privileged": False}  # a typo
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)
    broken = yaml.safe_load(yaml.safe_dump(deployment))
    broken["spec"]["replicas"] = "one"
    with pytest.raises(kubernetes_validate.ValidationError):
        validate(broken)


def test_the_dask_cluster_file_is_what_the_code_renders_and_the_api_points_at_it():
    shipped = yaml.safe_load((DEPLOY / "dask-cluster.yaml").read_text())
    assert shipped == dask_cluster_spec()  # python -m slicer_cloud.compute.jobs.kubernetes renders it
    worker = shipped["spec"]["worker"]["spec"]
    scheduler = shipped["spec"]["scheduler"]["spec"]
    for pod in (worker, scheduler):
        assert_unprivileged(pod)
        assert pod["containers"][0]["image"] == IMAGE
    worker_args = worker["containers"][0]["args"]
    assert worker_args[:3] == ["dask", "worker", API_ENV["SLICER_CLOUD_SCHEDULER"]] and "--tls-cert" in worker_args
    assert "--nthreads" in worker_args and worker_args[worker_args.index("--nthreads") + 1] == "1"
    assert ["--protocol", "tls"] == scheduler["containers"][0]["args"][4:6]
    assert {"name": "data", "mountPath": "/data"} in worker["containers"][0]["volumeMounts"]
    api = next(doc for _, doc in manifests() if doc["kind"] == "Deployment")
    container = api["spec"]["template"]["spec"]["containers"][0]
    args = container["args"]
    assert args[args.index("--engine") + 1] == "dask" and args[args.index("--scheduler") + 1] == API_ENV["SLICER_CLOUD_SCHEDULER"]
    assert args[args.index("--data") + 1] == "/data"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert all(env[k] == v for k, v in API_ENV.items() if k.startswith("SLICER_CLOUD_DASK_TLS_"))


# --- the hub: the chart's values as KubeSpawner settings ---------------------------------------
def kubespawner_config(values: dict) -> dict:
    """What the Zero to JupyterHub chart sets on KubeSpawner from the ``singleuser`` values we use."""
    user = values["singleuser"]
    storage = user["storage"]
    volume = storage["dynamic"]["volumeNameTemplate"]
    return {
        "image": f"{user['image']['name']}:{user['image']['tag']}",
        "cmd": user["cmd"],
        "default_url": user["defaultUrl"],
        "uid": user["uid"],
        "fs_gid": user["fsGid"],
        "allow_privilege_escalation": user["allowPrivilegeEscalation"],
        "extra_pod_config": user["extraPodConfig"],
        "environment": user["extraEnv"],
        "cpu_guarantee": user["cpu"]["guarantee"],
        "cpu_limit": user["cpu"]["limit"],
        "mem_guarantee": user["memory"]["guarantee"],
        "mem_limit": user["memory"]["limit"],
        "pvc_name_template": storage["dynamic"]["pvcNameTemplate"],
        "storage_pvc_ensure": storage["type"] == "dynamic",
        "storage_capacity": storage["capacity"],
        "volumes": [{"name": volume, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}],
        "volume_mounts": [{"name": volume, "mountPath": storage["homeMountPath"]}],
        "profile_list": user["profileList"],
        **values["hub"]["config"].get("KubeSpawner", {}),  # hub.config passes traits through as they are
    }


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: none, cluster: {server: "https://127.0.0.1:9"}}]
users: [{name: none, user: {token: unused}}]
contexts: [{name: none, context: {cluster: none, user: none}}]
current-context: none
"""


@pytest.fixture(autouse=True, scope="module")
def no_cluster(tmp_path_factory):
    """KubeSpawner loads a client configuration when it is made; building a pod never calls the
    API, so one that points nowhere (a closed loopback port) is enough."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(KUBECONFIG)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KUBECONFIG", str(path))
        yield


def pod_for(profile: str, user: str = "alice") -> dict:
    from kubernetes_asyncio.client import ApiClient
    from kubespawner import KubeSpawner

    values = yaml.safe_load((DEPLOY / "jupyterhub-values.yaml").read_text())

    async def build() -> dict:
        spawner = KubeSpawner(_mock=True, user=SimpleNamespace(name=user, id=1, url=f"/user/{user}/"),
                              **kubespawner_config(values))
        spawner.user_options = {"profile": profile}
        await spawner.load_user_options()
        pod = await spawner.get_pod_manifest()
        async with ApiClient() as client:
            return client.sanitize_for_serialization(pod)

    # In a thread of its own: Playwright's sync API may hold this thread's event loop in a full run.
    return run_async(build())


@pytest.mark.parametrize("profile", ["cpu", "gpu"])
def test_the_hubs_user_pods_run_the_image_unprivileged_with_limits_and_their_own_volume(profile: str):
    pod = pod_for(profile)
    validate(pod)
    spec = pod["spec"]
    container = spec["containers"][0]
    assert container["image"] == IMAGE
    assert container["args"][:3] == ["python", "-m", "slicer_cloud.hub.singleuser"] or \
        container.get("command", [])[:3] == ["python", "-m", "slicer_cloud.hub.singleuser"]
    assert spec["securityContext"]["runAsNonRoot"] is True and spec["securityContext"]["fsGroup"] == 1000
    assert container["securityContext"]["runAsUser"] == 1000
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["privileged"] is False and container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert spec["automountServiceAccountToken"] is False
    assert spec["volumes"][0]["persistentVolumeClaim"]["claimName"] == "claim-alice"
    assert {"name": "volume-alice", "mountPath": "/home/slicer/work"} in [
        {k: m[k] for k in ("name", "mountPath")} for m in container["volumeMounts"]]
    limits, requests = container["resources"]["limits"], container["resources"]["requests"]
    if profile == "cpu":
        assert (float(limits["cpu"]), int(limits["memory"]), int(requests["memory"])) == (4, 8 * 1024**3, 3 * 1024**3)
        assert "nvidia.com/gpu" not in limits and "nodeSelector" not in spec
    else:
        assert (float(limits["cpu"]), int(limits["memory"]), limits["nvidia.com/gpu"]) == (8, 32 * 1024**3, "1")
        assert spec["nodeSelector"] == {"slicer-cloud/pool": "gpu"}


def test_users_pods_are_kept_apart_and_idle_ones_culled():
    values = yaml.safe_load((DEPLOY / "jupyterhub-values.yaml").read_text())
    policy = values["singleuser"]["networkPolicy"]
    # the chart's ingress rule for users' pods admits only the hub and the proxy; no private egress
    assert policy["enabled"] is True and policy["egressAllowRules"]["privateIPs"] is False
    assert policy["egressAllowRules"]["cloudMetadataServer"] is False
    assert values["hub"]["networkPolicy"]["enabled"] and values["proxy"]["chp"]["networkPolicy"]["enabled"]
    assert values["cull"]["enabled"] is True and values["cull"]["timeout"] > 0
    assert pod_for("cpu", "bob")["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == "claim-bob"
    assert re.fullmatch(r"\d+\.\d+\.\d+", values["singleuser"]["image"]["tag"]) and values["singleuser"]["image"]["tag"] == __version__
