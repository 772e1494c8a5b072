"""The deployment in deploy/, checked offline as far as this machine allows.

No cluster, Helm or Docker engine runs here, so: every Kubernetes object (and every pod the Helm values and the
RayCluster describe) is validated against Kubernetes' own schemas, strictly (kubernetes-validate); the names that
tie the pieces together (Secrets, ConfigMaps, volumes, environment variables, the image, the Ray version, the run
queue limits) are checked against each other and against the code; the image's install resolves to pinned
versions only; and the image is built where a Docker engine answers.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from synapse_dagster.config.loading import PIPELINES_ENV, load_pipeline_file
from synapse_dagster.defs.pipeline import API_POOL
from synapse_dagster.defs.resources import LEDGER_URL_ENV

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S_VERSION = "1.32"
# what a process that runs steps reads from its environment (README, "Deployment")
STEP_ENV = {"SYNAPSE_HOST", "SYNAPSE_ACCESS_TOKEN", LEDGER_URL_ENV, PIPELINES_ENV}


def _objects(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _by_kind(kind: str) -> dict[str, dict[str, Any]]:
    found = [o for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for o in _objects(p) if o["kind"] == kind]
    return {o["metadata"]["name"]: o for o in found}


def _helm() -> dict[str, Any]:
    return yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())


def _user_deployment() -> dict[str, Any]:
    (deployment,) = _helm()["dagster-user-deployments"]["deployments"]
    return deployment


def _ray_cluster() -> dict[str, Any]:
    (cluster,) = _objects(DEPLOY / "kuberay" / "raycluster.yaml")
    return cluster


def _valid(obj: dict[str, Any]) -> None:
    try:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        pytest.fail(f"{obj['kind']} {obj['metadata']['name']}: {exc.message} at {list(exc.path)}")


def _pod(name: str, template: dict[str, Any]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "PodTemplate", "metadata": {"name": name}, "template": template}


def _user_code_pod() -> dict[str, Any]:
    """The pod the chart makes of the user-code deployment: its env sources, volumes and security settings."""
    d = _user_deployment()
    env_from = ([{"configMapRef": {"name": c["name"]}} for c in d["envConfigMaps"]]
                + [{"secretRef": {"name": s["name"]}} for s in d["envSecrets"]])
    container = {"name": d["name"], "image": f"{d['image']['repository']}:{d['image']['tag']}",
                 "args": ["dagster", "api", "grpc", *d["dagsterApiGrpcArgs"]], "envFrom": env_from,
                 "volumeMounts": d["volumeMounts"], "resources": d["resources"]}
    return _pod(d["name"], {"spec": {"containers": [container], "volumes": d["volumes"],
                                     "securityContext": d["podSecurityContext"]}})


def _env_sources(container: dict[str, Any]) -> tuple[set[str], set[str]]:
    refs = container.get("envFrom", [])
    return ({r["configMapRef"]["name"] for r in refs if "configMapRef" in r},
            {r["secretRef"]["name"] for r in refs if "secretRef" in r})


def _provided_env(config_maps: set[str], secrets: set[str]) -> set[str]:
    maps, kept = _by_kind("ConfigMap"), _by_kind("Secret")
    assert config_maps <= maps.keys() and secrets <= kept.keys(), "an env source names no object in deploy/k8s"
    return ({k for n in config_maps for k in maps[n]["data"]} | {k for n in secrets for k in kept[n]["stringData"]})


def test_every_kubernetes_object_and_pod_is_valid() -> None:
    objects = [o for p in sorted((DEPLOY / "k8s").glob("*.yaml")) for o in _objects(p)]
    assert {o["kind"] for o in objects} == {"Secret", "ConfigMap", "PersistentVolumeClaim"}
    cluster = _ray_cluster()
    pods = [_user_code_pod(), _pod("ray-head", cluster["spec"]["headGroupSpec"]["template"])]
    pods += [_pod(g["groupName"], g["template"]) for g in cluster["spec"]["workerGroupSpecs"]]
    for obj in objects + pods:
        _valid(obj)


def test_a_broken_object_is_caught() -> None:
    """The validation above can fail: a misspelt field in a pod is refused."""
    pod = _user_code_pod()
    pod["template"]["spec"]["containers"][0]["volumeMount"] = pod["template"]["spec"]["containers"][0].pop("volumeMounts")
    with pytest.raises(pytest.fail.Exception, match="volumeMount"):
        _valid(pod)


def test_the_example_pipeline_file_loads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (pipelines,) = [m["data"]["pipelines.yaml"] for m in _by_kind("ConfigMap").values() if "pipelines.yaml" in m["data"]]
    env = _by_kind("ConfigMap")["synapse-dagster-env"]["data"]
    mounted = {v["mountPath"] for v in _user_deployment()["volumeMounts"] if v["name"] == "pipelines"}
    assert str(Path(env[PIPELINES_ENV]).parent) in mounted, f"{PIPELINES_ENV} is not on the pipelines volume"
    (tmp_path / "pipelines.yaml").write_text(pipelines)
    monkeypatch.delenv(PIPELINES_ENV, raising=False)
    loaded, _ = load_pipeline_file(str(tmp_path / "pipelines.yaml"))
    kinds = {p.name: p.engine.kind for p in loaded.pipelines}
    assert kinds == {"scans": "ray", "labels": "local"}


def test_user_code_runs_and_ray_workers_get_what_steps_read() -> None:
    d = _user_deployment()
    user_code = _provided_env({c["name"] for c in d["envConfigMaps"]}, {s["name"] for s in d["envSecrets"]})
    assert STEP_ENV | {"RAY_ADDRESS"} <= user_code
    assert d["includeConfigInLaunchedRuns"]["enabled"], "run pods would not get the user code's environment"
    for group in _ray_cluster()["spec"]["workerGroupSpecs"]:
        (container,) = group["template"]["spec"]["containers"]
        assert STEP_ENV <= _provided_env(*_env_sources(container)), group["groupName"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        assert {m["name"]: m["mountPath"] for m in d["volumeMounts"]}.items() <= mounts.items(), \
            "a Ray worker must see the sources and the pipeline file where the run pods do"


def test_the_pieces_run_one_image_one_ray_and_one_code_location() -> None:
    d, cluster = _user_deployment(), _ray_cluster()
    image = f"{d['image']['repository']}:{d['image']['tag']}"
    ray_pods = [cluster["spec"]["headGroupSpec"]["template"]] + [g["template"] for g in cluster["spec"]["workerGroupSpecs"]]
    assert {c["image"] for t in ray_pods for c in t["spec"]["containers"]} == {image}
    locked = re.search(r"^ray==(\S+)$", (ROOT / "requirements.lock").read_text(), re.M)
    assert locked and cluster["spec"]["rayVersion"] == locked.group(1)
    module = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["dagster"]["module_name"]
    assert d["dagsterApiGrpcArgs"] == ["-m", module]
    assert f'"-m", "{module}"' in (DEPLOY / "Dockerfile").read_text()
    service = f"{cluster['metadata']['name']}-head-svc:6379"  # the Service KubeRay makes for the head's GCS port
    assert _by_kind("ConfigMap")["synapse-dagster-env"]["data"]["RAY_ADDRESS"] == service


def test_helm_values_set_the_instance_files_run_queue_and_pool() -> None:
    instance_file = yaml.safe_load((DEPLOY / "dagster-postgres.yaml").read_text())
    instance = instance_file["concurrency"]
    helm = _helm()
    assert helm["runLauncher"]["type"] == "K8sRunLauncher"
    assert helm["postgresql"]["postgresqlScheme"] == instance_file["storage"]["postgres"]["postgres_db"]["scheme"]
    assert helm["global"]["postgresqlSecretName"] in _by_kind("Secret")
    assert "postgresql-password" in _by_kind("Secret")[helm["global"]["postgresqlSecretName"]]["stringData"]
    runs = helm["concurrency"]["runs"]
    assert helm["concurrency"]["enabled"] and helm["concurrency"]["pools"]["defaultLimit"] == instance["pools"]["default_limit"]
    assert runs["maxConcurrentRuns"] == instance["runs"]["max_concurrent_runs"]
    as_instance = [{"key": t["key"], "limit": t["limit"], "value": (
        {"applyLimitPerUniqueValue": t["value"]["applyLimitPerUniqueValue"]} if isinstance(t["value"], dict) else t["value"])}
        for t in runs["tagConcurrencyLimits"]]
    assert as_instance == [{"key": t["key"], "limit": t["limit"], "value": t["value"]}
                           for t in instance["runs"]["tag_concurrency_limits"]]
    assert API_POOL in (DEPLOY / "helm" / "values.yaml").read_text()


def test_the_image_copies_what_exists_and_installs_only_pinned_versions(tmp_path: Path) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    copied = [src for line in dockerfile.splitlines() if line.startswith("COPY") and "--from" not in line
              for src in line.split()[1:-1]]
    assert copied and all((ROOT / src).exists() for src in copied), copied
    report = tmp_path / "report.json"
    install = re.search(r'pip install --prefix=/install (.+)$', dockerfile, re.M).group(1).split()
    args = [a.strip('"') for a in install]
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet",
                           "--disable-pip-version-check", "--report", str(report), *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]  # resolving needs the package index, as the build does
    pins = {}
    for lock in ("requirements.lock", "deploy/ray-nodes.lock"):
        for line in (ROOT / lock).read_text().splitlines():
            name, _, version = line.split("#")[0].strip().partition("==")
            if version:
                pins[_norm(name)] = version
    installed = {_norm(i["metadata"]["name"]): i["metadata"]["version"] for i in json.loads(report.read_text())["install"]}
    installed.pop("synapse-dagster")
    assert {"ray", "dagster-postgres", "dagster-ray", "opencensus"} <= installed.keys()
    unpinned = {n: v for n, v in installed.items() if pins.get(n) != v}
    assert not unpinned, f"the image would install versions no lock pins: {unpinned}"


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _docker_engine() -> bool:
    return shutil.which("docker") is not None and subprocess.run(
        ["docker", "info"], capture_output=True, timeout=30).returncode == 0


@pytest.mark.skipif(not _docker_engine(), reason="no Docker engine answers here (the docker client alone cannot build)")
def test_the_image_builds_and_loads_the_code_location() -> None:
    tag = "synapse-dagster:test"
    subprocess.run(["docker", "build", "-f", "deploy/Dockerfile", "-t", tag, "."], cwd=ROOT, check=True, timeout=1800)
    done = subprocess.run(["docker", "run", "--rm", tag, "python", "-c",
                           "import ray, dagster_postgres, dagster_ray, synapse_dagster.cli.main; print(ray.__version__)"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
