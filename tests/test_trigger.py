"""The new-data trigger over real HTTP on loopback: Pub/Sub push bodies in, runs on the spec-validating
KFP stand-in out, dedup on the GCS emulator behind the precondition-enforcing proxy and on a local
directory, OIDC tokens signed with a locally generated key and checked against certificates served
on loopback."""

from __future__ import annotations

import base64
import http.client
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

import pytest
import yaml
from kfp_api_standin import KfpApiStandin, SpecValidator

from reprflow.components.common.config import load_config
from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.gcs import GCS, RetryPolicy
from reprflow.pipelines import kfp_server
from reprflow.pipelines.cli import main
from reprflow.pipelines.compile import compile_pipeline, pipeline_parameters
from reprflow.pipelines.trigger import (
    GoogleCerts,
    Notification,
    PushAuth,
    Refused,
    TriggerHandler,
    TriggerSettings,
    batch_uri,
    dedup_key,
    kfp_submitter,
    make_server,
    parameters_for,
    serve,
)
from reprflow.pipelines.trigger_store import ClaimStore, GcsClaimStore, LocalClaimStore

REPO = Path(__file__).resolve().parents[1]
BUCKET = "reprflow-test"  # the emulator's bucket (gcs_fixtures.BUCKET): notifications and dedup records
PIPELINE = "reprflow-representation"
EXPERIMENT = "retrain-test"
MARKER = "incoming/batch-001/_SUCCESS"
BATCH_URI = f"gs://{BUCKET}/incoming/batch-001/"
GEN = 1767607200000001
FAST = RetryPolicy(initial_s=0.01, maximum_s=0.05, deadline_s=0.3)
ENV = ("REPRFLOW_CONFIG", "REPRFLOW_KFP_HOST", "REPRFLOW_TRIGGER_BUCKET", "REPRFLOW_TRIGGER_PREFIX",
       "REPRFLOW_TRIGGER_DEDUP", "REPRFLOW_TRIGGER_AUDIENCE", "REPRFLOW_TRIGGER_PUSH_SA", kfp_server.TOKEN_ENV)


# --- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _isolated(kfp_isolated: pytest.MonkeyPatch) -> None:
    """No kfp context file from this machine's home, no setting from the environment."""
    for name in ENV:
        kfp_isolated.delenv(name, raising=False)


@pytest.fixture(scope="module")
def config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    raw = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    raw["data"]["uri"] = f"gs://{BUCKET}/online_retail.csv.gz"
    raw["cluster"] = {"pipeline_root": f"gs://{BUCKET}/root"}
    raw["trigger"] = {"bucket": BUCKET, "prefix": "incoming/", "experiment": EXPERIMENT}
    path = tmp_path_factory.mktemp("config") / "trigger.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def config(config_path: Path) -> dict[str, Any]:
    return load_config(config_path)


