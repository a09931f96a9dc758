"""The cluster manifests (manifests/): kustomize renders them, Kubernetes' schemas accept them, and
the fields reprflow relies on hold, in the base and in every overlay.

Built-in kinds are validated with kubernetes-validate (strict) for the Kubernetes version the
manifests target; custom resources (Config Connector) have no schema there, so each kind has a check
of the fields the project relies on, and a kind that is neither validated nor checked fails.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from reprflow.components.common.config import validate_config
from reprflow.components.common.profiles import PROFILES
from reprflow.pipelines.cli import build_parser
from reprflow.pipelines.placement import ACCELERATOR_LABEL, GPU_TOLERATION, SPOT_LABEL, SPOT_TOLERATION
from reprflow.version import IMAGE, __version__

REPO = Path(__file__).resolve().parents[1]
MANIFESTS = REPO / "manifests"
TARGETS = {
    "base": MANIFESTS / "base",
    "dev": MANIFESTS / "overlays" / "dev",
    "prod": MANIFESTS / "overlays" / "prod",
}
OVERLAYS = ("dev", "prod")
K8S_VERSION = "1.32"  # GKE's; kubernetes-validate ships its schemas; see manifests/README.md
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
PLACEHOLDERS = re.compile(r"\b(PROJECT_ID|PROJECT_NUMBER|BUCKET)\b")

# Mirrors the pipelines' GPU resource profiles: the tolerations and node selectors that GPU tasks
# get. Every taint on a declared node pool must be tolerated by one of these, and every selector
# must land on a declared pool.
# What the pipelines' GPU resource profiles put on their tasks (pipelines/placement.py).
PROFILE_TOLERATIONS: list[dict[str, str]] = [GPU_TOLERATION, SPOT_TOLERATION]
PROFILE_NODE_SELECTORS: list[dict[str, str]] = [
    {ACCELERATOR_LABEL: p.accelerator, **({SPOT_LABEL: "true"} if p.spot else {})}
    for p in PROFILES.values() if p.accelerator
]
GPU_MACHINES = {"g2-standard-8": "nvidia-l4", "a2-highgpu-1g": "nvidia-tesla-a100"}
TAINT_EFFECTS = {"NO_SCHEDULE": "NoSchedule", "PREFER_NO_SCHEDULE": "PreferNoSchedule", "NO_EXECUTE": "NoExecute"}
CLUSTER_SCOPED = {"Namespace", "PriorityClass"}
POD_SPEC_PATHS = {
    "Deployment": ("spec", "template", "spec"),
    "Job": ("spec", "template", "spec"),
    "CronJob": ("spec", "jobTemplate", "spec", "template", "spec"),
    "Pod": ("spec",),
}


def render(path: Path) -> list[dict[str, Any]]:
    """`kubectl kustomize PATH` as a list of objects; fails the test with kubectl's stderr."""
    try:
        proc = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=120)
    except FileNotFoundError:
        pytest.fail(f"kubectl (with kustomize built in) is required and was not found at {KUBECTL}")
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize {path} failed:\n{proc.stderr}", pytrace=False)
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@dataclass(frozen=True)
class Target:
    """One rendered kustomization and the values that its objects must agree on."""

    name: str
    docs: list[dict[str, Any]]

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [d for d in self.all(kind) if name is None or d["metadata"]["name"] == name]
        assert len(found) == 1, f"{self.name}: expected one {kind} {name or ''}, found {len(found)}"
        return found[0]

    @property
    def namespace(self) -> str:
        return self.one("Namespace")["metadata"]["name"]

    @property
    def project(self) -> str:
        return self.one("Namespace")["metadata"]["annotations"]["cnrm.cloud.google.com/project-id"]

    def trigger_env(self, name: str) -> str:
        pod = pod_spec(self.one("Deployment", "reprflow-trigger"))
        return env(pod["containers"][0])[name]

    @property
    def bucket(self) -> str:
        return self.trigger_env("REPRFLOW_TRIGGER_BUCKET")

    @property
    def prefix(self) -> str:
        return self.trigger_env("REPRFLOW_TRIGGER_PREFIX")


@pytest.fixture(scope="module")
def targets() -> dict[str, Target]:
    return {name: Target(name, render(path)) for name, path in TARGETS.items()}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec = obj
    for key in POD_SPEC_PATHS[obj["kind"]]:
        spec = spec[key]
    return spec


