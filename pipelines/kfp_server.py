"""Upload, run and schedule reprflow's compiled pipelines on a Kubeflow Pipelines server (through
`kfp.Client`), and write them as Kubernetes-native Pipeline / PipelineVersion manifests for GitOps.

Every server failure reaches the user as one `ReprflowError` line naming the host, the call and the
server's message. Version naming and de-duplication:

- a version's default name is `<reprflow version>-<first 12 hex of the sha256 of the compiled YAML>`;
- every description we send ends with `[reprflow <version>; IR sha256:<64 hex>]`;
- an upload whose YAML is already a version of the pipeline (that marker in its description, or the
  same pipeline spec as the server returns it) creates nothing and returns the existing version;
- the first upload creates the pipeline, and the server names its first version after the pipeline.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import yaml

from reprflow.components.common.errors import ReprflowError
from reprflow.version import __version__

TOKEN_ENV = "REPRFLOW_KFP_TOKEN"
# Where a pod's projected service-account token for multi-user KFP is mounted (kfp's own default and
# the variable that moves it); the cluster manifests mount it there.
SA_TOKEN_PATH_ENV, SA_TOKEN_PATH = "KF_PIPELINES_SA_TOKEN_PATH", "/var/run/secrets/kubeflow/pipelines/token"
DEFAULT_EXPERIMENT = "reprflow"
K8S_API_VERSION = "pipelines.kubeflow.org/v2beta1"
MAX_CONCURRENCY = (1, 10)  # the range the API accepts for a recurring run
# Every call's connect and read limits: kfp.Client sets none, so a server that accepts a connection
# and never answers would hold the caller (a trigger replica, say) forever.
CONNECT_TIMEOUT_S, READ_TIMEOUT_S = 10.0, 60.0
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


@dataclass(frozen=True)
class Uploaded:
    """A pipeline version on the server; `created` is False when an identical version was already there."""

    pipeline_name: str
    pipeline_id: str
    version_name: str
    version_id: str
    created: bool
    new_pipeline: bool
    url: str


@dataclass(frozen=True)
class Submitted:
    """A run (`kind` "run") or a recurring run (`kind` "recurring run") created on the server."""

    kind: str
    id: str
    name: str
    experiment_id: str
    pipeline_id: str
    version_id: str
    version_name: str
    url: str


# --- compiled YAML -------------------------------------------------------------------------------


def read_package(path: str | Path) -> list[dict[str, Any]]:
    """The documents of a compiled KFP IR YAML (pipeline spec first, then platform specs)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ReprflowError(f"{path}: cannot read the compiled pipeline ({exc.strerror})") from None
    try:
        docs = [d for d in yaml.safe_load_all(data) if d is not None]
    except yaml.YAMLError as exc:
        raise ReprflowError(f"{path}: not valid YAML ({exc})") from None
    name = docs[0].get("pipelineInfo", {}).get("name") if docs and isinstance(docs[0], dict) else None
    if not isinstance(name, str) or not name:
        raise ReprflowError(f"{path}: not a KFP IR YAML (no pipelineInfo.name in its first document)")
    return docs