@pytest.fixture(scope="module")
def compiled(config: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The representation pipeline stands in for the retrain pipeline (it also takes data_uri)."""
    return compile_pipeline("representation", tmp_path_factory.mktemp("compiled") / "representation.yaml", config)


class Standin(KfpApiStandin):
    """The stand-in with two switches: while `failing`, creating a run answers 503 like an overloaded
    server; for `lost_replies` calls, the run is created but the caller gets a 504 (a gateway that
    timed out while the server went on)."""

    failing = False
    refused = 0
    lost_replies = 0

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        creating = method == "POST" and urlsplit(raw_path).path.endswith("/runs")
        if self.failing and creating:
            self.refused += 1
            return 503, {"code": 14, "message": "injected: the server is unavailable", "details": []}
        reply = super().handle(method, raw_path, headers, body)
        if self.lost_replies and creating and reply[0] == 200:
            self.lost_replies -= 1
            return 504, {"code": 4, "message": "injected: the gateway timed out", "details": []}
        return reply


@pytest.fixture
def server(validator: SpecValidator, compiled: Path) -> Iterator[Standin]:
    with Standin(validator) as s:
        kfp_server.upload(s.url, compiled, PIPELINE)
        yield s


@dataclass
class Dedup:
    store: ClaimStore
    proxy: Any = None  # the GCS fault proxy, for the GCS store


@pytest.fixture(params=["gcs", "local"])
def dedup(request: pytest.FixtureRequest, tmp_path: Path) -> Dedup:
    if request.param == "gcs":
        gcs = request.getfixturevalue("gcs")
        return Dedup(GcsClaimStore(gcs.uri("trigger-seen"), GCS(gcs.client(), retry=FAST)), gcs.proxy)
    return Dedup(LocalClaimStore(tmp_path / "seen"))


@dataclass
class FakeRun:
    id: str
    name: str
    url: str


@dataclass
class Recorder:
    """A `Submit` that records its calls instead of contacting KFP (for the checks before submit)."""

    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, run_name: str, parameters: dict[str, Any]) -> FakeRun:
        self.calls.append((run_name, parameters))
        return FakeRun(f"run-{len(self.calls)}", run_name, f"http://kfp/#/runs/details/run-{len(self.calls)}")


SETTINGS = TriggerSettings(bucket=BUCKET, prefix="incoming/", experiment=EXPERIMENT, pipeline_name=PIPELINE)


def handler_for(config: dict[str, Any], store: ClaimStore, kfp_url: str | None = None, submit: Any = None,
                **kw: Any) -> TriggerHandler:
    """The handler as deployed, but running the representation pipeline with its config parameters."""
    submit = submit or kfp_submitter(kfp_url or "", PIPELINE, EXPERIMENT, config["cluster"]["pipeline_root"])
    return TriggerHandler(SETTINGS, config, submit, store, parameters=parameters_for("representation"), **kw)


@contextmanager
def serving(handler: TriggerHandler) -> Iterator[str]:
    httpd = make_server(handler, "127.0.0.1", 0)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def dead_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"  # closed again: nothing listens there


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def notification(name: str = MARKER, generation: int = GEN, bucket: str = BUCKET, event: str = "OBJECT_FINALIZE",
                 message_id: str = "17000000000001", payload: bool = True) -> dict[str, Any]:
    """A push body as Pub/Sub delivers a Cloud Storage notification (payloadFormat JSON_API_V1 or NONE)."""
    created = "2026-01-05T10:00:00.123Z"
    resource = {
        "kind": "storage#object", "id": f"{bucket}/{name}/{generation}",
        "selfLink": f"https://www.googleapis.com/storage/v1/b/{bucket}/o/{name.replace('/', '%2F')}",
        "name": name, "bucket": bucket, "generation": str(generation), "metageneration": "1",
        "contentType": "application/octet-stream", "timeCreated": created, "updated": created,
        "storageClass": "STANDARD", "timeStorageClassUpdated": created, "size": "0",
        "md5Hash": "1B2M2Y8AsgTpgAmY7PhCfg==", "crc32c": "AAAAAA==", "etag": "CAE=",
    }
    attributes = {
        "notificationConfig": f"projects/_/buckets/{bucket}/notificationConfigs/1", "eventType": event,
        "payloadFormat": "JSON_API_V1" if payload else "NONE", "bucketId": bucket, "objectId": name,
        "objectGeneration": str(generation), "eventTime": "2026-01-05T10:00:00.123456Z",
    }
    message: dict[str, Any] = {"attributes": attributes, "messageId": message_id, "message_id": message_id,
                               "publishTime": "2026-01-05T10:00:01.5Z", "publish_time": "2026-01-05T10:00:01.5Z"}
    if payload:
        message["data"] = b64(json.dumps(resource).encode())
    return {"message": message, "subscription": "projects/reprflow-dev/subscriptions/reprflow-trigger-push"}


def post(url: str, body: Any, token: str | None = None, path: str = "/pubsub") -> tuple[int, dict[str, Any]]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    request = urllib.request.Request(url + path, data=data, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def key_of(name: str = MARKER, generation: int = GEN) -> str:
    return dedup_key(Notification("OBJECT_FINALIZE", BUCKET, name, generation))


def claim_posts(proxy: Any, status: int | None = None) -> list[Any]:
    """The proxy's record of create-if-absent uploads (the dedup claims), optionally with that answer."""
    return [r for r in proxy.requests("POST", "ifGenerationMatch=0") if status is None or r.status == status]


# --- submitting exactly once ----------------------------------------------------------------------


def test_marker_submits_one_run_redelivery_none_new_generation_again(
        dedup: Dedup, server: Standin, config: dict[str, Any]) -> None:
    store = dedup.store
    with serving(handler_for(config, store, server.url)) as url:
        status, out = post(url, notification())
        assert (status, out["outcome"]) == (200, "submitted"), out
        (create,) = server.calls("RunService_CreateRun")
        run = create.body
        expected = pipeline_parameters("representation", config) | {"data_uri": BATCH_URI}
        assert run["runtime_config"] == {"parameters": expected, "pipeline_root": config["cluster"]["pipeline_root"]}
        assert run["display_name"] == f"{PIPELINE}-batch-001-g{GEN}"
        (experiment,) = server.experiments.values()
        assert experiment["display_name"] == EXPERIMENT and run["experiment_id"] == experiment["experiment_id"]
        assert out["run_id"] == create.response["run_id"] and out["data_uri"] == BATCH_URI
        record = store.read(key_of())
        assert record is not None and record["state"] == "submitted" and record["run_id"] == out["run_id"]
        assert (record["bucket"], record["object"], record["generation"]) == (BUCKET, MARKER, GEN)

        status, again = post(url, notification())  # Pub/Sub redelivers the same message
        assert (status, again["outcome"]) == (200, "duplicate"), again
        assert out["run_id"] in again["reason"]
        assert len(server.calls("RunService_CreateRun")) == 1
        if dedup.proxy is not None:  # refused by GCS's precondition, not by a look-before-write
            assert len(claim_posts(dedup.proxy)) == 2 and len(claim_posts(dedup.proxy, 412)) == 1

        status, third = post(url, notification(generation=GEN + 1, message_id="17000000000002"))  # marker re-uploaded
        assert (status, third["outcome"]) == (200, "submitted"), third
        runs = [c.body for c in server.calls("RunService_CreateRun")]
        assert len(runs) == 2 and runs[1]["runtime_config"]["parameters"]["data_uri"] == BATCH_URI
        assert third["run_id"] != out["run_id"]


def test_concurrent_deliveries_submit_once(dedup: Dedup, server: Standin, config: dict[str, Any]) -> None:
    threads, barrier = 8, threading.Barrier(8)
    answers: list[tuple[int, str]] = []

    def deliver() -> None:
        barrier.wait()
        status, out = post(url, notification())
        answers.append((status, out["outcome"]))

    with serving(handler_for(config, dedup.store, server.url)) as url:
        workers = [threading.Thread(target=deliver) for _ in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join()
        counts = Counter(outcome for _, outcome in answers)
        assert all(status == (503 if outcome == "unavailable" else 200) for status, outcome in answers), answers
        assert counts["submitted"] == 1 and sum(counts.values()) == threads, counts
        assert set(counts) <= {"submitted", "duplicate", "unavailable"}, counts  # in flight: retry later
        assert len(server.calls("RunService_CreateRun")) == 1
        assert post(url, notification())[1]["outcome"] == "duplicate"  # a later redelivery
    if dedup.proxy is not None:
        assert len(claim_posts(dedup.proxy, 412)) == threads  # the 7 racers and the redelivery
    assert len(server.calls("RunService_CreateRun")) == 1


# --- what is acknowledged and ignored -------------------------------------------------------------


def _with(body: dict[str, Any], **message: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    for k, v in message.items():
        if v is None:
            body["message"].pop(k, None)
        else:
            body["message"][k] = v
    return body


def _attrs(**changes: Any) -> dict[str, Any]:
    body = notification()
    for k, v in changes.items():
        if v is None:
            body["message"]["attributes"].pop(k)
        else:
            body["message"]["attributes"][k] = v
    return body


def _no_generation() -> dict[str, Any]:
    body = _attrs(objectGeneration=None)
    resource = json.loads(base64.b64decode(body["message"]["data"]))
    del resource["generation"]
    return _with(body, data=b64(json.dumps(resource).encode()))


IGNORED_OR_MALFORMED = {
    "data file": (notification("incoming/batch-001/part-00000.csv.gz"), "ignored", "not a completion marker"),
    "other bucket": (notification(bucket="someone-else"), "ignored", "is not the configured bucket"),
    "other prefix": (notification("archive/batch-001/_SUCCESS"), "ignored", "not under prefix 'incoming/'"),
    "sibling prefix": (notification("incoming-old/batch-001/_SUCCESS"), "ignored", "not under prefix"),
    "marker without batch": (notification("incoming/_SUCCESS"), "ignored", "not inside a batch folder"),
    "marker-like name": (notification("incoming/batch-001/_SUCCESS.tmp"), "ignored", "not a completion marker"),
    "delete event": (notification(event="OBJECT_DELETE"), "ignored", "OBJECT_DELETE is not OBJECT_FINALIZE"),
    "metadata event": (notification(event="OBJECT_METADATA_UPDATE"), "ignored", "is not OBJECT_FINALIZE"),
    "archive event": (notification(event="OBJECT_ARCHIVE"), "ignored", "is not OBJECT_FINALIZE"),
    "not json": (b"{'message': ", "malformed", "body is not JSON"),
    "empty body": (b"", "malformed", "body is not JSON"),
    "json array": (b"[1, 2]", "malformed", "no 'message' object"),
    "no message": ({"subscription": "projects/p/subscriptions/s"}, "malformed", "no 'message' object"),
    "bad base64": (_with(notification(), data="%%not-base64%%"), "malformed", "message.data is not base64"),
    "data not json": (_with(notification(), data=b64(b"hello")), "malformed", "message.data is not JSON"),
    "nothing": (_with(notification(), data=None, attributes=None), "malformed", "neither attributes nor data"),
    "attributes not object": (_with(notification(), attributes=["eventType"]), "malformed", "not an object"),
    "no event type": (_attrs(eventType=None), "malformed", "eventType None is missing or not a string"),
    "event type not text": (_attrs(eventType=5), "malformed", "eventType 5 is missing or not a string"),
    "data only": (_with(notification(), attributes=None), "malformed", "eventType None is missing"),
    "marker in an empty folder": (notification("incoming//_SUCCESS"), "ignored", "not inside a batch folder"),
    "no generation": (_no_generation(), "malformed", "no generation"),
    "bad generation": (_with(_attrs(objectGeneration="12abc"), data=None), "malformed", "not a positive integer"),
    "disagreeing object": (_attrs(objectId="incoming/batch-002/_SUCCESS"), "malformed", "disagrees with data.name"),
}


@pytest.mark.parametrize("case", list(IGNORED_OR_MALFORMED))
def test_ignored_and_malformed_are_acknowledged_and_submit_nothing(case: str, config: dict[str, Any],
                                                                   tmp_path: Path) -> None:
    body, outcome, reason = IGNORED_OR_MALFORMED[case]
    submit = Recorder()
    with serving(handler_for(config, LocalClaimStore(tmp_path / "seen"), submit=submit)) as url:
        status, out = post(url, body)
    assert (status, out["outcome"]) == (200, outcome), out
    assert reason in out["reason"], out["reason"]
    assert submit.calls == [] and list((tmp_path / "seen").glob("*.json")) == []


def test_attributes_alone_are_enough(config: dict[str, Any], tmp_path: Path) -> None:
    """payloadFormat NONE: no data, the attributes name the object."""
    submit = Recorder()
    with serving(handler_for(config, LocalClaimStore(tmp_path / "seen"), submit=submit)) as url:
        status, out = post(url, notification(payload=False))
    assert (status, out["outcome"]) == (200, "submitted"), out
    ((name, params),) = submit.calls
    assert params["data_uri"] == BATCH_URI and name == f"{PIPELINE}-batch-001-g{GEN}"


# --- failures: 503 and the claim released ---------------------------------------------------------


def test_kfp_unreachable_then_redelivery_submits(dedup: Dedup, server: Standin, config: dict[str, Any]) -> None:
    with serving(handler_for(config, dedup.store, dead_url())) as url:
        status, out = post(url, notification())
    assert (status, out["outcome"]) == (503, "unavailable"), out
    assert "cannot reach the server" in out["reason"] and "claim released" in out["reason"]
    assert dedup.store.read(key_of()) is None
    with serving(handler_for(config, dedup.store, server.url)) as url:
        status, out = post(url, notification())
    assert (status, out["outcome"]) == (200, "submitted"), out
    assert len(server.calls("RunService_CreateRun")) == 1


def test_kfp_failing_then_redelivery_submits(dedup: Dedup, server: Standin, config: dict[str, Any]) -> None:
    server.failing = True
    with serving(handler_for(config, dedup.store, server.url)) as url:
        status, out = post(url, notification())
        assert (status, out["outcome"]) == (503, "unavailable"), out
        assert "create_run" in out["reason"] and "HTTP 503" in out["reason"] and "claim released" in out["reason"]
        assert server.refused >= 1 and server.runs == {}
        assert dedup.store.read(key_of()) is None
        server.failing = False
        status, out = post(url, notification())
        assert (status, out["outcome"]) == (200, "submitted"), out
        assert post(url, notification())[1]["outcome"] == "duplicate"
    assert len(server.runs) == 1


def test_a_lost_create_run_reply_then_redelivery_makes_no_second_run(dedup: Dedup, server: Standin,
                                                                      config: dict[str, Any]) -> None:
    server.lost_replies = 1
    with serving(handler_for(config, dedup.store, server.url)) as url:
        status, out = post(url, notification())
        assert (status, out["outcome"]) == (503, "unavailable"), out
        assert len(server.runs) == 1  # made, though the trigger could not know
        status, out = post(url, notification())
        assert (status, out["outcome"]) == (200, "submitted"), out
    assert list(server.runs) == [out["run_id"]] and len(server.calls("RunService_CreateRun")) == 1


def test_gcs_unavailable_is_503_then_redelivery_submits(gcs: Any, config: dict[str, Any]) -> None:
    store = GcsClaimStore(gcs.uri("trigger-seen"), GCS(gcs.client(), retry=FAST))
    submit = Recorder()
    gcs.proxy.fail("POST", r"^/upload/storage/v1/b/", times=1000, status=503)
    with serving(handler_for(config, store, submit=submit)) as url:
        status, out = post(url, notification())
        assert (status, out["outcome"]) == (503, "unavailable"), out
        assert "dedup store unavailable" in out["reason"] and "503" in out["reason"]
        assert submit.calls == []
        gcs.proxy.reset()
        assert post(url, notification())[1]["outcome"] == "submitted"
    assert len(submit.calls) == 1


def test_parameters_not_buildable_is_503_without_a_claim(config: dict[str, Any], tmp_path: Path) -> None:
    """The retrain pipeline not deployed yet: keep the message (503) and claim nothing."""
    submit = Recorder()
    store = LocalClaimStore(tmp_path / "seen")
    handler = TriggerHandler(SETTINGS, config, submit, store, parameters=parameters_for("no-such-pipeline"))
    with serving(handler) as url:
        status, out = post(url, notification())
    assert (status, out["outcome"]) == (503, "unavailable")
    assert "unknown pipeline 'no-such-pipeline'" in out["reason"]
    assert submit.calls == [] and store.read(key_of()) is None


def test_claim_in_flight_is_retried_later_and_an_abandoned_one_taken_over(dedup: Dedup,
                                                                           config: dict[str, Any]) -> None:
    store, submit, now = dedup.store, Recorder(), time.time()
    stamp = datetime.fromtimestamp(now - 60, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    held = store.claim(key_of(), {"state": "claimed", "claim_id": "other-replica", "claimed_at": stamp})
    with serving(handler_for(config, store, submit=submit, lease_s=300, clock=lambda: now)) as url:
        status, out = post(url, notification())
    assert (status, out["outcome"]) == (503, "unavailable") and "in flight" in out["reason"], out
    assert submit.calls == [] and store.read(key_of())["claim_id"] == "other-replica"
    later = now + 300  # the other replica died between claiming and recording its run
    with serving(handler_for(config, store, submit=submit, lease_s=300, clock=lambda: later)) as url:
        status, out = post(url, notification())
    assert (status, out["outcome"]) == (200, "submitted"), out
    record = store.read(key_of())
    assert record["state"] == "submitted" and record["claim_id"] != "other-replica" and len(submit.calls) == 1
    assert not store.release(held)  # the old holder can no longer delete the record
    assert store.read(key_of()) == record


# --- HTTP surface ---------------------------------------------------------------------------------


def test_healthz_and_routes(config: dict[str, Any], tmp_path: Path) -> None:
    with serving(handler_for(config, LocalClaimStore(tmp_path), submit=Recorder())) as url:
        with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
            assert response.status == 200 and json.loads(response.read()) == {"status": "ok"}
        for method, path, expected in (("GET", "/pubsub", 405), ("GET", "/", 404), ("POST", "/push", 404)):
            request = urllib.request.Request(url + path, data=b"{}" if method == "POST" else None, method=method)
            with pytest.raises(urllib.error.HTTPError) as caught:
                urllib.request.urlopen(request, timeout=10)
            assert caught.value.code == expected, (method, path)
        conn = http.client.HTTPConnection(urlsplit(url).netloc, timeout=10)
        conn.putrequest("POST", "/pubsub")
        conn.endheaders()  # no Content-Length
        assert conn.getresponse().status == 411
        conn.close()


def test_sigterm_finishes_the_request_in_flight_then_stops(config: dict[str, Any], tmp_path: Path) -> None:
    """`serve` in this (main) thread; SIGTERM arrives while a submit is in progress."""
    started, finished, results = threading.Event(), threading.Event(), []

    def slow_submit(run_name: str, parameters: dict[str, Any]) -> FakeRun:
        started.set()
        time.sleep(0.5)
        finished.set()
        return FakeRun("run-1", run_name, "http://kfp/#/runs/details/run-1")

    httpd = make_server(handler_for(config, LocalClaimStore(tmp_path), submit=slow_submit), "127.0.0.1", 0)
    url = f"http://127.0.0.1:{httpd.server_address[1]}"

    def client() -> None:
        results.append(post(url, notification()))

    def terminate() -> None:
        started.wait(10)
        os.kill(os.getpid(), signal.SIGTERM)

    caller = threading.Thread(target=client)
    caller.start()
    threading.Thread(target=terminate).start()
    began = time.monotonic()
    serve(httpd)  # returns once stopped
    assert finished.is_set() and time.monotonic() - began < 10  # the request in flight was finished first
    caller.join(10)
    assert results and results[0][0] == 200 and results[0][1]["outcome"] == "submitted"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/healthz", timeout=2)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # restored


# --- OIDC -----------------------------------------------------------------------------------------

AUDIENCE = "https://reprflow-trigger.example.com/pubsub"
PUSH_SA = "reprflow-push@reprflow-dev.iam.gserviceaccount.com"


@dataclass
class Keys:
    signer: Any  # the key the served certificate belongs to, key id k1
    attacker: Any  # another key claiming key id k1
    unknown: Any  # the right key under a key id the certificates do not list
    cert_pem: str


@pytest.fixture(scope="module")
def keys() -> Keys:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID
    from google.auth import crypt

    def pem(key: Any) -> bytes:
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    good, bad = (rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2))
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "reprflow-test-signer")])
    now = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(good.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=1)).sign(good, hashes.SHA256()))
    return Keys(crypt.RSASigner.from_string(pem(good), key_id="k1"),
                crypt.RSASigner.from_string(pem(bad), key_id="k1"),
                crypt.RSASigner.from_string(pem(good), key_id="k9"),
                cert.public_bytes(serialization.Encoding.PEM).decode())


