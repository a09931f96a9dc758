"""New-data trigger: a GCS object-finalize notification, pushed by Pub/Sub, starts a retrain run on KFP.

A producer writes a batch folder `PREFIX/<batch>/part-*.csv.gz` and then the completion marker
`PREFIX/<batch>/_SUCCESS`. The bucket's notification (manifests/base/pubsub.yaml) reports every
finalized object; only the marker starts a run, whose `data_uri` is the marker's folder
`gs://BUCKET/PREFIX/<batch>/`. Checks, in order, each outcome logged as one JSON line:

    authenticate (optional OIDC)  -> 401 unauthenticated / 403 forbidden
    well-formed push body         -> malformed  (acknowledged: redelivery cannot fix it)
    eventType OBJECT_FINALIZE, the configured bucket, under the prefix, basename == marker, inside a
    batch folder                  -> ignored    (acknowledged)
    dedup claim on (bucket, object, generation)
                                  -> duplicate  (acknowledged) once a run was submitted for it;
                                     503 while another delivery holds a fresh claim (it may still fail)
    submit to KFP                 -> submitted; on failure the claim is released and the answer is
                                     503, so Pub/Sub redelivers with backoff

Pub/Sub takes 102, 200, 201, 202 and 204 as an acknowledgement; everything else is redelivered.
Acknowledged outcomes answer 200 with the outcome as JSON (for people replaying by hand).

A re-upload of the marker is a new object generation and therefore a new run: producers rewrite the
marker only when the batch's data changed. A claim whose holder died between claiming and recording
its run (state "claimed") is taken over after `lease_s`, so a crash cannot swallow a batch.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import logging
import os
import re
import signal
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Mapping
from urllib.parse import urlsplit

from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.gcs import StorageError
from reprflow.pipelines.trigger_store import Claim, ClaimStore, open_store

log = logging.getLogger("reprflow.trigger")

FINALIZE = "OBJECT_FINALIZE"
DEFAULT_PIPELINE = "retrain"  # short name: its parameters come from pipeline_parameters(name, config)
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
DEFAULT_LEASE_S = 900.0  # a submit takes seconds; a claim this old without a run is abandoned
MAX_BODY = 16 * 1024 * 1024  # Pub/Sub messages are at most 10 MB; a GCS notification is a few KB

ENV_CONFIG = "REPRFLOW_CONFIG"
ENV_BUCKET = "REPRFLOW_TRIGGER_BUCKET"
ENV_PREFIX = "REPRFLOW_TRIGGER_PREFIX"
ENV_DEDUP = "REPRFLOW_TRIGGER_DEDUP"
ENV_AUDIENCE = "REPRFLOW_TRIGGER_AUDIENCE"
ENV_PUSH_SA = "REPRFLOW_TRIGGER_PUSH_SA"

SUBMITTED, DUPLICATE, IGNORED, MALFORMED = "submitted", "duplicate", "ignored", "malformed"
UNAVAILABLE, UNAUTHENTICATED, FORBIDDEN = "unavailable", "unauthenticated", "forbidden"
STATUS = {SUBMITTED: 200, DUPLICATE: 200, IGNORED: 200, MALFORMED: 200,
          UNAVAILABLE: 503, UNAUTHENTICATED: 401, FORBIDDEN: 403}

Parameters = Callable[[dict[str, Any], str], dict[str, Any]]  # (config, batch URI) -> run parameters
Submit = Callable[[str, dict[str, Any]], Any]  # (run name, parameters) -> kfp_server.Submitted
CertSource = Callable[[], Mapping[str, str]]  # key id -> PEM certificate


class Refused(Exception):
    """Processing stops with this outcome (one of STATUS) and a one-line reason."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind, self.reason = kind, reason


@dataclass(frozen=True)
class Notification:
    """What a GCS notification says about one object generation."""

    event_type: str
    bucket: str
    name: str
    generation: int
    message_id: str = ""

    def describe(self) -> dict[str, Any]:
        return {"message_id": self.message_id, "event_type": self.event_type, "bucket": self.bucket,
                "object": self.name, "generation": self.generation}