def package_digest(docs: list[dict[str, Any]]) -> str:
    """sha256 of the compiled pipeline's documents as canonical JSON (sorted keys), 64 hex. Not of the
    YAML's bytes: kfp's header comment lists a dict default's keys in an order that changes from one
    process to the next, and an unchanged pipeline must keep its version name."""
    return hashlib.sha256(json.dumps(docs, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def default_version_name(digest: str) -> str:
    """`<reprflow version>-<12 hex of the YAML's sha256>`, a valid DNS-1123 name."""
    version = re.sub(r"[^a-z0-9.-]+", "-", __version__.lower()).strip("-.")
    return f"{version}-{digest[:12]}"


def _marker(digest: str) -> str:
    return f"[reprflow {__version__}; IR sha256:{digest}]"


def _describe(description: str | None, docs: list[dict[str, Any]], digest: str) -> str:
    text = description if description is not None else docs[0]["pipelineInfo"].get("description", "")
    return f"{text} {_marker(digest)}".strip()


def _platform_spec(docs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The platform spec of a multi-document IR YAML (merged as kfp does), or None."""
    merged: dict[str, Any] = {}
    for doc in docs[1:]:
        merged.update(doc)
    return merged or None


# --- Kubernetes-native manifests -----------------------------------------------------------------


def _check_dns1123(what: str, value: str, label: bool = False) -> None:
    pattern, limit = (_DNS1123_LABEL, 63) if label else (_DNS1123_SUBDOMAIN, 253)
    if len(value) > limit or not pattern.match(value):
        kind = "DNS-1123 label" if label else "DNS-1123 subdomain"
        raise ReprflowError(f"{what} {value!r} is not a valid {kind} (lower-case letters, digits, '-'"
                            f"{'' if label else ', .'}; at most {limit} characters; alphanumeric at both ends)")


def to_k8s_manifests(compiled_yaml_path: str | Path, pipeline_name: str, version_name: str | None = None,
                     namespace: str = "kubeflow", description: str | None = None) -> list[dict[str, Any]]:
    """A `Pipeline` and a `PipelineVersion` (pipelines.kubeflow.org/v2beta1) for the compiled YAML.

    The version object is named `<pipeline_name>-<version_name>` (KFP's own naming for versions) and
    shows `version_name` as its display name; `spec.pipelineSpec` is the IR's pipeline spec and
    `spec.platformSpec` its platform spec when the YAML has one.
    """
    docs = read_package(compiled_yaml_path)
    digest = package_digest(docs)
    version_name = version_name or default_version_name(digest)
    _check_dns1123("pipeline name", pipeline_name)
    _check_dns1123("version name", version_name)
    _check_dns1123("pipeline version object name", f"{pipeline_name}-{version_name}")
    _check_dns1123("namespace", namespace, label=True)
    pipeline = {
        "apiVersion": K8S_API_VERSION, "kind": "Pipeline",
        "metadata": {"name": pipeline_name, "namespace": namespace},
        "spec": {"description": docs[0]["pipelineInfo"].get("description", "")},
    }
    spec: dict[str, Any] = {
        "pipelineName": pipeline_name, "displayName": version_name,
        "description": _describe(description, docs, digest), "pipelineSpec": docs[0],
    }
    platform = _platform_spec(docs)
    if platform is not None:
        spec["platformSpec"] = platform
    version = {
        "apiVersion": K8S_API_VERSION, "kind": "PipelineVersion",
        "metadata": {"name": f"{pipeline_name}-{version_name}", "namespace": namespace},
        "spec": spec,
    }
    return [pipeline, version]


def write_k8s_manifests(path: str | Path, manifests: list[dict[str, Any]]) -> Path:
    """Write the manifests as one multi-document YAML file."""
    path = Path(path)
    path.write_text(yaml.safe_dump_all(manifests, sort_keys=False), encoding="utf-8")
    return path


# --- talking to the server -----------------------------------------------------------------------


def _server_message(exc: Any) -> str:
    """One line from a kfp_server_api.ApiException: status, reason and the server's message."""
    body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else (exc.body or "")
    message = body
    with contextlib.suppress(ValueError, AttributeError):
        parsed = json.loads(body)
        message = parsed.get("message") or parsed.get("error_message") or parsed.get("error") or body
    status = f"HTTP {exc.status} {exc.reason or ''}".strip() if exc.status else str(exc.reason or "")
    if exc.status and 300 <= exc.status < 400:  # redirects are not followed: a login page in front of the API
        location = (exc.headers or {}).get("Location", "elsewhere")
        return (f"{status}: redirected to {location}, a login page in front of the API? Give a token (--token) "
                "or the URL of the API service itself")
    message = " ".join(str(message).split())[:500]
    return f"{status}: {message}" if message else status


@contextlib.contextmanager
def _calling(host: str, call: str) -> Iterator[None]:
    """Run kfp.Client calls quietly (no FutureWarning, no printed links); failures become one line."""
    import kfp_server_api
    import urllib3

    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            yield
    except kfp_server_api.ApiException as exc:
        raise ReprflowError(f"KFP server {host}: {call} failed: {_server_message(exc)}") from None
    except urllib3.exceptions.HTTPError as exc:
        reason = str(getattr(exc, "reason", None) or exc)
        reason = reason.split("Failed to establish a new connection: ")[-1].rstrip("')\"")
        raise ReprflowError(f"KFP server {host}: {call} failed: cannot reach the server ({reason})") from None
    except (ValueError, TimeoutError) as exc:  # kfp.Client's own checks and its healthz retries
        raise ReprflowError(f"KFP server {host}: {call} failed: {' '.join(str(exc).split())}") from None


def connect(host: str, token: str | None = None, namespace: str | None = None) -> Any:
    """A kfp.Client for `host`; the bearer token is `token` or $REPRFLOW_KFP_TOKEN (none if neither)."""
    import kfp

    if not re.match(r"^https?://[^/\s]+", host or ""):
        raise ReprflowError(f"--host {host!r}: expected the http:// or https:// URL of the KFP API "
                            "(e.g. http://localhost:8080 with a port-forward to ml-pipeline-ui)")
    token = token or os.environ.get(TOKEN_ENV) or _projected_token()
    if token or not re.match(r"^\S+\.googleusercontent\.com/?$", host):  # else kfp fetches a GCP token itself
        _healthz(host, token)
    with _calling(host, "connect"):
        # kfp.Client treats namespace "kubeflow" as "not given" (single-user); calls below pass it explicitly.
        client = kfp.Client(host=host, existing_token=token, namespace=namespace or "kubeflow")
    _guard(client._run_api.api_client.rest_client)  # the one REST client all its generated APIs share
    return client


def _projected_token() -> str | None:
    """The pod's projected KFP token, read afresh on every connect (the kubelet rotates it); None
    outside a pod. kfp.Client reads it only when it is given no host, and reprflow always gives one."""
    path = Path(os.environ.get(SA_TOKEN_PATH_ENV) or SA_TOKEN_PATH)
    with contextlib.suppress(OSError):
        return path.read_text(encoding="utf-8").strip() or None
    return None


def _guard(rest: Any) -> None:
    """Make every later call of a kfp_server_api REST client fail clearly instead of hanging or
    reading the wrong thing:

    - connect and read timeouts: kfp.Client's methods pass no `_request_timeout`, and the REST client
      then sends an explicit None, which overrides any pool default;
    - no redirects: a login proxy (Dex, oauth2-proxy, IAP) answers with a redirect to an HTML page,
      which urllib3 would follow and the client read as an empty result; a 3xx is an error instead;
    - a successful answer that is not JSON (such a login page served directly) is an error too.
    """
    import kfp_server_api

    request, send = rest.request, rest.pool_manager.request
    rest.pool_manager.request = lambda *args, **kwargs: send(*args, **kwargs, redirect=False)

    def guarded(*args: Any, _request_timeout: Any = None, _preload_content: bool = True, **kwargs: Any) -> Any:
        response = request(*args, _request_timeout=_request_timeout or (CONNECT_TIMEOUT_S, READ_TIMEOUT_S),
                           _preload_content=_preload_content, **kwargs)
        kind = response.getheader("Content-Type") or ""
        if _preload_content and response.data and "json" not in kind:
            refused = kfp_server_api.ApiException(http_resp=response)
            refused.reason = (f"answered with {kind or 'no content type'}, not JSON: a login page in front of the "
                              "API? Give a token (--token) or the URL of the API service itself")
            refused.body = b""  # the page itself says nothing useful in one line
            raise refused
        return response

    rest.request = guarded


def _healthz(host: str, token: str | None) -> None:
    """One healthz call, so that a refusal (e.g. a bad token) is reported at once with the server's
    message; kfp.Client's constructor retries a failing healthz for 25 s and then drops the message."""
    import kfp_server_api

    config = kfp_server_api.Configuration(host=host.rstrip("/"))
    if token:
        config.api_key["authorization"], config.api_key_prefix["authorization"] = token, "Bearer"
    api_client = kfp_server_api.ApiClient(config)
    _guard(api_client.rest_client)
    with _calling(host, "healthz"):
        kfp_server_api.HealthzServiceApi(api_client).healthz_service_get_healthz()


def _pages(host: str, call: str, list_page: Any, items: str, **kwargs: Any) -> Iterator[Any]:
    """Every item of a paginated list call."""
    token = ""
    while True:
        with _calling(host, call):
            page = list_page(page_token=token, page_size=100, **kwargs)
        yield from getattr(page, items) or []
        token = page.next_page_token or ""
        if not token:
            return


def _equals(key: str, value: str) -> str:
    return json.dumps({"predicates": [{"operation": "EQUALS", "key": key, "string_value": value}]})


def find_pipeline(client: Any, host: str, name: str, namespace: str | None = None) -> Any | None:
    """The server's pipeline named `name` (in `namespace` for multi-user installs), or None."""
    found = [p for p in _pages(host, f"list_pipelines (name {name!r})", client.list_pipelines, "pipelines",
                               filter=_equals("display_name", name), namespace=namespace)
             if name in (p.name, p.display_name)]
    if len(found) > 1:
        raise ReprflowError(f"KFP server {host}: {len(found)} pipelines are named {name!r}; cannot tell which to use")
    return found[0] if found else None


def _versions(client: Any, host: str, pipeline: Any) -> list[Any]:
    call = f"list_pipeline_versions (pipeline {pipeline.display_name or pipeline.name!r})"
    return list(_pages(host, call, client.list_pipeline_versions, "pipeline_versions",
                       pipeline_id=pipeline.pipeline_id, sort_by="created_at desc"))


def _same_content(version: Any, digest: str, docs: list[dict[str, Any]]) -> bool:
    if f"sha256:{digest}" in (version.description or ""):
        return True
    spec = version.pipeline_spec
    if not spec:
        return False
    platform = _platform_spec(docs)
    combined = {"pipeline_spec": docs[0], "platform_spec": platform} if platform else None
    return spec == docs[0] or (combined is not None and spec == combined)


def _version_url(host: str, pipeline_id: str, version_id: str) -> str:
    return f"{host.rstrip('/')}/#/pipelines/details/{pipeline_id}/version/{version_id}"


def upload(host: str, package_path: str | Path, pipeline_name: str, version_name: str | None = None,
           description: str | None = None, *, token: str | None = None, namespace: str | None = None) -> Uploaded:
    """Upload a compiled pipeline as a version named `version_name` of `pipeline_name`, which is created
    first if it is new.

    `version_name` defaults to `default_version_name`; if the same YAML is already a version of the
    pipeline, nothing is uploaded and that version is returned (`created` False). A different YAML
    under an existing version name is an error.
    """
    docs = read_package(package_path)
    digest = package_digest(docs)
    version_name = version_name or default_version_name(digest)
    text = _describe(description, docs, digest)
    client = connect(host, token, namespace)
    pipeline = find_pipeline(client, host, pipeline_name, namespace)
    new_pipeline = pipeline is None
    if new_pipeline:
        # Created empty, then given its first version below: an upload of the package itself (kfp.Client's
        # upload_pipeline) would name that version after the pipeline, whatever `version_name` says.
        import kfp_server_api

        api = kfp_server_api.PipelineServiceApi(client._run_api.api_client)  # its guarded REST client
        with _calling(host, f"create_pipeline {pipeline_name!r}"):
            pipeline = api.pipeline_service_create_pipeline(kfp_server_api.V2beta1Pipeline(
                name=pipeline_name, display_name=pipeline_name, description=text, namespace=namespace))
    versions = [] if new_pipeline else _versions(client, host, pipeline)
    for existing in versions:
        if _same_content(existing, digest, docs):
            return Uploaded(pipeline_name, pipeline.pipeline_id, existing.name, existing.pipeline_version_id,
                            created=False, new_pipeline=False,
                            url=_version_url(host, pipeline.pipeline_id, existing.pipeline_version_id))
    for existing in versions:
        if version_name in (existing.name, existing.display_name):
            raise ReprflowError(f"KFP server {host}: pipeline {pipeline_name!r} already has a version named "
                                f"{version_name!r} with a different pipeline; choose another version name")
    with _calling(host, f"upload_pipeline_version {pipeline_name!r} {version_name!r}"):
        version = client.upload_pipeline_version(str(package_path), version_name,
                                                 pipeline_id=pipeline.pipeline_id, description=text)
    return Uploaded(pipeline_name, pipeline.pipeline_id, version.name or version_name, version.pipeline_version_id,
                    created=True, new_pipeline=new_pipeline,
                    url=_version_url(host, pipeline.pipeline_id, version.pipeline_version_id))


def _resolve(client: Any, host: str, pipeline_name: str, version: str | None,
             namespace: str | None) -> tuple[str, str, str]:
    """(pipeline id, version id, version name) of `version` (a name or an id; None: the latest)."""
    pipeline = find_pipeline(client, host, pipeline_name, namespace)
    where = f" in namespace {namespace!r}" if namespace else ""
    if pipeline is None:
        raise ReprflowError(f"KFP server {host}: no pipeline named {pipeline_name!r}{where}; "
                            "upload it first (reprflow upload)")
    versions = _versions(client, host, pipeline)
    if not versions:
        raise ReprflowError(f"KFP server {host}: pipeline {pipeline_name!r} has no versions; upload one first")
    if version is None:
        chosen = max(versions, key=lambda v: v.created_at or datetime.min.replace(tzinfo=timezone.utc))
    else:
        matches = [v for v in versions if version in (v.name, v.display_name, v.pipeline_version_id)]
        if not matches:
            known = ", ".join(repr(v.name) for v in versions[:5]) + (", ..." if len(versions) > 5 else "")
            raise ReprflowError(f"KFP server {host}: pipeline {pipeline_name!r} has no version {version!r} "
                                f"(latest first: {known})")
        chosen = matches[0]
    return pipeline.pipeline_id, chosen.pipeline_version_id, chosen.name


def _experiment(client: Any, host: str, name: str, namespace: str | None) -> str:
    """The id of experiment `name`, created if missing."""
    if not name:
        raise ReprflowError("the experiment name must not be empty")
    with _calling(host, f"create_experiment {name!r}"):
        return client.create_experiment(name, namespace=namespace).experiment_id


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")


def submit(host: str, pipeline_name: str, version: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
           run_name: str | None = None, parameters: dict[str, Any] | None = None,
           pipeline_root: str | None = None, *, token: str | None = None,
           namespace: str | None = None, service_account: str | None = None, once: bool = False) -> Submitted:
    """Run a version (default: the latest) of an uploaded pipeline in `experiment` (created if missing).

    `pipeline_root` None or "" leaves the artifact root to the server's default; `service_account`
    None leaves the run's Kubernetes service account to the server's default. With `once`, a run
    named `run_name` already in the experiment is returned instead of a second one being made: a
    retry whose first create_run reached the server but whose reply was lost makes no duplicate.
    """
    client = connect(host, token, namespace)
    pipeline_id, version_id, version_name = _resolve(client, host, pipeline_name, version, namespace)
    experiment_id = _experiment(client, host, experiment, namespace)
    run_name = run_name or f"{pipeline_name}-{_stamp()}"
    if once:
        existing = next(_pages(host, f"list_runs (name {run_name!r})", client.list_runs, "runs",
                               experiment_id=experiment_id, filter=_equals("display_name", run_name),
                               namespace=namespace), None)
        if existing is not None:
            return Submitted("run", existing.run_id, run_name, experiment_id, pipeline_id, version_id, version_name,
                             url=f"{host.rstrip('/')}/#/runs/details/{existing.run_id}")
    with _calling(host, f"create_run {run_name!r}"):
        run = client.run_pipeline(experiment_id, run_name, params=dict(parameters or {}), pipeline_id=pipeline_id,
                                  version_id=version_id, pipeline_root=pipeline_root or None,
                                  service_account=service_account)
    return Submitted("run", run.run_id, run_name, experiment_id, pipeline_id, version_id, version_name,
                     url=f"{host.rstrip('/')}/#/runs/details/{run.run_id}")


# --- schedules -----------------------------------------------------------------------------------

# (field name, lowest, highest, names for the values from `lowest` on, whether '?' is allowed)
_CRON_FIELDS = (
    ("second", 0, 59, (), False),
    ("minute", 0, 59, (), False),
    ("hour", 0, 23, (), False),
    ("day-of-month", 1, 31, (), True),
    ("month", 1, 12, ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"), False),
    ("day-of-week", 0, 6, ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), True),
)
_CRON_DESCRIPTORS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _cron_value(expr: str, field: str, text: str, low: int, high: int, names: tuple[str, ...]) -> int:
    if text.upper() in names:
        return low + names.index(text.upper())
    if not text.isdigit():
        raise ReprflowError(f"cron {expr!r}: {field} field has {text!r}, not a number"
                            + (f" or one of {', '.join(names)}" if names else ""))
    if not low <= int(text) <= high:
        raise ReprflowError(f"cron {expr!r}: {field} value {text} is out of range {low}-{high}")
    return int(text)


def normalize_cron(expr: str) -> str:
    """KFP's 6-field cron (second minute hour day-of-month month day-of-week), checked field by field.

    A 5-field (classic) expression gets "0 " prepended, i.e. runs at second 0; the descriptors
    @hourly, @daily, @weekly, @monthly, @yearly (and @midnight, @annually) pass as they are.
    """
    fields = expr.split()
    if fields and fields[0].startswith("@"):
        if len(fields) == 1 and fields[0] in _CRON_DESCRIPTORS:
            return fields[0]
        hint = "; use --interval for a fixed period" if fields[0] == "@every" else ""
        raise ReprflowError(f"cron {expr!r}: unknown descriptor (known: {', '.join(_CRON_DESCRIPTORS)}){hint}")
    if len(fields) == 5:
        fields = ["0", *fields]
    if len(fields) != 6:
        raise ReprflowError(f"cron {expr!r}: expected 6 fields (second minute hour day-of-month month "
                            f"day-of-week) or 5 (without the second), got {len(fields)}")
    for text, (field, low, high, names, question) in zip(fields, _CRON_FIELDS):
        for item in text.split(","):
            span, slash, step = item.partition("/")
            if slash and (not step.isdigit() or int(step) == 0):
                raise ReprflowError(f"cron {expr!r}: {field} field has step {step!r}, not a positive integer")
            if span == "*" or (span == "?" and question and not slash):
                continue
            start, dash, end = span.partition("-")
            first = _cron_value(expr, field, start, low, high, names)
            if dash and _cron_value(expr, field, end, low, high, names) < first:
                raise ReprflowError(f"cron {expr!r}: {field} range {span!r} runs backwards")
    return " ".join(fields)


def _rfc3339(what: str, value: str | None) -> str | None:
    """An ISO 8601 time as RFC 3339 UTC ('Z'); a time without zone is taken as UTC."""
    if value is None or value == "":
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise ReprflowError(f"{what} {value!r}: not an ISO 8601 time (e.g. 2026-01-31T06:00:00Z)") from None
    when = when.replace(tzinfo=timezone.utc) if when.tzinfo is None else when.astimezone(timezone.utc)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def check_trigger(cron: str | None, interval_seconds: int | None) -> tuple[str | None, int | None]:
    """Exactly one of a cron expression (normalized) and a positive interval in seconds."""
    if (cron is None) == (interval_seconds is None):
        raise ReprflowError("a schedule needs exactly one of a cron expression (--cron) and an interval "
                            f"in seconds (--interval); got {'both' if cron is not None else 'neither'}")
    if cron is not None:
        return normalize_cron(cron), None
    if isinstance(interval_seconds, bool) or not isinstance(interval_seconds, int) or interval_seconds <= 0:
        raise ReprflowError(f"interval {interval_seconds!r}: must be a positive whole number of seconds")
    return None, interval_seconds


def schedule(host: str, pipeline_name: str, version: str | None = None, experiment: str = DEFAULT_EXPERIMENT,
             name: str | None = None, cron: str | None = None, interval_seconds: int | None = None,
             parameters: dict[str, Any] | None = None, pipeline_root: str | None = None,
             max_concurrency: int = 1, start_time: str | None = None, end_time: str | None = None,
             catchup: bool = False, *, token: str | None = None, namespace: str | None = None,
             service_account: str | None = None) -> Submitted:
    """Create an enabled recurring run of a pipeline version (default: the latest, resolved now).

    Exactly one of `cron` (6 fields, or 5 made 6 by `normalize_cron`) and `interval_seconds`;
    `catchup` False means missed intervals are not backfilled. Everything is checked before connecting.
    """
    cron, interval_seconds = check_trigger(cron, interval_seconds)
    low, high = MAX_CONCURRENCY
    if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or not low <= max_concurrency <= high:
        raise ReprflowError(f"max concurrency {max_concurrency!r}: must be an integer from {low} to {high}")
    start, end = _rfc3339("start time", start_time), _rfc3339("end time", end_time)
    if start and end and end <= start:
        raise ReprflowError(f"end time {end} is not after start time {start}")
    client = connect(host, token, namespace)
    pipeline_id, version_id, version_name = _resolve(client, host, pipeline_name, version, namespace)
    experiment_id = _experiment(client, host, experiment, namespace)
    name = name or f"{pipeline_name}-schedule-{_stamp()}"
    with _calling(host, f"create_recurring_run {name!r}"):
        job = client.create_recurring_run(
            experiment_id, name, start_time=start, end_time=end, interval_second=interval_seconds,
            cron_expression=cron, max_concurrency=max_concurrency, no_catchup=not catchup,
            params=dict(parameters or {}), pipeline_id=pipeline_id, version_id=version_id, enabled=True,
            pipeline_root=pipeline_root or None, service_account=service_account,
        )
    return Submitted("recurring run", job.recurring_run_id, name, experiment_id, pipeline_id, version_id,
                     version_name, url=f"{host.rstrip('/')}/#/recurringrun/details/{job.recurring_run_id}")
