"""Upload, submit and schedule against a stand-in KFP server that checks every request against the
official v2beta1 API spec (tests/kfp_api_standin.py); the Kubernetes-native manifests."""

from __future__ import annotations

import json
import os
import re
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Iterator

import kfp
import pytest
import urllib3
import yaml
from kfp_api_standin import KfpApiStandin, SpecMissing, SpecValidator, load_spec, spec_path

from reprflow.components.common.config import load_config
from reprflow.components.common.errors import ReprflowError
from reprflow.pipelines import kfp_server
from reprflow.pipelines.cli import main
from reprflow.pipelines.compile import compile_pipeline, pipeline_parameters

REPO = Path(__file__).resolve().parents[1]
PIPELINE = "reprflow-representation"
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@pytest.fixture(autouse=True)
def _isolated(kfp_isolated: pytest.MonkeyPatch) -> None:
    """No kfp context file from this machine's home, no token from the environment."""


@pytest.fixture
def server(validator: SpecValidator) -> Iterator[KfpApiStandin]:
    with KfpApiStandin(validator) as s:
        yield s


@pytest.fixture(scope="module")
def configs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """tiny.yaml pointed at a bucket (with a pipeline root), and the same with one more epoch."""
    raw = yaml.safe_load((REPO / "configs" / "tiny.yaml").read_text())
    raw["data"]["uri"] = "gs://reprflow-test/online_retail.csv.gz"
    raw["cluster"] = {"pipeline_root": "gs://reprflow-test/root"}
    out = tmp_path_factory.mktemp("configs")
    (out / "tiny.yaml").write_text(yaml.safe_dump(raw))
    raw["pretrain"]["epochs"] += 1
    (out / "changed.yaml").write_text(yaml.safe_dump(raw))
    return {"tiny": out / "tiny.yaml", "changed": out / "changed.yaml"}


