"""deploy/kubernetes, checked as a platform team would apply it.

Each kustomization (base, overlays/single, overlays/ha) is assembled with `kubectl kustomize`,
exactly as `kubectl apply -k` would, and every object is validated offline against the
Kubernetes OpenAPI schemas shipped in the `kubernetes-validate` package (strict: unknown fields
fail). Then the things that matter in production are checked: probes, drain arithmetic,
security context, where secrets come from, HPA/PDB wiring and the store of each overlay.

kubectl must be installed (it is on the project's machines and CI). Without it these tests
FAIL: a silent skip would let broken manifests through.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "kubernetes"
KUSTOMIZATIONS = {
    "base": K8S / "base",
    "single": K8S / "overlays" / "single",
    "ha": K8S / "overlays" / "ha",
}
OVERLAYS = ("single", "ha")
EXAMPLES = sorted(K8S.rglob("*.example.yaml"))
# The oldest Kubernetes minor still commonly run, the one of the kubectl on our machines, and
# the newest whose schemas kubernetes-validate ships.
K8S_VERSIONS = ("1.29", "1.32", kubernetes_validate.latest_version())

APP_PORT = 8000
CONTAINER = "facade"
SECRET_NAME = "facade-secrets"
PLACEHOLDER = "REPLACE_ME"
# Paths a container may write to; everything else is the read-only root filesystem.
WRITABLE_PATHS = {"/tmp", "/tmp/facade-metrics", "/var/lib/facade"}
GRACE_MARGIN_S = 5


# ---------------------------------------------------------------------------------------------
# Assembling and reading the manifests


def _kubectl() -> str:
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not kubectl:
        pytest.fail(
            "kubectl not found on PATH (or $KUBECTL): the deploy tests assemble the manifests "
            "with `kubectl kustomize` and cannot run without it. Install kubectl >= 1.27.",
            pytrace=False,
        )
    return kubectl


@functools.cache
def _render(name: str) -> str:
    proc = subprocess.run(
        [_kubectl(), "kustomize", str(KUSTOMIZATIONS[name])],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {name} failed:\n{proc.stderr}", pytrace=False)
    return proc.stdout


def rendered(name: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(_render(name)) if doc]


def load_yaml_file(path: Path) -> list[dict]:
    with path.open(encoding="utf-8") as fh:
        return [doc for doc in yaml.safe_load_all(fh) if doc]


def only(docs: list[dict], kind: str) -> dict:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected exactly one {kind}, found {len(found)}"
    return found[0]


def kinds(docs: list[dict]) -> list[str]:
    return [d["kind"] for d in docs]


def pod_spec(docs: list[dict]) -> dict:
    return only(docs, "Deployment")["spec"]["template"]["spec"]


def container(docs: list[dict]) -> dict:
    containers = {c["name"]: c for c in pod_spec(docs)["containers"]}
    assert CONTAINER in containers, f"no container named {CONTAINER!r}"
    return containers[CONTAINER]


def env_of(docs: list[dict]) -> dict[str, dict]:
    env = container(docs).get("env", [])
    names = [e["name"] for e in env]
    assert len(names) == len(set(names)), f"duplicate env vars: {names}"
    return {e["name"]: e for e in env}


def env_value(docs: list[dict], name: str) -> str:
    entry = env_of(docs)[name]
    assert "value" in entry and "valueFrom" not in entry, f"{name} should be a plain value"
    return entry["value"]


def resolve_port(ctr: dict, port) -> int:
    """A probe's or Service's port (number or name) as the container port number."""
    if isinstance(port, int):
        return port
    by_name = {p["name"]: p["containerPort"] for p in ctr.get("ports", []) if "name" in p}
    assert port in by_name, f"port name {port!r} is not a container port ({by_name})"
    return by_name[port]


def parse_cpu(quantity) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def config_map(docs: list[dict]) -> dict:
    """The ConfigMap the Deployment mounts as its config volume."""
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    name = volumes["config"]["configMap"]["name"]
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    assert name in cms, f"config volume refers to ConfigMap {name!r}, not in the output"
    return cms[name]


def facade_config(docs: list[dict]) -> dict:
    return yaml.safe_load(config_map(docs)["data"]["facade.yaml"])


def scalars(node):
    if isinstance(node, dict):
        for value in node.values():
            yield from scalars(value)
    elif isinstance(node, list):
        for value in node:
            yield from scalars(value)
    elif isinstance(node, str):
        yield node


# ---------------------------------------------------------------------------------------------
# What a leaked secret looks like

SECRETISH_NAME = re.compile(r"(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?)$", re.I)
URL_WITH_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@]*:[^/\s@]+@", re.I)
KNOWN_KEY_PREFIX = re.compile(r"\b(sk-|sk_|pk_|rk_|AKIA|AIza|ghp_|gho_|github_pat_|xox[abp]-)\w")
TOKENISH = re.compile(r"[A-Za-z0-9_+=-]{20,}")


def looks_like_secret(text: str) -> bool:
    if URL_WITH_PASSWORD.search(text) or KNOWN_KEY_PREFIX.search(text):
        return True
    # A long run of letters AND digits: an API key, a password, a base64 blob.
    for run in TOKENISH.findall(text):
        if re.search(r"[A-Za-z]", run) and re.search(r"\d", run):
            return True
    return False


def test_secret_detector_bites():
    # Assembled at run time so no key-shaped string sits in the repository.
    leaks = [
        "postgresql://facade:" + "hunter" + "2@db:5432/facade",
        "redis://:" + "s3cret" + "@redis:6379/0",
        "sk-" + "a1B2" * 8,
        "Zm9v" + "YmFy" * 6 + "1",
    ]
    fine = [
        "sqlite:////var/lib/facade/facade.db",
        "postgresql://facade@db:5432/facade",
        "/etc/facade/facade.yaml",
        "0.0.0.0:8000",
        "${UPSTREAM_API_KEY}",
        "https://api.openai.com/v1",
    ]
    assert all(looks_like_secret(s) for s in leaks)
    assert not any(looks_like_secret(s) for s in fine)


# ---------------------------------------------------------------------------------------------
# Schemas and the shape of the kustomizations


def schema_problem(doc: dict, version: str) -> str | None:
    """Why `doc` is not valid for Kubernetes `version` (strict: unknown fields fail), or None."""
    try:
        kubernetes_validate.validate(doc, version, strict=True)
    except kubernetes_validate.ValidationError as err:
        where = ".".join(str(p) for p in err.path) or "(top)"
        return f"{where}: {err.message} (Kubernetes {version} schema)"
    except kubernetes_validate.SchemaNotFoundError as err:
        return err.message
    return None


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_kustomization_validates_against_kubernetes_schemas(name, version):
    docs = rendered(name)
    assert docs, f"kubectl kustomize {name} produced nothing"
    problems = [
        f"{name}: {doc['kind']}/{doc['metadata']['name']}: {problem}"
        for doc in docs
        if (problem := schema_problem(doc, version))
    ]
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(K8S)))
def test_examples_validate_against_kubernetes_schemas(path, version):
    problems = [
        f"{path.name}: {doc['kind']}/{doc['metadata']['name']}: {problem}"
        for doc in load_yaml_file(path)
        if (problem := schema_problem(doc, version))
    ]
    assert not problems, "\n".join(problems)


def test_there_are_examples_for_secrets_and_ingress():
    names = {p.relative_to(K8S).as_posix() for p in EXAMPLES}
    assert {"overlays/single/secret.example.yaml", "overlays/ha/secret.example.yaml"} <= names
    assert any(load_yaml_file(p)[0]["kind"] == "Ingress" for p in EXAMPLES)


def _kustomization_refs(directory: Path) -> set[Path]:
    """Files and directories a kustomization.yaml names (resources, patches, generators)."""
    (kust,) = load_yaml_file(directory / "kustomization.yaml")
    refs = list(kust.get("resources", [])) + list(kust.get("components", []))
    refs += [p["path"] for p in kust.get("patches", []) if "path" in p]
    refs += list(kust.get("patchesStrategicMerge", []))
    for gen in kust.get("configMapGenerator", []) + kust.get("secretGenerator", []):
        refs += [f.split("=", 1)[-1] for f in gen.get("files", [])]
        refs += list(gen.get("envs", []))
    return {(directory / ref).resolve() for ref in refs}


def test_every_manifest_file_is_assembled_or_an_example():
    """Nothing under deploy/kubernetes escapes the checks above by not being in a kustomization;
    and no example (placeholder Secret, sample Ingress) is applied by `kubectl apply -k`."""
    referenced: set[Path] = set()
    for directory in KUSTOMIZATIONS.values():
        referenced |= _kustomization_refs(directory)
    examples = {p.resolve() for p in EXAMPLES}
    assert not referenced & examples, "an *.example.yaml is listed in a kustomization"
    files = {p.resolve() for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml"}
    orphans = files - referenced - examples
    assert not orphans, f"YAML files no kustomization uses: {sorted(map(str, orphans))}"
    for name in KUSTOMIZATIONS:
        assert "Secret" not in kinds(rendered(name)), f"{name} would apply a Secret"
        assert "Ingress" not in kinds(rendered(name)), f"{name} would apply the Ingress example"


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_objects_present(name):
    got = kinds(rendered(name))
    for kind in ("Deployment", "Service", "ConfigMap"):
        assert got.count(kind) == 1, f"{name}: {kind} x{got.count(kind)}"


# ---------------------------------------------------------------------------------------------
# Probes, ports, drain


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_probes_hit_the_app_endpoints_on_the_app_port(name):
    docs = rendered(name)
    ctr = container(docs)
    bind_port = int(env_value(docs, "FACADE_BIND").rsplit(":", 1)[1])
    assert bind_port == APP_PORT
    assert APP_PORT in [p["containerPort"] for p in ctr["ports"]]
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    if "startupProbe" in ctr:
        expected["startupProbe"] = "/healthz"
    for probe, path in expected.items():
        assert probe in ctr, f"{name}: no {probe}"
        get = ctr[probe]["httpGet"]
        assert get["path"] == path, f"{name}: {probe} on {get['path']}, want {path}"
        assert resolve_port(ctr, get["port"]) == bind_port, f"{name}: {probe} port"
        assert get.get("scheme", "HTTP") == "HTTP"


def test_probe_paths_are_served_by_the_app(tmp_path):
    from facade import create_app
    from facade.settings import Settings

    # The built-in demo config: no network, no secrets needed.
    app = create_app(settings=Settings.from_env({}, database_url=f"sqlite:///{tmp_path}/f.db"))
    try:
        client = app.test_client()
        for path in ("/healthz", "/readyz"):
            assert client.get(path).status_code == 200, f"the app does not serve {path}"
    finally:
        app.facade_close()


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_service_reaches_the_pods(name):
    docs = rendered(name)
    svc = only(docs, "Service")
    labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    selector = svc["spec"]["selector"]
    assert selector and selector.items() <= labels.items(), "Service selects no Facade pod"
    ctr = container(docs)
    for port in svc["spec"]["ports"]:
        assert resolve_port(ctr, port.get("targetPort", port["port"])) == APP_PORT


def _prestop_sleep_s(ctr: dict) -> int:
    pre_stop = ctr["lifecycle"]["preStop"]
    if "sleep" in pre_stop:  # the native sleep action (Kubernetes >= 1.30)
        return int(pre_stop["sleep"]["seconds"])
    command = pre_stop["exec"]["command"]
    words = " ".join(command).split()
    assert "sleep" in words, f"preStop should sleep, got {command}"
    return int(words[words.index("sleep") + 1])


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_grace_period_covers_prestop_and_gunicorn_drain(name):
    docs = rendered(name)
    spec = pod_spec(docs)
    ctr = container(docs)
    pre_stop = _prestop_sleep_s(ctr)
    graceful = int(env_value(docs, "FACADE_GRACEFUL_TIMEOUT_S"))
    grace = spec["terminationGracePeriodSeconds"]
    assert 2 <= pre_stop <= 15, "preStop should wait a few seconds for endpoint removal"
    assert graceful >= 10
    assert grace - (pre_stop + graceful) >= GRACE_MARGIN_S, (
        f"{name}: terminationGracePeriodSeconds {grace} must exceed preStop {pre_stop} s "
        f"+ FACADE_GRACEFUL_TIMEOUT_S {graceful} s by at least {GRACE_MARGIN_S} s"
    )


def test_gunicorn_config_reads_the_variables_the_manifests_set():
    # gunicorn.conf.py loads facade/gunicorn_conf.py, whose values come from facade/settings.py.
    text = "".join(
        (ROOT / path).read_text(encoding="utf-8")
        for path in ("gunicorn.conf.py", "facade/gunicorn_conf.py", "facade/settings.py")
    )
    env = env_of(rendered("base"))
    for name in (
        "FACADE_BIND",
        "FACADE_WORKERS",
        "FACADE_WORKER_CONNECTIONS",
        "FACADE_KEEPALIVE_S",
        "FACADE_GRACEFUL_TIMEOUT_S",
    ):
        assert name in env, f"the Deployment does not set {name}"
        assert f'"{name}"' in text, f"gunicorn.conf.py no longer reads {name}"


# ---------------------------------------------------------------------------------------------
# Resources and workers


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_workers_follow_the_cpu_limit(name):
    docs = rendered(name)
    entry = env_of(docs)["FACADE_WORKERS"]
    assert "value" not in entry
    ref = entry["valueFrom"]["resourceFieldRef"]
    assert ref["resource"] == "limits.cpu"
    assert str(ref.get("divisor", "1")) == "1"
    assert ref.get("containerName", CONTAINER) == CONTAINER
    resources = container(docs)["resources"]
    limit = parse_cpu(resources["limits"]["cpu"])
    assert limit >= 1 and limit == int(limit), "CPU limit should be whole cores (= workers)"
    assert "memory" in resources["limits"]
    # Requests are what the scheduler reserves and what HPA percentages are measured against.
    assert parse_cpu(resources["requests"]["cpu"]) > 0
    assert "memory" in resources["requests"]


# ---------------------------------------------------------------------------------------------
# Security


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_runs_as_non_root_with_least_privilege(name):
    docs = rendered(name)
    spec = pod_spec(docs)
    pod_sc = spec.get("securityContext", {})
    for ctr in spec["containers"] + spec.get("initContainers", []):
        sc = ctr.get("securityContext", {})
        merged = {**pod_sc, **sc}
        assert merged.get("runAsNonRoot") is True, ctr["name"]
        assert isinstance(merged.get("runAsUser"), int) and merged["runAsUser"] > 0
        assert sc.get("allowPrivilegeEscalation") is False, ctr["name"]
        assert sc.get("readOnlyRootFilesystem") is True, ctr["name"]
        assert sc.get("privileged", False) is False
        assert sc.get("capabilities", {}).get("drop") == ["ALL"]
        assert not sc.get("capabilities", {}).get("add")
        assert merged.get("seccompProfile", {}).get("type") == "RuntimeDefault"
    assert spec.get("automountServiceAccountToken") is False
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        assert not spec.get(key)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_writable_volumes_only_where_needed(name):
    docs = rendered(name)
    spec = pod_spec(docs)
    volumes = {v["name"]: v for v in spec["volumes"]}
    writable = set()
    for mount in container(docs)["volumeMounts"]:
        volume = volumes[mount["name"]]
        assert "hostPath" not in volume
        if "configMap" in volume or "secret" in volume:
            assert mount.get("readOnly") is True, f"{mount['name']} should be read-only"
        elif not mount.get("readOnly"):
            assert "emptyDir" in volume or "persistentVolumeClaim" in volume
            assert mount["mountPath"] in WRITABLE_PATHS, mount["mountPath"]
            writable.add(mount["mountPath"])
    assert "/tmp" in writable, "gunicorn and Werkzeug need a writable /tmp"
    for volume in volumes.values():
        if "emptyDir" in volume:
            assert volume["emptyDir"].get("sizeLimit"), "an emptyDir without sizeLimit"
    metrics_dir = env_value(docs, "PROMETHEUS_MULTIPROC_DIR")
    assert any(metrics_dir == p or metrics_dir.startswith(p + "/") for p in writable)


def test_pod_user_matches_the_image_user():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    users = re.findall(r"^\s*USER\s+(\S+)", text, re.M | re.I)
    assert users, "Dockerfile sets no USER"
    uid, _, gid = users[-1].partition(":")
    pod_sc = pod_spec(rendered("base"))["securityContext"]
    assert str(pod_sc["runAsUser"]) == uid
    if gid:
        assert str(pod_sc["runAsGroup"]) == gid


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_no_plaintext_secrets(name):
    docs = rendered(name)
    for env_name, entry in env_of(docs).items():
        if SECRETISH_NAME.search(env_name):
            assert "value" not in entry, f"{env_name} must come from a Secret"
            assert "secretKeyRef" in entry["valueFrom"], f"{env_name} must come from a Secret"
        if "value" in entry:
            assert not looks_like_secret(entry["value"]), f"{env_name} holds a credential"
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["name"] == SECRET_NAME
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        for key, text in cm.get("data", {}).items():
            for value in scalars(yaml.safe_load(text)) if key.endswith(".yaml") else [text]:
                assert not looks_like_secret(value), f"ConfigMap {key}: {value!r}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_secret_example_is_placeholders_and_covers_what_the_pods_need(overlay):
    (secret,) = load_yaml_file(KUSTOMIZATIONS[overlay] / "secret.example.yaml")
    assert secret["kind"] == "Secret" and secret["metadata"]["name"] == SECRET_NAME
    assert "data" not in secret, "use stringData with placeholders, never base64 data"
    values = secret["stringData"]
    for key, value in values.items():
        assert PLACEHOLDER in value, f"{key} is not a {PLACEHOLDER} placeholder"
        assert not looks_like_secret(value.replace(PLACEHOLDER, "")), key
    for env_name, entry in env_of(rendered(overlay)).items():
        ref = entry.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            assert ref["key"] in values, f"secret.example.yaml lacks {ref['key']} ({env_name})"


# ---------------------------------------------------------------------------------------------
# The configuration file


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_config_is_mounted_where_facade_config_points(name):
    docs = rendered(name)
    cm = config_map(docs)
    mounts = {m["name"]: m for m in container(docs)["volumeMounts"]}
    config_path = env_value(docs, "FACADE_CONFIG")
    directory, _, filename = config_path.rpartition("/")
    assert mounts["config"]["mountPath"] == directory
    assert filename in cm["data"]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_config_has_the_documented_shape(name):
    docs = rendered(name)
    config = facade_config(docs)
    providers = {p["name"]: p for p in config["providers"]}
    for provider in providers.values():
        assert provider["kind"] in {"openai", "azure", "anthropic", "gemini", "simulator"}
        assert provider["base_url"].startswith(("http://", "https://"))
        assert re.fullmatch(r"\$\{\w+\}", provider["api_key"]), "api_key must be ${VAR}"
    models = {m["name"]: m for m in config["models"]}
    assert models
    for model in models.values():
        assert model["targets"]
        for target in model["targets"]:
            assert target["provider"] in providers and target["model"]
        assert model["input_cost_per_1m"] >= 0 and model["output_cost_per_1m"] >= 0
        assert isinstance(model["context_window"], int)
    assert set(config["auto"]["candidates"]) <= set(models)
    for key in config["keys"]:
        assert re.fullmatch(r"\$\{\w+\}", key["key"]), "a key in the file must be ${VAR}"
        assert key["budget_period"] in {"daily", "weekly", "monthly", "total"}
        assert all(m == "*" or m in models for m in key["models"])
    assert isinstance(config["limits"]["max_body_bytes"], int)
    used = {m for s in scalars(config) for m in re.findall(r"\$\{(\w+)(?::-[^}]*)?\}", s)}
    assert {"UPSTREAM_API_KEY", "TEAM_A_KEY"} <= used
    missing = used - set(env_of(docs))
    assert not missing, f"facade.yaml reads {sorted(missing)}, the container does not set them"


def test_config_is_accepted_by_the_app(monkeypatch):
    """The ConfigMap's facade.yaml passes the app's own loader (the secrets as placeholders)."""
    pytest.importorskip("marshmallow", reason="the app's dependencies are not installed")
    monkeypatch.syspath_prepend(str(ROOT))
    from facade.config import parse_config

    docs = rendered("ha")
    raw = yaml.safe_load(config_map(docs)["data"]["facade.yaml"])
    environ = {name: PLACEHOLDER for name in env_of(docs)}
    config = parse_config(raw, "facade.yaml", environ=environ)
    assert config is not None


# ---------------------------------------------------------------------------------------------
# overlays/single: one pod, SQLite on a volume


def test_single_is_one_pod_with_sqlite_on_a_pvc():
    docs = rendered("single")
    deployment = only(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 1
    # RWO volume + one SQLite writer: the old pod must be gone before the new one starts.
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    url = env_value(docs, "FACADE_DATABASE_URL")
    assert url.startswith("sqlite:////"), url
    db_dir = "/" + url.removeprefix("sqlite:////").rsplit("/", 1)[0]
    volumes = {v["name"]: v for v in pod_spec(docs)["volumes"]}
    (mount,) = [m for m in container(docs)["volumeMounts"] if m["mountPath"] == db_dir]
    assert not mount.get("readOnly")
    claim = volumes[mount["name"]]["persistentVolumeClaim"]["claimName"]
    pvc = only(docs, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"]
    assert "FACADE_REDIS_URL" not in env_of(docs)
    # Scaling or a disruption budget make no sense for a single SQLite writer.
    assert "HorizontalPodAutoscaler" not in kinds(docs)
    assert "PodDisruptionBudget" not in kinds(docs)


def test_single_database_url_matches_the_image_default():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    url = env_value(rendered("single"), "FACADE_DATABASE_URL")
    assert f"FACADE_DATABASE_URL={url}" in text


# ---------------------------------------------------------------------------------------------
# overlays/ha: several pods, PostgreSQL + Redis, HPA, PDB


def test_ha_reads_stores_from_the_secret_and_has_no_sqlite():
    docs = rendered("ha")
    env = env_of(docs)
    for name in ("FACADE_DATABASE_URL", "FACADE_REDIS_URL"):
        assert "value" not in env[name]
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == SECRET_NAME and ref["key"] == name
        assert not ref.get("optional"), f"{name} must not be optional in ha"
    assert "sqlite" not in _render("ha").lower()
    assert "PersistentVolumeClaim" not in kinds(docs)
    assert not any("persistentVolumeClaim" in v for v in pod_spec(docs)["volumes"])
    (secret,) = load_yaml_file(KUSTOMIZATIONS["ha"] / "secret.example.yaml")
    assert secret["stringData"]["FACADE_DATABASE_URL"].startswith("postgresql://")
    assert secret["stringData"]["FACADE_REDIS_URL"].startswith(("redis://", "rediss://"))


def test_ha_rolls_out_without_losing_capacity_and_leaves_replicas_to_the_hpa():
    deployment = only(rendered("ha"), "Deployment")
    assert "replicas" not in deployment["spec"], "the HPA owns the replica count"
    strategy = deployment["spec"]["strategy"]
    assert strategy["type"] == "RollingUpdate"
    assert strategy["rollingUpdate"]["maxUnavailable"] in (0, "0%")


def test_ha_hpa_scales_the_deployment_on_cpu():
    docs = rendered("ha")
    hpa = only(docs, "HorizontalPodAutoscaler")
    deployment = only(docs, "Deployment")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert target == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": deployment["metadata"]["name"],
    }
    assert hpa["spec"]["minReplicas"] >= 2
    assert hpa["spec"]["maxReplicas"] > hpa["spec"]["minReplicas"]
    cpu = [
        m
        for m in hpa["spec"]["metrics"]
        if m["type"] == "Resource" and m["resource"]["name"] == "cpu"
    ]
    assert cpu and cpu[0]["resource"]["target"]["type"] == "Utilization"
    assert 0 < cpu[0]["resource"]["target"]["averageUtilization"] <= 90
    assert "cpu" in container(docs)["resources"]["requests"]


def test_ha_pdb_selects_the_facade_pods_and_allows_drains():
    docs = rendered("ha")
    pdb = only(docs, "PodDisruptionBudget")
    hpa = only(docs, "HorizontalPodAutoscaler")
    deployment = only(docs, "Deployment")
    assert pdb["apiVersion"] == "policy/v1"
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector and selector.items() <= labels.items(), "PDB selects no Facade pod"
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    if "maxUnavailable" in pdb["spec"]:
        assert pdb["spec"]["maxUnavailable"] not in (0, "0%"), "PDB would block every drain"
    else:
        assert pdb["spec"]["minAvailable"] < hpa["spec"]["minReplicas"]


def test_ha_spreads_pods():
    docs = rendered("ha")
    labels = only(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    constraints = pod_spec(docs).get("topologySpreadConstraints", [])
    assert any(c["topologyKey"] == "kubernetes.io/hostname" for c in constraints)
    for c in constraints:
        assert c["labelSelector"]["matchLabels"].items() <= labels.items()


# ---------------------------------------------------------------------------------------------
# The Ingress example


def _nginx_size(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)([kKmMgG]?)", text).groups()
    return int(number) * {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}[unit.lower()]


def test_ingress_example_keeps_streams_flowing():
    (ingress,) = [d for p in EXAMPLES for d in load_yaml_file(p) if d["kind"] == "Ingress"]
    notes = ingress["metadata"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert notes[prefix + "proxy-buffering"] == "off"
    assert int(notes[prefix + "proxy-read-timeout"]) >= 3600
    assert int(notes[prefix + "proxy-send-timeout"]) >= 3600
    max_body = facade_config(rendered("base"))["limits"]["max_body_bytes"]
    assert _nginx_size(notes[prefix + "proxy-body-size"]) > max_body, (
        "the proxy's body limit must sit above Facade's, so clients get Facade's 413 envelope"
    )
    docs = rendered("base")
    svc = only(docs, "Service")
    svc_ports = {p["port"] for p in svc["spec"]["ports"]} | {
        p["name"] for p in svc["spec"]["ports"] if "name" in p
    }
    paths = []
    for rule in ingress["spec"]["rules"]:
        for path in rule["http"]["paths"]:
            backend = path["backend"]["service"]
            assert backend["name"] == svc["metadata"]["name"]
            port = backend["port"].get("name", backend["port"].get("number"))
            assert port in svc_ports
            paths.append(path["path"])
    assert {"/api", "/v1"} <= {p.rstrip("/") for p in paths}
    for internal in ("/", "/metrics", "/healthz", "/readyz"):
        assert internal not in paths, f"the Ingress should not publish {internal}"