def workloads(t: Target) -> Iterator[tuple[str, dict[str, Any]]]:
    for obj in t.docs:
        if obj["kind"] in POD_SPEC_PATHS:
            yield f"{t.name}: {obj['kind']}/{obj['metadata']['name']}", pod_spec(obj)
        elif "template" in obj.get("spec", {}) or "jobTemplate" in obj.get("spec", {}):
            pytest.fail(f"{t.name}: {obj['kind']} has a pod template the tests do not know; add it to POD_SPEC_PATHS")


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return pod.get("initContainers", []) + pod["containers"] + pod.get("ephemeralContainers", [])


def env(container: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in container.get("env", [])}


def field_ref(container: dict[str, Any], name: str) -> str | None:
    """The downward-API field an environment variable of `container` is set from."""
    for e in container.get("env", []):
        if e["name"] == name:
            return e.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath")
    return None


def volume_at(pod: dict[str, Any], container: dict[str, Any], path: str) -> dict[str, Any] | None:
    """The volume mounted at `path` (or at a parent directory of it) in `container`."""
    mounts = [
        m for m in container.get("volumeMounts", [])
        if path == m["mountPath"] or path.startswith(m["mountPath"].rstrip("/") + "/")
    ]
    if not mounts:
        return None
    mount = max(mounts, key=lambda m: len(m["mountPath"]))
    return next(v for v in pod.get("volumes", []) if v["name"] == mount["name"])


# --- Config Connector checks: the fields reprflow relies on ---------------------------------------


def check_iam_service_account(obj: dict[str, Any], t: Target) -> None:
    name = obj["metadata"]["name"]
    assert re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", name), f"{name}: not a valid service account id (6-30 chars)"
    assert obj.get("spec", {}).get("displayName"), f"IAMServiceAccount {name}: no displayName"


def expected_bindings(t: Target) -> dict[str, tuple[str, str, dict[str, str]]]:
    """IAMPolicyMember name -> (role, member pattern, resourceRef fields)."""
    return {
        "reprflow-runner-workload-identity": (
            "roles/iam.workloadIdentityUser",
            re.escape(f"serviceAccount:{t.project}.svc.id.goog[{t.namespace}/reprflow-runner]"),
            {"kind": "IAMServiceAccount", "name": "reprflow-runner"},
        ),
        "reprflow-runner-artifacts": (
            "roles/storage.objectAdmin",
            re.escape(f"serviceAccount:reprflow-runner@{t.project}.iam.gserviceaccount.com"),
            {"kind": "StorageBucket", "external": t.bucket},
        ),
        "reprflow-incoming-publisher": (
            "roles/pubsub.publisher",
            r"serviceAccount:service-(\d+|PROJECT_NUMBER)@gs-project-accounts\.iam\.gserviceaccount\.com",
            {"kind": "PubSubTopic", "name": "reprflow-incoming"},
        ),
    }


def check_iam_policy_member(obj: dict[str, Any], t: Target) -> None:
    name, spec = obj["metadata"]["name"], obj["spec"]
    bindings = expected_bindings(t)
    assert name in bindings, f"IAMPolicyMember {name}: unknown binding; add it to expected_bindings()"
    role, member, ref = bindings[name]
    assert spec["role"] == role, f"IAMPolicyMember {name}: role {spec['role']}, expected {role}"
    got_member = spec.get("member", "")
    assert re.fullmatch(member, got_member), f"IAMPolicyMember {name}: member {got_member!r} is not {member}"
    got = {k: spec["resourceRef"].get(k) for k in ref}
    assert got == ref, f"IAMPolicyMember {name}: resourceRef {got}, expected {ref}"
    assert ("name" in spec["resourceRef"]) != ("external" in spec["resourceRef"]), f"{name}: resourceRef needs name xor external"
    if "name" in ref:
        t.one(ref["kind"], ref["name"])  # the referenced object is declared here too


def check_pubsub_topic(obj: dict[str, Any], t: Target) -> None:
    name = obj["metadata"]["name"]
    assert [n for n in t.all("StorageNotification") if n["spec"]["topicRef"].get("name") == name], (
        f"PubSubTopic {name}: no StorageNotification publishes to it"
    )


def check_storage_notification(obj: dict[str, Any], t: Target) -> None:
    spec = obj["spec"]
    assert spec["bucketRef"] == {"external": t.bucket}, f"StorageNotification: {spec['bucketRef']}, trigger's {t.bucket}"
    assert spec["eventTypes"] == ["OBJECT_FINALIZE"], f"StorageNotification: eventTypes {spec['eventTypes']}"
    prefix = spec["objectNamePrefix"]
    assert prefix == t.prefix, f"StorageNotification: prefix {prefix!r}, trigger's {t.prefix!r}"
    assert spec["payloadFormat"] == "JSON_API_V1", "StorageNotification: the handler needs the object's JSON payload"
    t.one("PubSubTopic", spec["topicRef"]["name"])