@dataclass(frozen=True)
class Outcome:
    """The answer to one push: `kind` decides the HTTP status; `details` go to the log line."""

    kind: str
    reason: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> int:
        return STATUS[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.kind, "status": self.status, "reason": self.reason, **self.details}


@dataclass(frozen=True)
class TriggerSettings:
    """Which objects start a run, and where the run goes. `prefix` is "" or ends with "/"."""

    bucket: str
    prefix: str = "incoming/"
    marker: str = "_SUCCESS"
    experiment: str = "retrain"
    pipeline_name: str = "reprflow-retrain"

    def __post_init__(self) -> None:
        if not self.bucket:
            raise ReprflowError(f"trigger bucket is empty: set trigger.bucket in the configuration or ${ENV_BUCKET}")
        if self.prefix and not self.prefix.endswith("/"):  # a folder: "incoming" must not match "incoming-old/"
            object.__setattr__(self, "prefix", self.prefix + "/")
        if not self.marker or "/" in self.marker:
            raise ReprflowError(f"trigger marker {self.marker!r}: expected an object name without '/'")


# --- parsing and selection (pure) ----------------------------------------------------------------


def _decode_data(data: Any) -> dict[str, Any]:
    """The JSON object resource in `message.data` ({} when there is none: payloadFormat NONE)."""
    if data is None or data == "":
        return {}
    if not isinstance(data, str):
        raise Refused(MALFORMED, f"message.data is a {type(data).__name__}, not a base64 string")
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise Refused(MALFORMED, f"message.data is not base64: {data[:40]!r}") from None
    try:
        resource = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Refused(MALFORMED, f"message.data is not JSON: {raw[:40]!r}") from None
    if not isinstance(resource, dict):
        raise Refused(MALFORMED, f"message.data is JSON {type(resource).__name__}, not an object resource")
    return resource


def _pick(what: str, attribute: str, attributes: dict[str, Any], key: str, resource: dict[str, Any]) -> str:
    """A field from the attributes or the object resource; both given must agree."""
    a, r = attributes.get(attribute), resource.get(key)
    a, r = (None if v is None else str(v) for v in (a, r))
    if a is not None and r is not None and a != r:
        raise Refused(MALFORMED, f"attribute {attribute}={a!r} disagrees with data.{key}={r!r}")
    value = a if a is not None else r
    if not value:
        raise Refused(MALFORMED, f"no {what}: neither attribute {attribute} nor data.{key} is given")
    return value


def parse_push(body: bytes) -> Notification:
    """The notification in a Pub/Sub push body; Refused(MALFORMED) says what is wrong."""
    try:
        envelope = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise Refused(MALFORMED, f"body is not JSON ({len(body)} bytes)") from None
    if not isinstance(envelope, dict) or not isinstance(envelope.get("message"), dict):
        raise Refused(MALFORMED, "body has no 'message' object")
    message = envelope["message"]
    attributes = message.get("attributes") or {}
    if not isinstance(attributes, dict):
        raise Refused(MALFORMED, "message.attributes is not an object")
    resource = _decode_data(message.get("data"))
    if not attributes and not resource:
        raise Refused(MALFORMED, "message has neither attributes nor data")
    event = attributes.get("eventType")
    if not isinstance(event, str) or not event:
        raise Refused(MALFORMED, f"message attribute eventType {event!r} is missing or not a string")
    bucket = _pick("bucket", "bucketId", attributes, "bucket", resource)
    name = _pick("object name", "objectId", attributes, "name", resource)
    generation = _pick("generation", "objectGeneration", attributes, "generation", resource)
    if not re.fullmatch(r"[1-9][0-9]*", generation):
        raise Refused(MALFORMED, f"generation {generation!r} is not a positive integer")
    message_id = str(message.get("messageId") or message.get("message_id") or "")
    return Notification(event, bucket, name, int(generation), message_id)