@pytest.fixture(scope="module")
def compiled(configs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The representation pipeline compiled three ways, once per module."""
    out = tmp_path_factory.mktemp("compiled")
    return {
        "bare": compile_pipeline("representation", out / "bare.yaml"),
        "tiny": compile_pipeline("representation", out / "tiny.yaml", load_config(configs["tiny"])),
        "changed": compile_pipeline("representation", out / "changed.yaml", load_config(configs["changed"])),
    }


def digest_of(path: Path) -> str:
    return kfp_server.package_digest(kfp_server.read_package(path))


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    errors = [line for line in err if line.startswith("reprflow: error:")]
    assert len(errors) == 1, err
    return errors[0]


def _post(url: str, body: Any, content_type: str = "application/json") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


# --- upload ---------------------------------------------------------------------------------------


def test_upload_creates_pipeline_then_a_version_and_never_a_duplicate(
        server: KfpApiStandin, configs: dict[str, Path], compiled: dict[str, Path],
        capsys: pytest.CaptureFixture[str]) -> None:
    base = ["upload", "--host", server.url, "--pipeline", "representation"]
    assert main([*base, "--config", str(configs["tiny"])]) == 0
    digest = digest_of(compiled["tiny"])
    tiny = kfp_server.default_version_name(digest)
    assert f"uploaded pipeline (first version) reprflow-representation: version {tiny}" in capsys.readouterr().out
    (created,) = server.calls("PipelineService_CreatePipeline")
    assert created.body["name"] == PIPELINE and f"IR sha256:{digest}" in created.body["description"]
    (first,) = server.calls("UploadPipelineVersion")  # the first version carries the version name too
    (pipeline_id,) = server.pipelines
    assert first.query["pipelineid"] == [pipeline_id] and first.query["name"] == [tiny]
    assert f"IR sha256:{digest}" in first.query["description"][0]
    assert first.form["uploadfile"]["data"] == compiled["tiny"].read_bytes()  # the same compilation, byte for byte

    assert main([*base, "--config", str(configs["changed"])]) == 0
    out = capsys.readouterr().out
    second = server.calls("UploadPipelineVersion")[1]
    changed = kfp_server.default_version_name(digest_of(compiled["changed"]))
    assert re.fullmatch(r"0\.1\.0-[0-9a-f]{12}", changed)
    assert second.query["pipelineid"] == [pipeline_id] and second.query["name"] == [changed]
    assert f"new version of reprflow-representation: version {changed}" in out

    assert main([*base, "--config", str(configs["changed"])]) == 0  # the identical YAML again
    assert f"unchanged, already version {changed}" in capsys.readouterr().out
    assert len(server.calls("UploadPipelineVersion")) == 2
    assert [v["name"] for v in server.versions[pipeline_id]] == [tiny, changed]
    assert server.calls("UploadPipeline") == []


def test_a_first_upload_takes_the_version_name_asked_for(server: KfpApiStandin, configs: dict[str, Path],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["upload", "--host", server.url, "--pipeline", "selection", "--version", "myv1"]) == 0
    assert "uploaded pipeline (first version) reprflow-selection: version myv1" in capsys.readouterr().out
    argv = ["submit", "--host", server.url, "--pipeline", "selection", "--version", "myv1", "--config",
            str(configs["tiny"])]
    assert main(argv) == 0
    (run,) = server.calls("RunService_CreateRun")
    (pipeline_id,) = server.pipelines
    assert run.body["pipeline_version_reference"]["pipeline_version_id"] == \
        server.versions[pipeline_id][0]["pipeline_version_id"]


def test_identical_yaml_is_recognised_without_reprflow_marker(server: KfpApiStandin,
                                                              compiled: dict[str, Path]) -> None:
    """A pipeline uploaded by someone else (plain kfp.Client) is matched on its pipeline spec."""
    with pytest.warns(FutureWarning):
        kfp.Client(host=server.url).upload_pipeline(str(compiled["bare"]), PIPELINE, description="by hand")
    done = kfp_server.upload(server.url, compiled["bare"], PIPELINE)
    assert not done.created and done.version_name == PIPELINE
    assert server.calls("UploadPipelineVersion") == []


def test_explicit_version_name_with_other_content_is_an_error(server: KfpApiStandin,
                                                              compiled: dict[str, Path]) -> None:
    kfp_server.upload(server.url, compiled["bare"], PIPELINE)
    v1 = kfp_server.upload(server.url, compiled["tiny"], PIPELINE, version_name="v1")
    assert v1.created and v1.version_name == "v1"
    with pytest.raises(ReprflowError, match=r"already has a version named 'v1' with a different pipeline"):
        kfp_server.upload(server.url, compiled["changed"], PIPELINE, version_name="v1")


# --- submit ---------------------------------------------------------------------------------------


def test_submit_sends_version_parameters_root_and_experiment(
        server: KfpApiStandin, configs: dict[str, Path], compiled: dict[str, Path],
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    first = kfp_server.upload(server.url, compiled["bare"], PIPELINE)
    latest = kfp_server.upload(server.url, compiled["tiny"], PIPELINE)
    argv = ["submit", "--host", server.url, "--pipeline", "representation", "--config", str(configs["tiny"]),
            "--experiment", "nightly", "--run-name", "r1", "--param", "checkpoint_root=gs://reprflow-test/ckpt",
            "--param", "seeds=[3, 4]", "--pipeline-root", "gs://reprflow-test/other-root",
            "--service-account", "reprflow-runner"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    (create,) = server.calls("RunService_CreateRun")
    run = create.body
    assert run["pipeline_version_reference"] == {"pipeline_id": latest.pipeline_id,
                                                 "pipeline_version_id": latest.version_id}
    config = load_config(configs["tiny"])
    expected = pipeline_parameters("representation", config) | {"checkpoint_root": "gs://reprflow-test/ckpt",
                                                                "seeds": [3, 4]}
    assert run["runtime_config"] == {"parameters": expected, "pipeline_root": "gs://reprflow-test/other-root"}
    (experiment,) = server.experiments.values()
    assert experiment["display_name"] == "nightly" and run["experiment_id"] == experiment["experiment_id"]
    assert run["display_name"] == "r1" and run["service_account"] == "reprflow-runner"
    assert f"run id {create.response['run_id']}" in out and f"/#/runs/details/{create.response['run_id']}" in out

    # The host from $REPRFLOW_KFP_HOST; the pipeline root defaults to the config's
    # cluster.pipeline_root; the experiment is reused.
    monkeypatch.setenv("REPRFLOW_KFP_HOST", server.url)
    assert main(["submit", "--pipeline", "representation", "--config",
                 str(configs["tiny"]), "--experiment", "nightly", "--version", first.version_name]) == 0
    again = server.calls("RunService_CreateRun")[1].body
    assert again["runtime_config"]["pipeline_root"] == config["cluster"]["pipeline_root"]
    assert again["pipeline_version_reference"]["pipeline_version_id"] == first.version_id  # the named version
    assert len(server.calls("ExperimentService_CreateExperiment")) == 1


def test_bearer_token_from_the_environment_and_a_refusal(validator: SpecValidator, compiled: dict[str, Path],
                                                         monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    with KfpApiStandin(validator, token="s3cret") as server:
        monkeypatch.setenv(kfp_server.TOKEN_ENV, "s3cret")
        kfp_server.upload(server.url, compiled["tiny"], PIPELINE)
        assert {r.headers.get("authorization") for r in server.requests} == {"Bearer s3cret"}
        argv = ["submit", "--host", server.url, "--pipeline", "representation", "--token", "wrong"]
        assert main(argv) == 1
        line = _error_line(capsys)
        assert server.url in line and "HTTP 401" in line and "not authenticated" in line


def test_a_pods_projected_token_and_namespace_from_the_environment(
        validator: SpecValidator, compiled: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The cluster manifests mount a KFP token and set the namespace and service account by environment."""
    (tmp_path / "token").write_text("pod-token\n")
    monkeypatch.setenv(kfp_server.SA_TOKEN_PATH_ENV, str(tmp_path / "token"))
    monkeypatch.setenv("REPRFLOW_KFP_NAMESPACE", "team-a")
    monkeypatch.setenv("REPRFLOW_KFP_SERVICE_ACCOUNT", "reprflow-runner")
    with KfpApiStandin(validator, token="pod-token") as server:
        kfp_server.upload(server.url, compiled["tiny"], PIPELINE, namespace="team-a")
        assert main(["submit", "--host", server.url, "--pipeline", "representation"]) == 0
        assert {r.headers.get("authorization") for r in server.requests} == {"Bearer pod-token"}
        (experiment,) = server.calls("ExperimentService_CreateExperiment")
        assert experiment.body["namespace"] == "team-a"
        assert server.calls("RunService_CreateRun")[0].body["service_account"] == "reprflow-runner"


def test_a_retried_submission_with_once_finds_its_run(server: KfpApiStandin, compiled: dict[str, Path],
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    kfp_server.upload(server.url, compiled["tiny"], PIPELINE)
    argv = ["submit", "--host", server.url, "--pipeline", "representation", "--run-name", "retrain-29380920", "--once"]
    assert main(argv) == 0 and main(argv) == 0
    (create,) = server.calls("RunService_CreateRun")
    assert capsys.readouterr().out.count(f"run id {create.response['run_id']}") == 2
    assert main(argv[:-3] + ["--once"]) == 1
    assert "--once needs --run-name" in _error_line(capsys)


def test_checkpoints_follow_the_pipeline_root(server: KfpApiStandin, configs: dict[str, Path],
                                             compiled: dict[str, Path]) -> None:
    kfp_server.upload(server.url, compiled["tiny"], PIPELINE)
    argv = ["submit", "--host", server.url, "--pipeline", "representation", "--config", str(configs["tiny"]),
            "--pipeline-root", "gs://b/root/"]  # not the config's cluster.pipeline_root
    assert main(argv) == 0
    run = server.calls("RunService_CreateRun")[0].body["runtime_config"]
    assert run["pipeline_root"] == "gs://b/root/" and run["parameters"]["checkpoint_root"] == "gs://b/root/checkpoints"


@pytest.mark.parametrize("page", ["redirect", "html"])
def test_a_login_page_in_front_of_the_api_is_named(page: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Dex or oauth2-proxy answer the API's URLs with a redirect to an HTML page (or the page itself)."""
    import http.server
    import threading

    class LoginProxy(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if page == "redirect" and not self.path.startswith("/dex/"):
                self.send_response(302)
                self.send_header("Location", "/dex/auth?client_id=kubeflow")
                self.end_headers()
                return
            body = b"<html><body>Log in</body></html>"
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), LoginProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{proxy.server_address[1]}"
        assert main(["submit", "--host", url, "--pipeline", "representation"]) == 1
    finally:
        proxy.shutdown()
        proxy.server_close()
    line = _error_line(capsys)
    assert f"KFP server {url}: healthz failed" in line and "a login page in front of the API?" in line
    assert ("HTTP 302 Found: redirected to /dex/auth" in line) if page == "redirect" else \
        ("answered with text/html; charset=utf-8, not JSON" in line)


def test_the_version_name_does_not_change_between_processes(configs: dict[str, Path], tmp_path: Path) -> None:
    """kfp's header comment lists the config default's keys in a per-process order; the digest ignores it."""
    import subprocess
    import sys

    code = ("import sys; from pathlib import Path; from reprflow.components.common.config import load_config; "
            "from reprflow.pipelines.compile import compile_pipeline; from reprflow.pipelines import kfp_server; "
            "p = compile_pipeline('retrain', Path(sys.argv[2]), load_config(sys.argv[1])); "
            "print(kfp_server.package_digest(kfp_server.read_package(p)))")
    digests = {subprocess.run([sys.executable, "-c", code, str(configs["tiny"]), str(tmp_path / f"{seed}.yaml")],
                              env={**os.environ, "PYTHONHASHSEED": str(seed)}, check=True, capture_output=True,
                              text=True).stdout.strip() for seed in (1, 2, 3)}
    assert len(digests) == 1 and re.fullmatch(r"[0-9a-f]{64}", digests.pop())


def test_namespace_for_multi_user_installs(server: KfpApiStandin, compiled: dict[str, Path],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    kfp_server.upload(server.url, compiled["tiny"], PIPELINE, namespace="team-a")
    (created,) = server.calls("PipelineService_CreatePipeline")
    assert created.body["namespace"] == "team-a"
    assert main(["submit", "--host", server.url, "--pipeline", "representation"]) == 1  # not shared
    assert "no pipeline named 'reprflow-representation'" in _error_line(capsys)
    argv = ["submit", "--host", server.url, "--pipeline", "representation", "--namespace", "team-a"]
    assert main(argv) == 0
    (experiment,) = server.calls("ExperimentService_CreateExperiment")
    assert experiment.body == {"display_name": "reprflow", "namespace": "team-a"}
    assert {tuple(r.query.get("namespace", [])) for r in server.calls("PipelineService_ListPipelines")} == {
        ("team-a",), ()}


# --- schedule -------------------------------------------------------------------------------------


def test_schedule_with_cron(server: KfpApiStandin, configs: dict[str, Path], compiled: dict[str, Path],
                            capsys: pytest.CaptureFixture[str]) -> None:
    uploaded = kfp_server.upload(server.url, compiled["tiny"], PIPELINE)
    argv = ["schedule", "--host", server.url, "--pipeline", "representation", "--config", str(configs["tiny"]),
            "--cron", "30 6 * * MON-FRI", "--max-concurrency", "2", "--name", "weekdays"]
    assert main(argv) == 0
    (create,) = server.calls("RecurringRunService_CreateRecurringRun")
    job = create.body
    assert job["trigger"] == {"cron_schedule": {"cron": "0 30 6 * * MON-FRI"}}
    assert int(job["max_concurrency"]) == 2 and job["mode"] == "ENABLE" and job["no_catchup"] is True
    assert job["display_name"] == "weekdays"
    assert job["pipeline_version_reference"] == {"pipeline_id": uploaded.pipeline_id,
                                                 "pipeline_version_id": uploaded.version_id}
    assert job["runtime_config"]["parameters"] == pipeline_parameters("representation", load_config(configs["tiny"]))
    assert create.response["status"] == "ENABLED"
    assert f"recurring run id {create.response['recurring_run_id']}" in capsys.readouterr().out


def test_schedule_with_interval_and_window(server: KfpApiStandin, configs: dict[str, Path],
                                           compiled: dict[str, Path]) -> None:
    kfp_server.upload(server.url, compiled["tiny"], PIPELINE)
    argv = ["schedule", "--host", server.url, "--pipeline", "representation", "--config", str(configs["tiny"]),
            "--interval", "3600", "--start-time", "2026-02-01T00:00:00+01:00", "--end-time", "2026-03-01",
            "--catchup"]
    assert main(argv) == 0
    job = server.calls("RecurringRunService_CreateRecurringRun")[0].body
    assert job["trigger"] == {"periodic_schedule": {"interval_second": 3600, "start_time": "2026-01-31T23:00:00Z",
                                                    "end_time": "2026-03-01T00:00:00Z"}}
    assert job["max_concurrency"] == 1 and job["no_catchup"] is False and job["mode"] == "ENABLE"


@pytest.mark.parametrize("cron, message", [
    ("0 61 * * *", "hour value 61 is out of range 0-23"),
    ("0 0 0 * * 8", "day-of-week value 8 is out of range 0-6"),
    ("* * *", "expected 6 fields"),
    ("*/0 * * * * *", "step '0'"),
    ("0 0 9 * * MONDAY", "'MONDAY', not a number"),
    ("@every 1h", "use --interval"),
])
def test_bad_cron_is_refused_before_contacting_the_server(server: KfpApiStandin, cron: str, message: str) -> None:
    with pytest.raises(ReprflowError, match=re.escape(message)):
        kfp_server.schedule(server.url, PIPELINE, cron=cron)
    assert server.requests == []


def test_cron_forms_accepted() -> None:
    assert kfp_server.normalize_cron("0 0 * * * *") == "0 0 * * * *"
    assert kfp_server.normalize_cron("*/15  9-17 * * 1-5") == "0 */15 9-17 * * 1-5"
    assert kfp_server.normalize_cron("0 0 12 ? JAN,jul SUN") == "0 0 12 ? JAN,jul SUN"
    assert kfp_server.normalize_cron("@daily") == "@daily"


@pytest.mark.parametrize("kwargs, message", [
    ({"cron": "0 * * * *", "interval_seconds": 60}, "got both"),
    ({}, "got neither"),
    ({"interval_seconds": 0}, "interval 0: must be a positive"),
    ({"interval_seconds": -5}, "interval -5"),
    ({"interval_seconds": 60, "max_concurrency": 11}, "max concurrency 11"),
    ({"interval_seconds": 60, "start_time": "tomorrow"}, "start time 'tomorrow'"),
    ({"interval_seconds": 60, "start_time": "2026-02-02", "end_time": "2026-02-01"}, "is not after"),
])
def test_bad_schedule_arguments(server: KfpApiStandin, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ReprflowError, match=re.escape(message)):
        kfp_server.schedule(server.url, PIPELINE, **kwargs)
    assert server.requests == []


def test_schedule_cli_needs_exactly_one_trigger(server: KfpApiStandin, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["schedule", "--host", server.url, "--pipeline", "representation"]
    assert main(base) == 1
    assert "exactly one of a cron expression (--cron) and an interval" in _error_line(capsys)
    assert main([*base, "--cron", "0 0 * * *", "--interval", "60"]) == 1
    assert "got both" in _error_line(capsys)
    assert main([*base, "--cron", "0 25 * * *"]) == 1
    assert "hour value 25 is out of range 0-23" in _error_line(capsys)
    assert server.requests == []


# --- errors ---------------------------------------------------------------------------------------


def test_unknown_pipeline_and_version(server: KfpApiStandin, compiled: dict[str, Path],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ReprflowError, match=rf"KFP server {re.escape(server.url)}: no pipeline named 'nope'"):
        kfp_server.submit(server.url, "nope")
    assert main(["submit", "--host", server.url, "--pipeline", "selection"]) == 1
    assert "no pipeline named 'reprflow-selection'; upload it first" in _error_line(capsys)
    bare = kfp_server.upload(server.url, compiled["bare"], PIPELINE)
    with pytest.raises(ReprflowError, match=rf"has no version 'v9' \(latest first: '{bare.version_name}'\)"):
        kfp_server.submit(server.url, PIPELINE, version="v9")
    assert server.calls("RunService_CreateRun") == []


def test_unreachable_host_is_one_line_and_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    host = f"http://127.0.0.1:{port}"
    assert main(["submit", "--host", host, "--pipeline", "representation"]) == 1
    line = _error_line(capsys)
    assert line.startswith(f"reprflow: error: KFP server {host}: healthz failed: cannot reach the server")
    assert "Connection refused" in line


class SlowStandin(KfpApiStandin):
    """Answers healthz, then takes `hang_s` over every other call (a stalled server or ingress)."""

    hang_s = 0.0

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        if "healthz" not in raw_path:
            time.sleep(self.hang_s)
        return super().handle(method, raw_path, headers, body)


def test_a_server_that_stops_answering_is_an_error_not_a_hang(validator: SpecValidator,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kfp_server, "READ_TIMEOUT_S", 0.3)
    with SlowStandin(validator) as server:
        server.hang_s = 20.0
        started = time.monotonic()
        with pytest.raises(ReprflowError, match=r"list_pipelines .* failed: cannot reach the server .*timed out"):
            kfp_server.submit(server.url, PIPELINE)
        assert time.monotonic() - started < 10  # the read retries of one call, not 20 s each


def test_bad_host_and_params(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["submit", "--host", "localhost:8080", "--pipeline", "representation"]) == 1
    assert "expected the http:// or https:// URL" in _error_line(capsys)
    base = ["submit", "--host", "http://127.0.0.1:1", "--pipeline", "representation"]
    assert main([*base, "--param", "seeds=[0,1"]) == 1
    assert "--param seeds=[0,1: the representation pipeline expects a JSON list" in _error_line(capsys)
    assert main([*base, "--param", "candidates=[]"]) == 1
    assert "not a parameter of the representation pipeline" in _error_line(capsys)
    assert main([*base, "--pipeline-root", "bucket/root"]) == 1
    assert "--pipeline-root 'bucket/root': expected an object-store URI" in _error_line(capsys)
    # values the run's tasks would refuse are refused before anything is sent
    assert main([*base, "--param", "seeds=[-1, -1]"]) == 1
    assert _error_line(capsys) == ("reprflow: error: --param seeds=[-1, -1]: expected a list of at least two distinct "
                                   "non-negative integers")
    assert main([*base, "--param", 'config={"data": {"uri": "gs://b/x"}, "pretrain": {"dim": 0}}']) == 1
    assert "--param config: field 'pretrain.dim' must be a positive integer, got 0" in _error_line(capsys)


def test_server_errors_name_the_call_and_message(server: KfpApiStandin, compiled: dict[str, Path]) -> None:
    """The stand-in refuses a run whose parameters the pipeline lacks; the message reaches the user."""
    kfp_server.upload(server.url, compiled["bare"], PIPELINE)
    with pytest.raises(ReprflowError) as caught:
        kfp_server.submit(server.url, PIPELINE, parameters={"data_uri": "gs://b/x"})
    message = str(caught.value)
    assert message.startswith(f"KFP server {server.url}: create_run ")
    assert "HTTP 400" in message and "lacks the pipeline inputs config, seeds" in message
    assert "\n" not in message


# --- the stand-in's own checks --------------------------------------------------------------------


def test_standin_rejects_a_misspelled_field(server: KfpApiStandin) -> None:
    status, body = _post(f"{server.url}/apis/v2beta1/runs",
                         {"display_name": "r", "experimant_id": "e", "runtime_config": {"parameters": {}}})
    assert status == 400 and body["code"] == 3 and set(body) == {"code", "message", "details"}
    assert "'experimant_id' was unexpected" in body["message"]
    trigger = {"cron_schedule": {"cron": "0 * * * * *", "timezone": "UTC"}}
    status, body = _post(f"{server.url}/apis/v2beta1/recurringruns", {"display_name": "j", "trigger": trigger})
    assert status == 400 and "at trigger/cron_schedule" in body["message"]
    assert "'timezone' was unexpected" in body["message"]


def test_standin_checks_types_queries_uploads_and_routes(server: KfpApiStandin, compiled: dict[str, Path]) -> None:
    runs = f"{server.url}/apis/v2beta1/runs"
    status, body = _post(runs, {"display_name": "r", "runtime_config": {"pipeline_root": 5}})
    assert status == 400 and "runtime_config/pipeline_root" in body["message"]
    status, body = _post(f"{server.url}/apis/v2beta1/recurringruns", {"display_name": "j", "max_concurrency": True})
    assert status == 400 and "max_concurrency" in body["message"]
    # int64 fields: a JSON number or a string passes the schema (then the stand-in's semantics apply).
    status, body = _post(f"{server.url}/apis/v2beta1/recurringruns", {"display_name": "j", "max_concurrency": "1"})
    assert status == 400 and "exactly one of pipeline_version_reference" in body["message"]
    status, body = _post(f"{server.url}/apis/v2beta1/experiments", {"display_name": "e"}, content_type="text/plain")
    assert status == 400 and "application/json" in body["message"]

    data, content_type = urllib3.encode_multipart_formdata(
        {"uploadfile": ("bare.yaml", compiled["bare"].read_bytes(), "application/octet-stream")})
    request = urllib.request.Request(f"{server.url}/apis/v2beta1/pipelines/upload?pipeline_name=x", data=data,
                                     method="POST", headers={"Content-Type": content_type})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request)
    assert refused.value.code == 400
    message = json.loads(refused.value.read())["message"]
    assert "query parameter 'pipeline_name' is not one of UploadPipeline's" in message
    client = kfp_server.connect(server.url)
    not_ir = compiled["bare"].with_name("not-ir.yaml")
    not_ir.write_text("name: hello\n")
    with pytest.raises(ReprflowError, match=r"uploadfile is not a KFP IR YAML: no pipelineInfo.name"):
        with kfp_server._calling(server.url, "upload_pipeline"):
            client.upload_pipeline(str(not_ir), "x")
    bad_ir = compiled["bare"].with_name("bad-ir.yaml")
    bad_ir.write_text(yaml.safe_dump({"pipelineInfo": {"name": "x"}, "rooot": {}}))
    with pytest.raises(ReprflowError, match=r"not a KFP IR YAML: .*rooot"):
        with kfp_server._calling(server.url, "upload_pipeline"):
            client.upload_pipeline(str(bad_ir), "x")
    request = urllib.request.Request(f"{server.url}/apis/v2beta1/pipelines/some-id", method="DELETE")
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(request)
    assert caught.value.code == 501
    message = json.loads(caught.value.read())["message"]
    assert message == "the stand-in does not implement PipelineService_DeletePipeline"
    assert [r.status for r in server.requests if r.operation == "UploadPipeline"] == [400, 400, 400]


def test_missing_spec_fails_with_the_path_and_variable(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("REPRFLOW_KFP_API_SPEC", str(tmp_path / "nowhere.json"))
    assert spec_path() == tmp_path / "nowhere.json"
    with pytest.raises(SpecMissing, match=r"nowhere\.json \(set REPRFLOW_KFP_API_SPEC"):
        load_spec()


# --- Kubernetes-native manifests ------------------------------------------------------------------


def test_k8s_manifests(compiled: dict[str, Path]) -> None:
    manifests = kfp_server.to_k8s_manifests(compiled["tiny"], PIPELINE, namespace="team-a")
    pipeline, version = manifests
    assert [m["apiVersion"] for m in manifests] == ["pipelines.kubeflow.org/v2beta1"] * 2
    assert (pipeline["kind"], version["kind"]) == ("Pipeline", "PipelineVersion")
    digest = digest_of(compiled["tiny"])
    version_name = f"0.1.0-{digest[:12]}"
    assert version["metadata"] == {"name": f"{PIPELINE}-{version_name}", "namespace": "team-a"}
    assert pipeline["metadata"] == {"name": PIPELINE, "namespace": "team-a"}
    for name in (pipeline["metadata"]["name"], version["metadata"]["name"], version["spec"]["displayName"]):
        assert DNS1123_SUBDOMAIN.match(name) and len(name) <= 253
    assert version["spec"]["pipelineName"] == pipeline["metadata"]["name"]
    spec, platform = yaml.safe_load_all(compiled["tiny"].read_text())  # profiles give every package a platform spec
    assert version["spec"]["pipelineSpec"] == spec and version["spec"]["platformSpec"] == platform
    assert f"sha256:{digest}" in version["spec"]["description"]
    assert set(version["spec"]) == {"pipelineName", "displayName", "description", "pipelineSpec", "platformSpec"}
    assert list(yaml.safe_load_all(yaml.safe_dump_all(manifests))) == manifests


def test_k8s_manifests_carry_the_platform_spec(compiled: dict[str, Path], tmp_path: Path) -> None:
    platform = {"platforms": {"kubernetes": {"deploymentSpec": {"executors": {
        "exec-ingest": {"secretAsEnv": [{"secretName": "gcs", "keyToEnv": [{"secretKey": "k", "envVar": "K"}]}]}}}}}}
    spec = next(yaml.safe_load_all(compiled["bare"].read_text()))
    two_docs = tmp_path / "with-platform.yaml"
    two_docs.write_text(yaml.safe_dump(spec) + "---\n" + yaml.safe_dump(platform))
    _, version = kfp_server.to_k8s_manifests(two_docs, PIPELINE, "v2")
    assert version["spec"]["platformSpec"] == platform
    assert version["spec"]["pipelineSpec"] == spec
    one_doc = tmp_path / "without-platform.yaml"
    one_doc.write_text(yaml.safe_dump(spec))
    assert "platformSpec" not in kfp_server.to_k8s_manifests(one_doc, PIPELINE, "v3")[1]["spec"]
    assert version["metadata"]["name"] == f"{PIPELINE}-v2"


@pytest.mark.parametrize("pipeline, version, namespace, message", [
    (PIPELINE, "My_Version", "kubeflow", "version name 'My_Version' is not a valid DNS-1123 subdomain"),
    ("x" * 251, "v1", "kubeflow", "pipeline version object name"),
    (PIPELINE, "v1", "team.a", "namespace 'team.a' is not a valid DNS-1123 label"),
])
def test_k8s_manifest_names_are_checked(compiled: dict[str, Path], pipeline: str, version: str, namespace: str,
                                        message: str) -> None:
    with pytest.raises(ReprflowError, match=re.escape(message)):
        kfp_server.to_k8s_manifests(compiled["bare"], pipeline, version, namespace)


@pytest.mark.parametrize("flag,value", [("--namespace", "Bad_NS!"), ("--version", "v 1/..")])
def test_compile_with_a_bad_manifest_name_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture, flag: str,
                                                          value: str) -> None:
    (tmp_path / "representation.yaml").write_text("my own pipeline")
    assert main(["compile", "--output-dir", str(tmp_path), "--k8s-manifests", flag, value]) == 1
    assert "is not a valid DNS-1123" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["representation.yaml"]
    assert (tmp_path / "representation.yaml").read_text() == "my own pipeline"


def test_compile_writes_k8s_manifests_on_request(tmp_path: Path) -> None:
    assert main(["compile", "--output-dir", str(tmp_path), "--k8s-manifests", "--namespace", "team-a"]) == 0
    names = ("ab-prep", "representation", "retrain", "selection")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}{ext}" for n in names for ext in (".yaml", ".k8s.yaml"))
    for name in names:
        pipeline, version = yaml.safe_load_all((tmp_path / f"{name}.k8s.yaml").read_text())
        assert pipeline["metadata"] == {"name": f"reprflow-{name}", "namespace": "team-a"}
        assert version["spec"]["pipelineSpec"] == next(yaml.safe_load_all((tmp_path / f"{name}.yaml").read_text()))