@contextmanager
def cert_server(certs: dict[str, str]) -> Iterator[tuple[str, list[str]]]:
    """Serves `certs` like Google's v1/certs endpoint (with a max-age), recording each fetch."""
    fetched: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetched.append(self.path)
            data = json.dumps(certs).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600, must-revalidate, no-transform")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}/oauth2/v1/certs", fetched
    finally:
        httpd.shutdown()
        httpd.server_close()


def token(signer: Any, **changes: Any) -> str:
    from google.auth import jwt

    now = int(time.time())
    claims = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "azp": "1234567890", "email": PUSH_SA,
              "email_verified": True, "sub": "1234567890", "iat": now, "exp": now + 3600}
    claims.update(changes)
    return jwt.encode(signer, {k: v for k, v in claims.items() if v is not None}).decode()


def test_oidc_valid_token_submits_and_bad_ones_are_refused(keys: Keys, config: dict[str, Any],
                                                          tmp_path: Path) -> None:
    submit = Recorder()
    hour_ago = int(time.time()) - 3600
    rejected = {
        "no token": (None, 401, "no 'Authorization: Bearer"),
        "not a jwt": ("abc.def", 401, "OIDC token rejected"),
        "expired": (token(keys.signer, iat=hour_ago - 3600, exp=hour_ago), 401, "expired"),
        "bad signature": (token(keys.attacker), 401, "Could not verify token signature"),
        "unknown key": (token(keys.unknown), 401, "key id k9 not found"),
        "wrong audience": (token(keys.signer, aud="https://elsewhere.example.com/pubsub"), 403, "audience"),
        "wrong email": (token(keys.signer, email="someone@example.com"), 403, "e-mail 'someone@example.com'"),
        "unverified email": (token(keys.signer, email_verified=False), 403, "is not verified"),
        "other issuer": (token(keys.signer, iss="https://issuer.example.com"), 403, "issuer"),
    }
    with cert_server({"k1": keys.cert_pem}) as (certs_url, fetched):
        auth = PushAuth(AUDIENCE, PUSH_SA, GoogleCerts(certs_url))
        with serving(handler_for(config, LocalClaimStore(tmp_path), submit=submit, auth=auth)) as url:
            for case, (bearer, status, reason) in rejected.items():
                got, out = post(url, notification(), token=bearer)
                assert (got, out["outcome"]) == (status, "unauthenticated" if status == 401 else "forbidden"), case
                assert reason in out["reason"], (case, out["reason"])
            assert submit.calls == [] and list(tmp_path.glob("*.json")) == []
            got, out = post(url, notification(), token=token(keys.signer))
            assert (got, out["outcome"]) == (200, "submitted"), out
            assert len(submit.calls) == 1
        assert len(fetched) == 1  # cached for its max-age
    with serving(handler_for(config, LocalClaimStore(tmp_path / "b"), submit=submit,
                             auth=PushAuth(AUDIENCE, PUSH_SA, GoogleCerts(dead_url())))) as url:
        got, out = post(url, notification(), token=token(keys.signer))
    assert (got, out["outcome"]) == (503, "unavailable") and "signing certificates" in out["reason"]
    assert len(submit.calls) == 1