def batch_uri(n: Notification, s: TriggerSettings) -> str:
    """gs://bucket/PREFIX/<batch>/ for a finalized marker; Refused(IGNORED) for anything else."""
    if n.event_type != FINALIZE:
        raise Refused(IGNORED, f"event type {n.event_type} is not {FINALIZE}")
    if n.bucket != s.bucket:
        raise Refused(IGNORED, f"bucket {n.bucket!r} is not the configured bucket {s.bucket!r}")
    if not n.name.startswith(s.prefix):
        raise Refused(IGNORED, f"object {n.name!r} is not under prefix {s.prefix!r}")
    folder, _, base = n.name.rpartition("/")
    if base != s.marker:
        raise Refused(IGNORED, f"object {n.name!r} is not a completion marker ({s.marker}); "
                               "its batch starts when the marker arrives")
    if not folder[len(s.prefix):].strip("/"):  # PREFIX/_SUCCESS (or PREFIX//_SUCCESS) itself: no batch folder
        raise Refused(IGNORED, f"marker {n.name!r} is not inside a batch folder under {s.prefix!r}")
    return f"gs://{n.bucket}/{folder}/"


def dedup_key(n: Notification) -> str:
    """sha256 hex of (bucket, object, generation): Pub/Sub redelivers; a new generation is new data."""
    return hashlib.sha256(json.dumps([n.bucket, n.name, n.generation]).encode("utf-8")).hexdigest()


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:500] or type(exc).__name__