def check_pubsub_subscription(obj: dict[str, Any], t: Target) -> None:
    spec = obj["spec"]
    t.one("PubSubTopic", spec["topicRef"]["name"])
    push = spec["pushConfig"]
    assert push["pushEndpoint"].startswith("https://"), f"push endpoint {push['pushEndpoint']!r} is not HTTPS"
    email = push["oidcToken"]["serviceAccountEmail"]
    assert email == f"reprflow-push@{t.project}.iam.gserviceaccount.com", f"push OIDC identity {email!r}"
    t.one("IAMServiceAccount", "reprflow-push")
    assert push["oidcToken"].get("audience") == push["pushEndpoint"], "the OIDC audience should be the push URL"
    assert 10 <= spec.get("ackDeadlineSeconds", 10) <= 600, "ackDeadlineSeconds out of Pub/Sub's range"


def node_labels(pool: dict[str, Any]) -> dict[str, str]:
    """The labels a node of this pool carries: GKE's own (pool, accelerator, Spot) plus nodeConfig.labels."""
    config = pool["spec"]["nodeConfig"]
    labels = {"cloud.google.com/gke-nodepool": pool["spec"].get("resourceID", pool["metadata"]["name"])}
    labels |= {"cloud.google.com/gke-accelerator": a["type"] for a in config.get("guestAccelerator", [])}
    if config.get("spot"):
        labels["cloud.google.com/gke-spot"] = "true"
    return labels | config.get("labels", {})


def node_taints(pool: dict[str, Any]) -> list[dict[str, str]]:
    """The pool's taints in Kubernetes form (Config Connector spells effects NO_SCHEDULE etc.)."""
    return [
        {"key": x["key"], "value": x["value"], "effect": TAINT_EFFECTS[x["effect"]]}
        for x in pool["spec"]["nodeConfig"].get("taint", [])
    ]


def check_node_pool(obj: dict[str, Any], t: Target) -> None:
    name, spec = obj["metadata"]["name"], obj["spec"]
    config = spec["nodeConfig"]
    cluster = f"projects/{t.project}/locations/{spec['location']}/clusters/"
    assert spec["clusterRef"].get("external", "").startswith(cluster), f"{name}: clusterRef {spec['clusterRef']}"
    scale = spec["autoscaling"]
    assert scale.get("totalMinNodeCount") == 0, f"{name}: GPU pools scale to zero"
    assert scale.get("totalMaxNodeCount", 0) >= 1, f"{name}: totalMaxNodeCount must be at least 1"
    assert not {"minNodeCount", "maxNodeCount"} & set(scale), f"{name}: total* and per-zone counts are exclusive"
    (accelerator,) = config["guestAccelerator"]
    machine = config["machineType"]
    assert GPU_MACHINES.get(machine) == accelerator["type"], f"{name}: {machine} with {accelerator['type']}"
    assert accelerator["count"] == 1, f"{name}: {accelerator['count']} GPUs per node"
    assert accelerator["gpuDriverInstallationConfig"] == {"gpuDriverVersion": "LATEST"}, f"{name}: GKE must install the driver"
    assert config.get("workloadMetadataConfig") == {"mode": "GKE_METADATA"}, f"{name}: Workload Identity needs GKE_METADATA"
    assert not config.get("preemptible"), f"{name}: use spot, not the legacy preemptible"
    taints = node_taints(obj)
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in taints, f"{name}: no GPU taint"
    spot_taint = {"key": "cloud.google.com/gke-spot", "value": "true", "effect": "NoSchedule"}
    assert (spot_taint in taints) == bool(config.get("spot")), f"{name}: Spot pools, and only they, carry the Spot taint"
    assert not [k for k in config.get("labels", {}) if k.startswith("cloud.google.com/")], f"{name}: GKE sets its own labels"


CUSTOM_CHECKS: dict[tuple[str, str], Callable[[dict[str, Any], Target], None]] = {
    ("iam.cnrm.cloud.google.com/v1beta1", "IAMServiceAccount"): check_iam_service_account,
    ("iam.cnrm.cloud.google.com/v1beta1", "IAMPolicyMember"): check_iam_policy_member,
    ("pubsub.cnrm.cloud.google.com/v1beta1", "PubSubTopic"): check_pubsub_topic,
    ("pubsub.cnrm.cloud.google.com/v1beta1", "PubSubSubscription"): check_pubsub_subscription,
    ("storage.cnrm.cloud.google.com/v1beta1", "StorageNotification"): check_storage_notification,
    ("container.cnrm.cloud.google.com/v1beta1", "ContainerNodePool"): check_node_pool,
}