# --- the command line -----------------------------------------------------------------------------


def _last_json(out: str) -> dict[str, Any]:
    return json.loads(out.strip().splitlines()[-1])


def test_cli_handle_replays_a_notification(server: Standin, config_path: Path, tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    message = tmp_path / "message.json"
    message.write_text(json.dumps(notification()))
    seen = tmp_path / "seen"
    argv = ["trigger", "handle", "--file", str(message), "--config", str(config_path), "--pipeline",
            "representation", "--host-kfp", server.url, "--dedup", str(seen)]
    assert main(argv) == 0
    out = _last_json(capsys.readouterr().out)
    assert out["outcome"] == "submitted" and out["data_uri"] == BATCH_URI
    (create,) = server.calls("RunService_CreateRun")
    assert create.body["runtime_config"]["parameters"]["data_uri"] == BATCH_URI
    assert [p["name"] for p in server.pipelines.values()] == [PIPELINE]  # --pipeline-name default
    assert main(argv) == 0
    assert _last_json(capsys.readouterr().out)["outcome"] == "duplicate"

    # Settings from the environment: config, KFP host, dedup location, and the bucket override.
    monkeypatch.setenv("REPRFLOW_CONFIG", str(config_path))
    monkeypatch.setenv("REPRFLOW_KFP_HOST", server.url)
    monkeypatch.setenv("REPRFLOW_TRIGGER_DEDUP", str(seen))
    short = ["trigger", "handle", "--file", str(message), "--pipeline", "representation"]
    assert main(short) == 0
    assert _last_json(capsys.readouterr().out)["outcome"] == "duplicate"
    monkeypatch.setenv("REPRFLOW_TRIGGER_BUCKET", "another-bucket")
    assert main(short) == 0
    assert "is not the configured bucket 'another-bucket'" in _last_json(capsys.readouterr().out)["reason"]
    monkeypatch.delenv("REPRFLOW_TRIGGER_BUCKET")

    message.write_text(json.dumps(notification(generation=GEN + 5)))  # new data, but KFP is down: exit 1
    monkeypatch.setenv("REPRFLOW_KFP_HOST", dead_url())
    assert main(short) == 1
    assert _last_json(capsys.readouterr().out)["outcome"] == "unavailable"
    assert len(server.calls("RunService_CreateRun")) == 1


def test_cli_settings_errors(config_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = tmp_path / "message.json"
    message.write_text(json.dumps(notification()))
    handle = ["trigger", "handle", "--file", str(message), "--host-kfp", "http://127.0.0.1:1"]
    cases = [
        (handle, "no configuration: give --config or set $REPRFLOW_CONFIG"),
        ([*handle, "--config", str(config_path)], "no dedup location"),
        (["trigger", "handle", "--file", str(message), "--config", str(config_path), "--dedup", str(tmp_path)],
         "no KFP host"),
        ([*handle, "--config", str(config_path), "--dedup", "s3://bucket/seen"], "expected gs://bucket/prefix"),
        (["trigger", "serve", "--config", str(config_path), "--host-kfp", "http://127.0.0.1:1", "--dedup",
          str(tmp_path), "--audience", AUDIENCE], "needs both an audience"),
        ([*handle[:3], str(tmp_path / "missing.json"), *handle[4:], "--config", str(config_path), "--dedup",
          str(tmp_path)], "cannot read the push body"),
    ]
    for argv, message_part in cases:
        assert main(argv) == 1, argv
        err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("reprflow: error:")]
        assert len(err) == 1 and message_part in err[0], (argv, err)


def test_settings_prefix_is_a_folder_and_bucket_required() -> None:
    assert TriggerSettings(bucket="b", prefix="incoming").prefix == "incoming/"
    assert TriggerSettings(bucket="b", prefix="").prefix == ""
    with pytest.raises(ReprflowError, match=r"trigger bucket is empty"):
        TriggerSettings(bucket="")


def test_serve_command_starts_answers_and_stops_on_sigterm(config_path: Path, tmp_path: Path) -> None:
    """The real `reprflow trigger serve` process, as the Deployment runs it; it starts even though its
    pipeline's parameters cannot be built (yet), and says so."""
    argv = [sys.executable, "-m", "reprflow.pipelines.cli", "trigger", "serve", "--listen", "127.0.0.1", "--port",
            "0", "--config", str(config_path), "--host-kfp", dead_url(), "--dedup", str(tmp_path / "seen"),
            "--pipeline", "not-deployed-yet"]
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True)
    try:
        lines: list[str] = []
        for line in proc.stderr:  # type: ignore[union-attr]
            lines.append(line)
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if found:
                break
        assert found, "".join(lines)
        url = found.group(1)
        with urllib.request.urlopen(url + "/healthz", timeout=10) as response:
            assert response.status == 200
        status, out = post(url, notification("incoming/batch-001/part-00000.csv.gz"))
        assert (status, out["outcome"]) == (200, "ignored")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        rest = proc.stderr.read()  # type: ignore[union-attr]
        log = "".join(lines) + rest
        assert "received SIGTERM" in log and "stopped" in log
        assert '"outcome": "ignored"' in log  # one log line per notification
        assert "run parameters for pipeline 'not-deployed-yet' cannot be built yet" in log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_with_an_empty_prefix_a_marker_at_the_bucket_root_is_no_batch() -> None:
    settings = TriggerSettings(BUCKET, prefix="")
    with pytest.raises(Refused, match="not inside a batch folder"):
        batch_uri(Notification("OBJECT_FINALIZE", BUCKET, "_SUCCESS", 1), settings)
    assert batch_uri(Notification("OBJECT_FINALIZE", BUCKET, "b1/_SUCCESS", 1), settings) == f"gs://{BUCKET}/b1/"


@pytest.mark.parametrize("port", ["99999", "-1", "http"])
def test_a_port_out_of_range_is_a_usage_error(port: str, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["trigger", "serve", "--port", port])
    assert exited.value.code == 2
    assert f"argument --port: expected a port number from 0 to 65535, got '{port}'" in capsys.readouterr().err