def _utc(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _age(record: dict[str, Any], now: float) -> float:
    """Seconds since the record was claimed; unreadable times count as very old (abandoned)."""
    try:
        claimed = datetime.strptime(record["claimed_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    except (KeyError, TypeError, ValueError):
        return float("inf")
    return now - claimed.timestamp()


# --- authentication of the push ------------------------------------------------------------------


class GoogleCerts:
    """Google's OIDC signing certificates, fetched over HTTPS and cached for their max-age."""

    def __init__(self, url: str = GOOGLE_CERTS_URL, timeout_s: float = 10.0) -> None:
        self.url, self.timeout_s = url, timeout_s
        self._certs: Mapping[str, str] | None = None
        self._expires = 0.0
        self._lock = threading.Lock()

    def __call__(self) -> Mapping[str, str]:
        import requests

        with self._lock:
            if self._certs is not None and time.monotonic() < self._expires:
                return self._certs
            response = requests.get(self.url, timeout=self.timeout_s)
            response.raise_for_status()
            certs = response.json()
            if not isinstance(certs, dict) or not certs:
                raise ValueError(f"{self.url}: expected a JSON object of key id -> certificate")
            age = re.search(r"max-age=(\d+)", response.headers.get("Cache-Control", ""))
            self._certs, self._expires = certs, time.monotonic() + (int(age.group(1)) if age else 300)
            return certs


class PushAuth:
    """Checks the push's OIDC token: Google-signed, not expired, `aud` = the push URL, and `email`
    (verified) = the subscription's service account. Without this check anyone who can reach the
    endpoint can start runs, so with it off the ingress must authenticate instead."""

    def __init__(self, audience: str, email: str, certs: CertSource | None = None, clock_skew_s: int = 10) -> None:
        if not audience or not email:
            raise ReprflowError("push authentication needs both an audience (the push URL) and the push "
                                f"service account's e-mail (${ENV_AUDIENCE}, ${ENV_PUSH_SA})")
        self.audience, self.email = audience, email
        self.certs = certs or GoogleCerts()
        self.clock_skew_s = clock_skew_s

    def check(self, authorization: str | None) -> dict[str, Any]:
        """The token's claims; Refused(UNAUTHENTICATED / FORBIDDEN / UNAVAILABLE) otherwise."""
        from google.auth import exceptions as auth_exceptions
        from google.auth import jwt

        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Refused(UNAUTHENTICATED, "no 'Authorization: Bearer <OIDC token>' header")
        try:
            certs = self.certs()
        except Exception as exc:  # network, HTTP status, bad JSON: cannot verify now, so retry later
            raise Refused(UNAVAILABLE, f"cannot fetch Google's signing certificates ({_one_line(exc)})") from None
        try:
            claims = jwt.decode(token.strip(), certs=certs, audience=None, clock_skew_in_seconds=self.clock_skew_s)
        except (ValueError, auth_exceptions.GoogleAuthError) as exc:
            raise Refused(UNAUTHENTICATED, f"OIDC token rejected: {_one_line(exc)}") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Refused(FORBIDDEN, f"OIDC token issuer {claims.get('iss')!r} is not Google")
        if claims.get("aud") != self.audience:
            raise Refused(FORBIDDEN, f"OIDC token audience {claims.get('aud')!r} is not {self.audience!r}")
        if claims.get("email") != self.email:
            raise Refused(FORBIDDEN, f"OIDC token e-mail {claims.get('email')!r} is not {self.email!r}")
        if claims.get("email_verified") is not True:
            raise Refused(FORBIDDEN, f"OIDC token e-mail {claims.get('email')!r} is not verified")
        return claims


# --- the handler ---------------------------------------------------------------------------------


def parameters_for(pipeline: str) -> Parameters:
    """Run parameters: `pipeline_parameters(pipeline, config)` with `data_uri` set to the batch.
    Resolved at call time, so a pipeline that does not exist yet fails each delivery (503), not startup."""

    def build(config: dict[str, Any], uri: str) -> dict[str, Any]:
        from reprflow.pipelines.compile import pipeline_parameters

        return pipeline_parameters(pipeline, config) | {"data_uri": uri}

    return build


def kfp_submitter(host: str, pipeline_name: str, experiment: str, pipeline_root: str = "", *,
                  token: str | None = None, namespace: str | None = None,
                  service_account: str | None = None) -> Submit:
    """A `Submit` that runs the latest version of `pipeline_name` on the KFP server at `host`."""
    from reprflow.pipelines import kfp_server

    def submit(run_name: str, parameters: dict[str, Any]) -> Any:
        return kfp_server.submit(host, pipeline_name, None, experiment, run_name, parameters, pipeline_root,
                                 token=token, namespace=namespace, service_account=service_account, once=True)

    return submit


class TriggerHandler:
    """Turns push bodies into at most one run per (bucket, object, generation); see the module doc."""

    def __init__(self, settings: TriggerSettings, config: dict[str, Any], submit: Submit, store: ClaimStore, *,
                 parameters: Parameters | None = None, auth: PushAuth | None = None,
                 lease_s: float = DEFAULT_LEASE_S, clock: Callable[[], float] = time.time) -> None:
        self.settings, self.config, self.submit, self.store = settings, config, submit, store
        self.parameters = parameters or parameters_for(DEFAULT_PIPELINE)
        self.auth, self.lease_s, self.clock = auth, lease_s, clock
        # Neither kfp's pipeline builder (one global "current pipeline": pipeline_parameters builds
        # the pipeline) nor kfp_server (swaps sys.stdout and warning filters) is thread-safe, and
        # runs are rare (one per batch): parameters and submits go one at a time.
        self._kfp_lock = threading.Lock()

    def handle(self, body: bytes, authorization: str | None = None, *, authenticate: bool = True) -> Outcome:
        """Process one push body (the Authorization header is checked when `auth` is set) and log it."""
        details: dict[str, Any] = {}
        try:
            if authenticate and self.auth is not None:
                self.auth.check(authorization)
            notification = parse_push(body)
            details = notification.describe()
            uri = batch_uri(notification, self.settings)
            details["data_uri"] = uri
            outcome = self._run_once(notification, uri, details)
        except Refused as refused:
            outcome = Outcome(refused.kind, refused.reason, details)
        except Exception as exc:  # a bug or an unforeseen failure: keep the message (a claim left behind
            log.exception("handling a push failed")  # is taken over after the lease)
            outcome = Outcome(UNAVAILABLE, f"internal error ({type(exc).__name__}: {_one_line(exc)})", details)
        level = logging.INFO if outcome.status < 300 else logging.WARNING
        log.log(level, "%s", json.dumps(outcome.to_json()))
        return outcome

    def _run_once(self, n: Notification, uri: str, details: dict[str, Any]) -> Outcome:
        try:
            with self._kfp_lock:
                params = self.parameters(self.config, uri)
        except Exception as exc:  # e.g. the retrain pipeline is not deployed yet: keep the message
            if not isinstance(exc, ReprflowError):
                log.exception("building the run parameters for %s failed", uri)
            raise Refused(UNAVAILABLE, f"cannot build the run's parameters ({_one_line(exc)})") from None
        key = dedup_key(n)
        details["dedup"] = self.store.location(key)
        now = self.clock()
        record = {**n.describe(), "data_uri": uri, "state": "claimed", "claim_id": uuid.uuid4().hex,
                  "claimed_at": _utc(now), "claimed_by": socket.gethostname()}
        claim = self._claim(key, record, now)
        batch = uri[len(f"gs://{n.bucket}/{self.settings.prefix}"):].strip("/").replace("/", "-")
        run_name = f"{self.settings.pipeline_name}-{batch}-g{n.generation}"
        try:
            with self._kfp_lock:
                run = self.submit(run_name, params)
        except Exception as exc:
            if not isinstance(exc, ReprflowError):
                log.exception("submitting %s failed", run_name)
            released = self._release(claim)
            raise Refused(UNAVAILABLE, f"submit failed ({_one_line(exc)}); claim "
                                       f"{'released' if released else 'left for takeover after the lease'}") from None
        details |= {"run_id": run.id, "run_name": run.name, "run_url": run.url}
        try:
            self.store.update(claim, record | {"state": "submitted", "run_id": run.id, "run_name": run.name,
                                               "run_url": run.url, "submitted_at": _utc(self.clock())})
        except StorageError as exc:  # the run exists and the claim still blocks duplicates
            log.error("run %s submitted but its dedup record %s was not updated: %s", run.id, claim.where, exc)
        return Outcome(SUBMITTED, f"submitted run {run.id} for {uri}", details)

    def _claim(self, key: str, record: dict[str, Any], now: float) -> Claim:
        """Our claim on `key`, or Refused: DUPLICATE (a run exists), UNAVAILABLE (store down, or a
        fresh claim held by a delivery that may still fail)."""
        try:
            for _ in range(3):
                got = self.store.claim(key, record)
                if isinstance(got, Claim):
                    return got
                if got.record.get("state") == "submitted":
                    raise Refused(DUPLICATE, f"already submitted as run {got.record.get('run_id')} ({got.where})")
                age = _age(got.record, now)
                if age < self.lease_s:
                    raise Refused(UNAVAILABLE, f"claim {got.where} is {max(age, 0):.0f} s old and held by "
                                               "another delivery in flight; retry later")
                taken = self.store.take_over(got, record)
                if taken is not None:
                    log.warning("took over abandoned claim %s (claimed %s by %s, no run recorded)", got.where,
                                got.record.get("claimed_at"), got.record.get("claimed_by"))
                    return taken
        except StorageError as exc:
            raise Refused(UNAVAILABLE, f"dedup store unavailable ({_one_line(exc)})") from None
        raise Refused(UNAVAILABLE, f"claim {self.store.location(key)} is contended; retry later")

    def _release(self, claim: Claim) -> bool:
        try:
            return self.store.release(claim)
        except StorageError as exc:
            log.error("could not release claim %s: %s", claim.where, exc)
            return False


# --- settings from the configuration and the environment ----------------------------------------


def build_handler(config_path: str | None, kfp_host: str | None, *, dedup: str | None = None,
                  pipeline: str = DEFAULT_PIPELINE, pipeline_name: str | None = None,
                  audience: str | None = None, push_service_account: str | None = None,
                  token: str | None = None, namespace: str | None = None, service_account: str | None = None,
                  env: Mapping[str, str] = os.environ) -> TriggerHandler:
    """The handler `reprflow trigger serve|handle` runs: arguments first, then the environment
    (REPRFLOW_CONFIG, REPRFLOW_TRIGGER_BUCKET/PREFIX/DEDUP/AUDIENCE/PUSH_SA), then the config file."""
    from reprflow.components.common.config import load_config

    config_path = config_path or env.get(ENV_CONFIG)
    if not config_path:
        raise ReprflowError(f"no configuration: give --config or set ${ENV_CONFIG}")
    config = load_config(config_path)
    if not kfp_host:
        raise ReprflowError("no KFP host: give --host-kfp or set $REPRFLOW_KFP_HOST")
    section = config["trigger"]
    settings = TriggerSettings(
        bucket=env.get(ENV_BUCKET) or section["bucket"],
        prefix=env.get(ENV_PREFIX, section["prefix"]),
        marker=section["marker"], experiment=section["experiment"],
        pipeline_name=pipeline_name or f"reprflow-{pipeline}",
    )
    registry = config["cluster"]["registry"]
    dedup = dedup or env.get(ENV_DEDUP) or (f"{registry.rstrip('/')}/trigger-seen" if registry else "")
    if not dedup:
        raise ReprflowError(f"no dedup location: give --dedup, set ${ENV_DEDUP} or cluster.registry in {config_path}")
    audience = audience or env.get(ENV_AUDIENCE) or None
    push_service_account = push_service_account or env.get(ENV_PUSH_SA) or None
    auth = PushAuth(audience, push_service_account or "") if audience or push_service_account else None
    submit = kfp_submitter(kfp_host, settings.pipeline_name, settings.experiment,
                           config["cluster"]["pipeline_root"], token=token, namespace=namespace,
                           service_account=service_account)
    return TriggerHandler(settings, config, submit, open_store(dedup), parameters=parameters_for(pipeline), auth=auth)


# --- HTTP ----------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for requests in flight: a graceful SIGTERM
    block_on_close = True


class _Requests(BaseHTTPRequestHandler):
    trigger: TriggerHandler
    timeout = 60  # seconds a client may stall; bounds how long shutdown waits for it
    server_version = "reprflow-trigger"

    def log_message(self, format: str, *args: Any) -> None:  # the outcome line is the log
        log.debug("%s %s", self.address_string(), format % args)

    def _reply(self, status: int, payload: dict[str, Any]) -> None:
        data = (json.dumps(payload) + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        path = urlsplit(self.path).path
        if path == "/healthz":
            self._reply(200, {"status": "ok"})
        elif path == "/pubsub":
            self._reply(405, {"error": "POST a Pub/Sub push body to /pubsub"})
        else:
            self._reply(404, {"error": f"no such path {path!r}"})

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        if path != "/pubsub":
            self._reply(404, {"error": f"no such path {path!r}"})
            return
        length = self.headers.get("Content-Length")
        if length is None or not length.isdigit():
            self._reply(411, {"error": "a Content-Length header is required"})
            return
        if int(length) > MAX_BODY:
            self.close_connection = True
            self._reply(413, {"error": f"body of {length} bytes exceeds {MAX_BODY}"})
            return
        outcome = self.trigger.handle(self.rfile.read(int(length)), self.headers.get("Authorization"))
        self._reply(outcome.status, outcome.to_json())


def make_server(trigger: TriggerHandler, listen: str = "0.0.0.0", port: int = 8080) -> ThreadingHTTPServer:
    """An HTTP server (not yet serving): GET /healthz, POST /pubsub."""
    handler = type("TriggerRequests", (_Requests,), {"trigger": trigger})
    return _Server((listen, port), handler)


def serve(server: ThreadingHTTPServer) -> None:
    """Serve until SIGTERM or SIGINT, then finish the requests in flight and return."""
    stopping = threading.Event()

    def stop(signum: int, frame: Any) -> None:
        if not stopping.is_set():
            stopping.set()
            log.info("received %s: finishing requests in flight, then stopping", signal.Signals(signum).name)
            threading.Thread(target=server.shutdown, daemon=True).start()  # shutdown() blocks: not here

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    host, port = server.server_address[:2]
    log.info("listening on http://%s:%d (GET /healthz, POST /pubsub)", host, port)
    try:
        server.serve_forever(poll_interval=0.5)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()
        log.info("stopped")