# --- schema validation and coverage ----------------------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_every_object_is_schema_validated_or_checked(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    errors, unchecked = [], []
    for obj in t.docs:
        label = f"{obj['kind']}/{obj['metadata']['name']}"
        custom = (obj["apiVersion"], obj["kind"]) in CUSTOM_CHECKS
        try:
            kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
            assert not custom, f"{label} has a Kubernetes schema: validate it instead of a custom check"
        except kubernetes_validate.SchemaNotFoundError:
            if not custom:
                unchecked.append(label)
        except kubernetes_validate.ValidationError as exc:
            errors.append(f"{label}: {'.'.join(map(str, exc.path))}: {exc.message}")
    assert not errors, f"{name}: strict schema validation ({K8S_VERSION}) failed:\n" + "\n".join(errors)
    assert not unchecked, f"{name}: neither schema-validated nor covered by CUSTOM_CHECKS: {unchecked}"


@pytest.mark.parametrize("name", TARGETS)
def test_custom_resources_hold_the_fields_reprflow_relies_on(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    for obj in t.docs:
        check = CUSTOM_CHECKS.get((obj["apiVersion"], obj["kind"]))
        if check:
            check(obj, t)
        if obj["apiVersion"].endswith(".cnrm.cloud.google.com/v1beta1"):
            bad = [k for k in obj["metadata"].get("labels", {}) if not re.fullmatch(r"[a-z][a-z0-9_-]{0,62}", k)]
            assert not bad, f"{obj['kind']}/{obj['metadata']['name']}: labels {bad} are not valid Google Cloud label keys"
    kinds = {kind for _, kind in CUSTOM_CHECKS}
    assert kinds <= {obj["kind"] for obj in t.docs}, f"{name}: missing {kinds - {obj['kind'] for obj in t.docs}}"


def test_strict_validation_rejects_an_unknown_field(tmp_path: Path) -> None:
    """A misspelt field in a copy of the trigger manifest renders fine but fails strict validation."""
    text = (TARGETS["base"] / "trigger.yaml").read_text()
    assert "  replicas: 1\n" in text
    (tmp_path / "trigger.yaml").write_text(text.replace("  replicas: 1\n", "  replica: 1\n"))
    (tmp_path / "kustomization.yaml").write_text("resources: [trigger.yaml]\n")
    deployment = next(d for d in render(tmp_path) if d["kind"] == "Deployment")
    kubernetes_validate.validate(deployment, K8S_VERSION, strict=False)
    with pytest.raises(kubernetes_validate.ValidationError, match="replica"):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


def test_node_pool_check_catches_a_missing_spot_taint(targets: dict[str, Target]) -> None:
    t = targets["prod"]
    pool = copy.deepcopy(t.one("ContainerNodePool", "reprflow-l4-spot"))
    pool["spec"]["nodeConfig"]["taint"] = [x for x in pool["spec"]["nodeConfig"]["taint"] if "spot" not in x["key"]]
    with pytest.raises(AssertionError, match="Spot taint"):
        check_node_pool(pool, t)


# --- GPU scheduling: node pools and the pipelines' resource profiles --------------------------------


def tolerates(toleration: dict[str, str], taint: dict[str, str]) -> bool:
    """Kubernetes' rule: same effect (or none given), and Exists on the key or Equal on key and value."""
    if toleration.get("effect") and toleration["effect"] != taint["effect"]:
        return False
    if toleration.get("operator", "Equal") == "Exists":
        return not toleration.get("key") or toleration["key"] == taint["key"]
    return toleration.get("key") == taint["key"] and toleration.get("value", "") == taint.get("value", "")


def test_toleration_matching() -> None:
    gpu = {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}
    assert tolerates(PROFILE_TOLERATIONS[0], gpu)
    assert not tolerates(PROFILE_TOLERATIONS[0], {**gpu, "effect": "NoExecute"})
    on_demand = {"key": "cloud.google.com/gke-spot", "value": "false", "effect": "NoSchedule"}
    assert not tolerates(PROFILE_TOLERATIONS[1], on_demand)
    assert not any(tolerates(x, {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}) for x in PROFILE_TOLERATIONS)


@pytest.mark.parametrize("name", TARGETS)
def test_every_node_pool_taint_is_tolerated_by_the_profiles(targets: dict[str, Target], name: str) -> None:
    pools = targets[name].all("ContainerNodePool")
    assert pools, f"{name}: no node pools"
    for pool in pools:
        for taint in node_taints(pool):
            assert any(tolerates(x, taint) for x in PROFILE_TOLERATIONS), (
                f"{name}: {pool['metadata']['name']} taint {taint} has no toleration in PROFILE_TOLERATIONS"
            )


@pytest.mark.parametrize("name", TARGETS)
def test_profile_node_selectors_and_node_pools_match(targets: dict[str, Target], name: str) -> None:
    labels = {p["metadata"]["name"]: node_labels(p) for p in targets[name].all("ContainerNodePool")}
    for selector in PROFILE_NODE_SELECTORS:
        assert any(selector.items() <= pool.items() for pool in labels.values()), f"{name}: no pool for selector {selector}"
    for pool, pool_labels in labels.items():
        assert any(s.items() <= pool_labels.items() for s in PROFILE_NODE_SELECTORS), f"{name}: no profile selects {pool}"
    spot = [p for p in targets[name].all("ContainerNodePool") if p["spec"]["nodeConfig"].get("spot")]
    assert [p["spec"]["nodeConfig"]["machineType"] for p in spot] == ["g2-standard-8"], f"{name}: one Spot L4 pool"


# --- security ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_no_credentials_anywhere(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    assert not t.all("Secret"), f"{name}: Secrets are declared; credentials come from Workload Identity"
    for label, pod in workloads(t):
        for volume in pod.get("volumes", []):
            assert not {"secret", "hostPath"} & set(volume), f"{label}: volume {volume['name']} ({volume})"
            for source in volume.get("projected", {}).get("sources", []):
                assert set(source) == {"serviceAccountToken"}, f"{label}: projected {source}"
        for c in containers(pod):
            assert "GOOGLE_APPLICATION_CREDENTIALS" not in env(c), f"{label}: a key file via GOOGLE_APPLICATION_CREDENTIALS"
            assert not [e for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], f"{label}: env from a Secret"
            assert not [e for e in c.get("envFrom", []) if "secretRef" in e], f"{label}: envFrom a Secret"


def effective(pod: dict[str, Any], container: dict[str, Any], field: str) -> Any:
    """A securityContext field as the kubelet sees it: the container's, else the pod's."""
    value = container.get("securityContext", {}).get(field)
    return pod.get("securityContext", {}).get(field) if value is None else value


@pytest.mark.parametrize("name", TARGETS)
def test_containers_run_non_root_and_locked_down(targets: dict[str, Target], name: str) -> None:
    for label, pod in workloads(targets[name]):
        assert pod["serviceAccountName"] == "reprflow-runner", f"{label}: serviceAccountName"
        assert pod.get("automountServiceAccountToken") is False, f"{label}: mounts a Kubernetes API token it does not use"
        for c in containers(pod):
            where = f"{label} container {c['name']}"
            sc = c.get("securityContext", {})
            assert effective(pod, c, "runAsNonRoot") is True, f"{where}: runAsNonRoot"
            assert effective(pod, c, "runAsUser") == 1000, f"{where}: runAsUser"
            assert sc.get("allowPrivilegeEscalation") is False, f"{where}: allowPrivilegeEscalation"
            assert sc.get("readOnlyRootFilesystem") is True, f"{where}: readOnlyRootFilesystem"
            assert sc.get("capabilities") == {"drop": ["ALL"]}, f"{where}: capabilities {sc.get('capabilities')}"
            assert effective(pod, c, "seccompProfile") == {"type": "RuntimeDefault"}, f"{where}: seccompProfile"
            tmp = volume_at(pod, c, "/tmp")
            assert tmp is not None and "emptyDir" in tmp, f"{where}: /tmp must be an emptyDir (read-only root)"
            for kind in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(c.get("resources", {}).get(kind, {})), f"{where}: resources.{kind}"


def assert_images(t: Target, expected: str) -> None:
    images = [(label, c["image"]) for label, pod in workloads(t) for c in containers(pod)]
    assert images, f"{t.name}: no containers"
    for label, image in images:
        assert not image.endswith(":latest") and ":" in image.rsplit("/", 1)[-1], f"{label}: untagged or :latest {image}"
        assert image == expected, f"{label}: image {image}, but reprflow.version.IMAGE is {expected}; bump both together"


@pytest.mark.parametrize("name", TARGETS)
def test_images_are_the_package_image(targets: dict[str, Target], name: str) -> None:
    assert IMAGE.endswith(f":{__version__}")
    assert_images(targets[name], IMAGE)


def test_image_check_fails_when_the_version_moves(targets: dict[str, Target]) -> None:
    with pytest.raises(AssertionError, match="bump both"):
        assert_images(targets["prod"], IMAGE.rsplit(":", 1)[0] + ":99.0.0")


# --- the trigger handler and the retraining run -----------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_trigger_handler(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    deployment = t.one("Deployment", "reprflow-trigger")
    pod = pod_spec(deployment)
    (c,) = pod["containers"]
    assert c["command"] == ["reprflow", "trigger", "serve", "--port", "8080"]
    assert [p["containerPort"] for p in c["ports"]] == [8080]
    for probe in ("readinessProbe", "livenessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": 8080}, f"{probe}: {c[probe]}"
    variables = env(c)
    assert variables["REPRFLOW_KFP_HOST"] == "http://ml-pipeline.kubeflow.svc.cluster.local:8888"
    assert variables["REPRFLOW_TRIGGER_PREFIX"].endswith("/")
    assert {"REPRFLOW_TRIGGER_BUCKET", "REPRFLOW_CONFIG"} <= set(variables)
    # the handler checks Pub/Sub's OIDC token against what the subscription sends
    push = t.one("PubSubSubscription")["spec"]["pushConfig"] if name != "base" else None
    if push is not None:
        assert variables["REPRFLOW_TRIGGER_AUDIENCE"] == push["oidcToken"]["audience"] == push["pushEndpoint"]
        assert variables["REPRFLOW_TRIGGER_PUSH_SA"] == push["oidcToken"]["serviceAccountEmail"]
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    service = t.one("Service", "reprflow-trigger")
    assert service["spec"]["selector"].items() <= labels.items(), "the Service selects no trigger pod"
    assert [(p["port"], p["targetPort"]) for p in service["spec"]["ports"]] == [(8080, "http")]
    assert c["ports"][0]["name"] == "http"
    ingress = t.one("NetworkPolicy", "allow-trigger-ingress")["spec"]
    assert ingress["podSelector"]["matchLabels"].items() <= labels.items()


@pytest.mark.parametrize("name", TARGETS)
def test_runs_get_a_valid_reprflow_config_in_the_watched_bucket(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    for label, pod in workloads(t):
        (c,) = pod["containers"]
        path = env(c)["REPRFLOW_CONFIG"]
        volume = volume_at(pod, c, path)
        assert volume and "configMap" in volume, f"{label}: {path} is not mounted from a ConfigMap"
        config_map = t.one("ConfigMap", volume["configMap"]["name"])
        text = config_map["data"][Path(path).name]
        config = validate_config(yaml.safe_load(text), f"{label}:{path}")
        assert config["cluster"]["pipeline_root"] == f"gs://{t.bucket}/pipeline-root", f"{label}: pipeline_root"
        assert config["cluster"]["registry"] == f"gs://{t.bucket}/registry", f"{label}: registry"
        assert config["data"]["uri"].startswith(f"gs://{t.bucket}/{t.prefix}"), f"{label}: data.uri {config['data']['uri']}"
        assert config["trigger"]["bucket"] in ("", t.bucket) and config["trigger"]["prefix"] == t.prefix
    # the CronJob's command is one the CLI accepts: a retrain run of the mounted configuration
    cron = pod_spec(t.one("CronJob", "reprflow-retrain"))["containers"][0]
    command = cron["command"]
    assert command[0] == "reprflow"
    with pytest.MonkeyPatch.context() as mp:  # the host comes from the container's environment
        mp.setenv("REPRFLOW_KFP_HOST", env(cron)["REPRFLOW_KFP_HOST"])
        args = build_parser().parse_args(command[1:])
    assert (args.command, args.pipeline, args.config) == ("submit", "retrain", path)
    # a retried pod finds the run of its tick (named after the Job) instead of starting a second one
    assert args.once and args.run_name == "$(JOB_NAME)" and args.service_account == "reprflow-runner"
    assert field_ref(cron, "JOB_NAME") == "metadata.labels['batch.kubernetes.io/job-name']"


@pytest.mark.parametrize("name", TARGETS)
def test_cluster_callers_authenticate_in_their_own_namespace(targets: dict[str, Target], name: str) -> None:
    """Multi-user KFP: the token at kfp's path, experiments and runs in the pod's namespace, runs as reprflow-runner."""
    from reprflow.pipelines.kfp_server import SA_TOKEN_PATH

    t = targets[name]
    for label, pod in workloads(t):
        (c,) = pod["containers"]
        volume = volume_at(pod, c, SA_TOKEN_PATH)
        token = volume["projected"]["sources"][0]["serviceAccountToken"] if volume else {}
        assert token.get("path") == Path(SA_TOKEN_PATH).name and token.get("audience") == "pipelines.kubeflow.org", label
        assert field_ref(c, "REPRFLOW_KFP_NAMESPACE") == "metadata.namespace", label
    trigger = pod_spec(t.one("Deployment", "reprflow-trigger"))["containers"][0]
    assert env(trigger)["REPRFLOW_KFP_SERVICE_ACCOUNT"] == "reprflow-runner"


# --- namespace, identity, RBAC, quotas ----------------------------------------------------------------


@pytest.mark.parametrize("name", TARGETS)
def test_one_namespace_and_workload_identity(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    for obj in t.docs:
        expected = None if obj["kind"] in CLUSTER_SCOPED else t.namespace
        assert obj["metadata"].get("namespace") == expected, f"{obj['kind']}/{obj['metadata']['name']} namespace"
    sa = t.one("ServiceAccount", "reprflow-runner")
    gsa = sa["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert gsa == f"reprflow-runner@{t.project}.iam.gserviceaccount.com", f"{name}: Workload Identity annotation {gsa}"
    t.one("IAMServiceAccount", "reprflow-runner")
    binding = t.one("RoleBinding", "reprflow-runner")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "reprflow-runner", "namespace": t.namespace}]
    assert binding["roleRef"]["kind"] == "Role"
    t.one("Role", binding["roleRef"]["name"])


@pytest.mark.parametrize("name", TARGETS)
def test_runner_role_is_least_privilege(targets: dict[str, Target], name: str) -> None:
    rules = targets[name].one("Role", "reprflow-runner")["rules"]
    granted = {(g, r, v) for rule in rules for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]}
    assert not [x for x in granted if "*" in x], "no wildcards"
    assert not [x for x in granted if x[1] == "secrets"], "no Secrets: artifacts are in GCS, credentials from Workload Identity"
    needed = {("argoproj.io", "workflowtaskresults", "create"), ("argoproj.io", "workflowtaskresults", "patch"),
              ("", "pods", "get"), ("", "pods", "watch"), ("", "pods", "patch"), ("", "pods/log", "get"),
              ("", "configmaps", "get"), ("pipelines.kubeflow.org", "runs", "create")}
    assert needed <= granted, f"missing {needed - granted}"


@pytest.mark.parametrize("name", TARGETS)
def test_quota_limits_and_priority(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    hard = t.one("ResourceQuota")["spec"]["hard"]
    assert {"requests.nvidia.com/gpu", "requests.cpu", "requests.memory", "limits.cpu", "limits.memory"} <= set(hard)
    (limit,) = t.one("LimitRange")["spec"]["limits"]
    assert limit["type"] == "Container"
    assert {"cpu", "memory"} <= set(limit["default"]) and {"cpu", "memory"} <= set(limit["defaultRequest"])
    # A GPU max (or default) in a LimitRange would put a GPU on every container or reject CPU pods.
    assert "nvidia.com/gpu" not in yaml.safe_dump(t.one("LimitRange")), "no GPU in the LimitRange"
    priority = t.one("PriorityClass", "reprflow-preemptible-training")
    assert priority["globalDefault"] is False and priority["preemptionPolicy"] == "Never"
    assert -10 <= priority["value"] < 0, "below default pods, not below the autoscaler's expendable cutoff (-10)"


@pytest.mark.parametrize("name", TARGETS)
def test_the_quota_admits_a_task_of_every_profile_beside_the_standing_pods(targets: dict[str, Target],
                                                                           name: str) -> None:
    """A task of any profile, with KFP's two helper containers (at the LimitRange's defaults), fits
    in what the quota leaves beside the standing workloads (the trigger's replicas, the CronJob's pod)."""
    from kubernetes.utils import parse_quantity

    t = targets[name]
    hard = {k: parse_quantity(v) for k, v in t.one("ResourceQuota")["spec"]["hard"].items()}
    (limit_range,) = t.one("LimitRange")["spec"]["limits"]
    standing = {"requests": {"cpu": 0, "memory": 0}, "limits": {"cpu": 0, "memory": 0}}
    for workload in (*t.all("Deployment"), *t.all("CronJob")):
        for container in pod_spec(workload)["containers"]:
            for side in standing:
                for resource in standing[side]:
                    value = container["resources"][side][resource]
                    standing[side][resource] += workload["spec"].get("replicas", 1) * parse_quantity(value)
    helpers = {"requests": limit_range["defaultRequest"], "limits": limit_range["default"]}
    for profile_name, p in PROFILES.items():
        task = {"requests": {"cpu": p.cpu_request, "memory": p.memory_request},
                "limits": {"cpu": p.cpu_limit, "memory": p.memory_limit}}
        for side in task:
            for resource, value in task[side].items():
                need = parse_quantity(value) + standing[side][resource] + 2 * parse_quantity(helpers[side][resource])
                assert need <= hard[f"{side}.{resource}"], f"{name}: a {profile_name} task exceeds {side}.{resource}"
                assert parse_quantity(value) <= parse_quantity(limit_range["max"][resource]), profile_name
        assert p.gpus <= hard["requests.nvidia.com/gpu"], profile_name


# --- network policy ---------------------------------------------------------------------------------


def egress_peers(t: Target) -> list[tuple[dict[str, Any], set[tuple[str, int]]]]:
    """Every (peer, {(protocol, port)}) that some egress rule allows to every pod of the namespace."""
    out = []
    for policy in t.all("NetworkPolicy"):
        if policy["spec"]["podSelector"] == {}:
            for rule in policy["spec"].get("egress", []):
                assert rule.get("to") and rule.get("ports"), f"{policy['metadata']['name']}: an egress rule open to all"
                ports = {(p.get("protocol", "TCP"), p["port"]) for p in rule["ports"]}
                out += [(peer, ports) for peer in rule["to"]]
    return out


def in_ns(namespace: str, **labels: str) -> dict[str, Any]:
    """A NetworkPolicy peer: pods with these labels in that namespace."""
    return {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
        "podSelector": {"matchLabels": labels},
    }


def allowed(t: Target, peer: dict[str, Any], *ports: tuple[str, int]) -> bool:
    return any(p == peer and set(ports) <= allowed_ports for p, allowed_ports in egress_peers(t))


@pytest.mark.parametrize("name", TARGETS)
def test_network_policy_default_deny_and_allows(targets: dict[str, Target], name: str) -> None:
    t = targets[name]
    deny = [
        p["spec"] for p in t.all("NetworkPolicy")
        if p["spec"]["podSelector"] == {} and not {"ingress", "egress"} & set(p["spec"])
    ]
    assert [sorted(d["policyTypes"]) for d in deny] == [["Egress", "Ingress"]], f"{name}: default deny in {t.namespace}"
    assert allowed(t, in_ns("kube-system", **{"k8s-app": "kube-dns"}), ("UDP", 53), ("TCP", 53)), "DNS"
    assert allowed(t, {"ipBlock": {"cidr": "169.254.169.254/32"}}, ("TCP", 80)), "GKE metadata server"
    private = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
    google = [p for p, ports in egress_peers(t) if p.get("ipBlock", {}).get("cidr") == "0.0.0.0/0"]
    assert [(set(p["ipBlock"]["except"]) >= private) for p in google] == [True], "Google APIs: 0.0.0.0/0 except private"
    assert allowed(t, google[0], ("TCP", 443)) and not allowed(t, google[0], ("TCP", 80))
    assert allowed(t, in_ns("kubeflow", app="ml-pipeline"), ("TCP", 8888), ("TCP", 8887)), "KFP API server"
    assert allowed(t, in_ns("kubeflow", component="metadata-grpc-server"), ("TCP", 8080)), "ML Metadata"
    for policy in t.all("NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            assert policy["metadata"]["name"] == "allow-trigger-ingress", f"{policy['metadata']['name']} allows ingress"
            assert rule["ports"] == [{"protocol": "TCP", "port": 8080}]


# --- overlays ----------------------------------------------------------------------------------------


def test_overlays_differ_where_they_should(targets: dict[str, Target]) -> None:
    dev, prod, base = targets["dev"], targets["prod"], targets["base"]
    assert (base.namespace, dev.namespace, prod.namespace) == ("reprflow", "reprflow-dev", "reprflow-prod")
    assert (base.project, dev.project, prod.project) == ("PROJECT_ID", "reprflow-dev", "reprflow-prod")
    assert dev.bucket != prod.bucket
    gpus = {t.name: int(t.one("ResourceQuota")["spec"]["hard"]["requests.nvidia.com/gpu"]) for t in (dev, prod)}
    assert gpus == {"dev": 2, "prod": 8}
    max_l4 = [t.one("ContainerNodePool", "reprflow-l4-spot")["spec"]["autoscaling"]["totalMaxNodeCount"] for t in (dev, prod)]
    assert max_l4[0] < max_l4[1], f"L4 pool maximum dev {max_l4[0]}, prod {max_l4[1]}"
    assert dev.one("CronJob")["spec"].get("suspend") is True, "dev does not retrain on a schedule"
    assert not prod.one("CronJob")["spec"].get("suspend"), "prod retrains on a schedule"


@pytest.mark.parametrize("name", OVERLAYS)
def test_overlays_leave_no_placeholders(targets: dict[str, Target], name: str) -> None:
    left = sorted(set(PLACEHOLDERS.findall(yaml.safe_dump_all(targets[name].docs))))
    assert not left, f"{name}: placeholders {left} are not replaced; see manifests/overlays/{name}/settings.yaml"
