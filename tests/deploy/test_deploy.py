"""The deployment kit in deploy/: the linters and schema checks CI runs, and the wiring no
linter sees (a metric name the server does not expose, a probe on the wrong path, a
selector that matches no pod, a mounted file that does not exist)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from driftloop.config import Settings
from driftloop.serving.app import create_app

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
_METRIC = re.compile(r"\bdriftloop_[a-z_]+\b")
_SUFFIXES = ("_bucket", "_sum", "_count", "_total")


def _require_tools(*names: str) -> None:
    missing = [n for n in names if shutil.which(n) is None and not Path(f"/usr/sbin/{n}").exists()]
    if missing:
        if os.environ.get("DEPLOY_TOOLS_REQUIRED"):
            pytest.fail(f"{missing} missing: run scripts/deploy_tools.sh")
        pytest.skip(f"{missing} missing (scripts/deploy_tools.sh installs them)")


def test_hadolint_kubernetes_validate_promtool_and_haproxy_pass() -> None:
    _require_tools("promtool", "haproxy")
    result = subprocess.run(["scripts/check_deploy.sh"], cwd=ROOT, capture_output=True,
                            text=True, check=False,
                            env={**os.environ, "BIN": str(Path(sys.executable).parent)})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "deploy kit: all checks passed" in result.stdout


def test_the_checks_catch_a_broken_kit(tmp_path: Path) -> None:
    """The script is not a rubber stamp: each tool refuses a planted mistake."""
    _require_tools("promtool", "haproxy")
    copy = tmp_path / "repo"
    shutil.copytree(DEPLOY, copy / "deploy")
    shutil.copytree(ROOT / "scripts", copy / "scripts")
    env = {**os.environ, "BIN": str(Path(sys.executable).parent)}
    mistakes = {
        "deploy/Dockerfile": ("USER 10001:10001", "USER root"),
        "deploy/kubernetes/deployment.yaml": ("readinessProbe:", "readinesProbe:"),
        "deploy/prometheus/alerts.yml": ("> 1600", "> 16000"),
        "deploy/haproxy/haproxy.cfg": ("balance leastconn", "balance fastest"),
    }
    for name, (good, bad) in mistakes.items():
        path = copy / name
        original = path.read_text()
        assert good in original
        path.write_text(original.replace(good, bad, 1))
        result = subprocess.run(["scripts/check_deploy.sh"], cwd=copy, capture_output=True,
                                text=True, check=False, env=env)
        assert result.returncode != 0, f"a broken {name} passed: {result.stdout}"
        path.write_text(original)


def _exposed_metrics(settings: Settings) -> set[str]:
    with TestClient(create_app(settings)) as client:
        client.post("/predict", json={"features": {
            "mean radius": 14.0, "mean texture": 19.0, "mean smoothness": 0.1,
            "worst area": 880.0, "size": "medium"}})
        body = client.get("/metrics").text
    return set(_METRIC.findall(body))


def _referenced_metrics() -> dict[str, set[str]]:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/driftloop.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][0]["definition"])
    rules = yaml.safe_load((DEPLOY / "prometheus/alerts.yml").read_text())
    return {
        "dashboard": {m for e in exprs for m in _METRIC.findall(e)},
        "alerts": {m for g in rules["groups"] for r in g["rules"]
                   for m in _METRIC.findall(r["expr"])},
    }


def test_the_dashboard_and_the_alerts_use_metrics_the_server_exposes(
        served_settings: Settings) -> None:
    exposed = _exposed_metrics(served_settings)
    for where, names in _referenced_metrics().items():
        assert names, where
        unknown = {n for n in names if n not in exposed
                   and not any(n.removesuffix(s) + s in exposed for s in _SUFFIXES)}
        assert not unknown, f"{where} uses metrics /metrics does not expose: {unknown}"


def test_the_dashboard_has_the_panels_operators_need() -> None:
    dashboard = json.loads((DEPLOY / "grafana/dashboards/driftloop.json").read_text())
    panels = {p["title"]: p for p in dashboard["panels"]}
    for title in ("Drift per feature (PSI)", "Loop state", "Traffic split", "Shadow evidence",
                  "Latency", "Requests and errors", "Queue depth", "Dropped observations"):
        assert title in panels
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    assert all(t["expr"] for p in dashboard["panels"] for t in p["targets"])


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "compose.yaml").read_text()))


def test_compose_runs_three_replicas_on_postgres_and_the_object_store() -> None:
    services = _compose()["services"]
    replicas = [s for name, s in services.items() if name.startswith("replica")]
    assert len(replicas) == 3
    for replica in replicas:
        env = replica["environment"]
        assert env["DRIFTLOOP_ARTIFACTS_URL"].startswith("s3://")
        assert env["DRIFTLOOP_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert "@postgres:" in env["DRIFTLOOP_DATABASE_URL"]
        assert env["AWS_ENDPOINT_URL"] == "http://minio:9000"
        assert replica["build"]["dockerfile"] == "deploy/Dockerfile"
    lb_env = services["balancer"]["environment"]
    assert {lb_env[f"REPLICA{i}"] for i in (1, 2, 3)} == {f"replica{i}:8000" for i in (1, 2, 3)}
    for needed in ("postgres", "minio", "prometheus", "grafana", "balancer"):
        assert needed in services


def test_every_file_compose_mounts_exists_where_the_service_reads_it() -> None:
    services = _compose()["services"]
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"
    grafana = {v.split(":")[1]: v.split(":")[0] for v in services["grafana"]["volumes"]}
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/driftloop.yaml")
                              .read_text())["providers"][0]
    assert grafana[provider["options"]["path"]] == "./grafana/dashboards"
    datasource = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yaml")
                                .read_text())["datasources"][0]
    assert datasource["url"] == "http://prometheus:9090"
    assert datasource["uid"] == "prometheus"  # the uid the dashboard's panels name
    prometheus = yaml.safe_load((DEPLOY / "prometheus/prometheus.yml").read_text())
    mounted = {v.split(":")[1] for v in services["prometheus"]["volumes"]}
    assert set(prometheus["rule_files"]) <= mounted
    targets = prometheus["scrape_configs"][0]["static_configs"][0]["targets"]
    assert sorted(targets) == [f"replica{i}:8000" for i in (1, 2, 3)]


def _manifests() -> dict[str, dict[str, Any]]:
    found = {}
    for path in sorted((DEPLOY / "kubernetes").glob("*.yaml")):
        document = yaml.safe_load(path.read_text())
        found[document["kind"]] = document
    return found


def test_the_kubernetes_objects_point_at_each_other() -> None:
    m = _manifests()
    pod = m["Deployment"]["spec"]["template"]
    labels = pod["metadata"]["labels"]
    assert m["Deployment"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    assert m["Service"]["spec"]["selector"].items() <= labels.items()
    assert m["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= labels.items()
    target = m["HorizontalPodAutoscaler"]["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", m["Deployment"]["metadata"]["name"])
    assert (m["PodDisruptionBudget"]["spec"]["minAvailable"]
            < m["HorizontalPodAutoscaler"]["spec"]["minReplicas"])
    container = pod["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    sources = {next(iter(s.values()))["name"]: next(iter(s)) for s in container["envFrom"]}
    assert sources == {m["ConfigMap"]["metadata"]["name"]: "configMapRef",
                       m["Secret"]["metadata"]["name"]: "secretRef"}
    # credentials only in the Secret, never in the ConfigMap
    assert not {k for k in m["ConfigMap"]["data"] if "SECRET" in k or "TOKEN" in k
                or "DATABASE_URL" in k}
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
