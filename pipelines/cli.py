"""The `reprflow` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path

from reprflow.components.common.artifacts import read_json, write_json
from reprflow.components.common.errors import ReprflowError
from reprflow.version import __version__

OUTPUT_FILES = ("summary.json", "report.html", "report.md")
HOST_ENV = "REPRFLOW_KFP_HOST"
# Local runs leave tasks unplaced: resource profiles are the cluster's, and their retries would
# only repeat a failure that is deterministic on one machine.
LOCAL = None


def _resolve_uri(uri: str) -> str:
    """Local paths become absolute (tasks run in other processes); URIs stay as they are."""
    return uri if "://" in uri else str(Path(uri).expanduser().resolve())


def _prepare(args: argparse.Namespace) -> tuple[dict, Path, str]:
    """The validated config with its data URI resolved, the output dir and the checkpoint dir."""
    from reprflow.components.common.config import load_config

    config = load_config(args.config)
    if args.data:
        config["data"]["uri"] = args.data
    config["data"]["uri"] = _resolve_uri(config["data"]["uri"])
    if not config["data"]["uri"].startswith("gs://") and not Path(config["data"]["uri"]).is_file():
        raise ReprflowError(f"{config['data']['uri']}: no such data file (field data.uri of {args.config}, or --data)")
    out = Path(args.output_dir).resolve()
    checkpoints = _resolve_uri(args.checkpoint_dir) if args.checkpoint_dir else str(out / "checkpoints")
    return config, out, checkpoints


def _publish(summary_dir: Path, seconds: float, out: Path) -> int:
    """Add the wall time to summary.json and copy the results to the output directory."""
    summary = read_json(summary_dir / "summary.json")
    summary["timings_s"]["total"] = round(seconds, 3)
    summary["artifacts"] = str(summary_dir.parent.parent)
    write_json(summary_dir / "summary.json", summary)
    for name in OUTPUT_FILES:
        shutil.copyfile(summary_dir / name, out / name)
    print(f"reprflow: finished in {seconds:.0f} s; wrote {out / 'summary.json'} and {out / 'report.html'}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from reprflow.pipelines.local_runner import run_locally
    from reprflow.pipelines.representation import representation_pipeline

    config, out, checkpoints = _prepare(args)
    summary_dir, seconds = run_locally(
        representation_pipeline(LOCAL), out / "artifacts",
        data_uri=config["data"]["uri"], config=config, seeds=config["seeds"], checkpoint_root=checkpoints,
    )
    return _publish(summary_dir, seconds, out)


def cmd_select(args: argparse.Namespace) -> int:
    from reprflow.components.model_selection.run import candidate_grid
    from reprflow.pipelines.local_runner import run_locally
    from reprflow.pipelines.selection import selection_pipeline

    config, out, checkpoints = _prepare(args)
    summary_dir, seconds = run_locally(
        selection_pipeline(LOCAL), out / "artifacts", data_uri=config["data"]["uri"], config=config,
        candidates=candidate_grid(config), seed=config["selection"]["seed"], checkpoint_root=checkpoints,
    )
    return _publish(summary_dir, seconds, out)


def cmd_compile(args: argparse.Namespace) -> int:
    from reprflow.components.common.config import load_config
    from reprflow.pipelines.compile import compile_pipelines

    config = load_config(args.config) if args.config else None
    for path in compile_pipelines(Path(args.output_dir), config):
        print(f"reprflow: wrote {path}")
        if args.k8s_manifests:
            from reprflow.pipelines.kfp_server import read_package, to_k8s_manifests, write_k8s_manifests

            name = read_package(path)[1][0]["pipelineInfo"]["name"]
            manifests = to_k8s_manifests(path, name, args.version, args.namespace or "kubeflow")
            out = write_k8s_manifests(path.with_name(f"{path.stem}.k8s.yaml"), manifests)
            print(f"reprflow: wrote {out} (Pipeline {name}, PipelineVersion {manifests[1]['metadata']['name']})")
    return 0


def _parse_params(pipeline: str, items: list[str]) -> dict:
    """--param KEY=JSON values, checked against the pipeline's inputs and their types.

    A string input also takes a bare value (KEY=gs://bucket/x); the others need JSON (seeds=[0,1,2]).
    """
    from reprflow.pipelines.compile import pipeline_function

    inputs = pipeline_function(pipeline).component_spec.inputs or {}
    checks = {"String": str, "Integer": int, "Float": (int, float), "Boolean": bool, "List": list, "Dict": dict}
    params = {}
    for item in items:
        key, eq, raw = item.partition("=")
        if not eq or not key:
            raise ReprflowError(f"--param {item!r}: expected KEY=JSON (e.g. seeds=[0,1,2])")
        if key not in inputs:
            raise ReprflowError(f"--param {key}: not a parameter of the {pipeline} pipeline "
                                f"(known: {', '.join(inputs)})")
        kind = inputs[key].type
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        if kind == "String" and not isinstance(value, str):
            value = raw
        wanted = checks.get(kind, object)
        if not isinstance(value, wanted) or (isinstance(value, bool) and wanted in (int, (int, float))):
            raise ReprflowError(f"--param {key}={raw}: the {pipeline} pipeline expects a JSON {kind.lower()} here")
        params[key] = value
    return params


def _run_arguments(args: argparse.Namespace) -> tuple[dict, str]:
    """A run's parameters (the config's, as `compile --config` sets them, then --param) and pipeline root."""
    from reprflow.components.common.config import load_config
    from reprflow.pipelines.compile import pipeline_parameters

    config = load_config(args.config) if args.config else None
    params = pipeline_parameters(args.pipeline, config) if config is not None else {}
    params |= _parse_params(args.pipeline, args.param or [])
    root = args.pipeline_root
    if root is None:
        root = config["cluster"]["pipeline_root"] if config is not None else ""
    if root and "://" not in root:
        raise ReprflowError(f"--pipeline-root {root!r}: expected an object-store URI such as gs://bucket/prefix "
                            "('' = the server's default)")
    uri = params.get("data_uri")
    if isinstance(uri, str) and "://" not in uri:
        print(f"reprflow: warning: data_uri {uri!r} is a local path; the cluster's pods must be able to read it "
              "(a gs:// URI usually)", file=sys.stderr)
    return params, root


def _kfp_name(short: str) -> str:
    from reprflow.pipelines.compile import pipeline_function

    return pipeline_function(short).name


def cmd_upload(args: argparse.Namespace) -> int:
    import tempfile

    from reprflow.components.common.config import load_config
    from reprflow.pipelines.compile import PIPELINES, compile_pipeline
    from reprflow.pipelines.kfp_server import upload

    config = load_config(args.config) if args.config else None
    names = list(PIPELINES) if args.pipeline == "all" else [args.pipeline]
    with tempfile.TemporaryDirectory(prefix="reprflow-upload-") as tmp:
        for name in names:
            path = compile_pipeline(name, Path(tmp) / f"{name}.yaml", config)
            done = upload(args.host, path, _kfp_name(name), args.version, token=args.token, namespace=args.namespace)
            ids = f"(pipeline id {done.pipeline_id}, version id {done.version_id})"
            if not done.created:
                print(f"reprflow: {done.pipeline_name}: unchanged, already version {done.version_name} {ids} "
                      f"{done.url}")
            else:
                what = "pipeline (first version)" if done.new_pipeline else "new version of"
                print(f"reprflow: uploaded {what} {done.pipeline_name}: version {done.version_name} {ids} {done.url}")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    from reprflow.pipelines.kfp_server import submit

    params, root = _run_arguments(args)
    run = submit(args.host, _kfp_name(args.pipeline), args.version, args.experiment, args.run_name, params, root,
                 token=args.token, namespace=args.namespace, service_account=args.service_account)
    print(f"reprflow: submitted run {run.name} (run id {run.id}, experiment id {run.experiment_id}, "
          f"pipeline version {run.version_name} {run.version_id}) {run.url}")
    return 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from reprflow.pipelines.kfp_server import check_trigger, schedule

    check_trigger(args.cron, args.interval)  # before compiling anything or contacting the server
    params, root = _run_arguments(args)
    job = schedule(args.host, _kfp_name(args.pipeline), args.version, args.experiment, args.name, args.cron,
                   args.interval, params, root, args.max_concurrency, args.start_time, args.end_time, args.catchup,
                   token=args.token, namespace=args.namespace, service_account=args.service_account)
    print(f"reprflow: scheduled recurring run {job.name} (recurring run id {job.id}, experiment id "
          f"{job.experiment_id}, pipeline version {job.version_name} {job.version_id}) {job.url}")
    return 0


def _server_options(p: argparse.ArgumentParser) -> None:
    host = os.environ.get(HOST_ENV)
    p.add_argument("--host", required=host is None, default=host,
                   help=f"URL of the KFP API, e.g. http://localhost:8080 (kubectl port-forward svc/ml-pipeline-ui "
                   f"8080:80 -n kubeflow); default: ${HOST_ENV}")
    p.add_argument("--token", help="bearer token for the server (default: $REPRFLOW_KFP_TOKEN; none if unset)")
    p.add_argument("--namespace", help="Kubernetes namespace (profile) on a multi-user install")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", required=True, choices=["representation", "selection"], help="which pipeline")
    p.add_argument("--version", help="pipeline version name or id (default: the latest)")
    p.add_argument("--experiment", default="reprflow", help="experiment, created if missing (default: reprflow)")
    p.add_argument("--config", help="YAML run configuration: its values become the run's parameters "
                   "(data_uri, config, seeds or candidates and seed) and cluster.pipeline_root the pipeline root")
    p.add_argument("--param", action="append", metavar="KEY=JSON",
                   help="a pipeline parameter, applied after the config's (repeatable), e.g. seeds=[0,1,2] or "
                   "data_uri=gs://b/x")
    p.add_argument("--pipeline-root", help="where the run's artifacts go, e.g. gs://bucket/prefix "
                   "(default: the config's cluster.pipeline_root; '' = the server's default)")
    p.add_argument("--service-account", help="Kubernetes service account the run's pods use, e.g. reprflow-runner "
                   "(default: the server's)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="reprflow",
        description="Pretrain item embeddings over several seeds, featurize them (FPR), score their "
        "stability and predictability, and train downstream models: a Kubeflow Pipelines DAG that runs "
        "on a cluster or, unchanged, on this machine.",
    )
    parser.add_argument("--version", action="version", version=f"reprflow {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the representation pipeline locally (kfp.local)",
                         description="Run the whole representation pipeline on this machine with "
                         "kfp.local.SubprocessRunner; writes summary.json, report.html, report.md and "
                         "the artifacts under --output-dir.")
    select = sub.add_parser("select", help="run the model-selection pipeline locally (kfp.local)",
                            description="Pretrain the config's grid of candidate embeddings (selection.dims x "
                            "windows x negatives) plus a random control, score each with every predictability "
                            "metric, train downstream, and report how well each metric ranks the candidates "
                            "(Kendall and weighted tau); writes summary.json, report.html and report.md.")
    for p, func in ((run, cmd_run), (select, cmd_select)):
        p.add_argument("--config", required=True, help="YAML run configuration (e.g. configs/online_retail.yaml)")
        p.add_argument("--output-dir", required=True, help="where results and artifacts go")
        p.add_argument("--data", help="interactions file: local path or gs:// URI (default: the config's data.uri)")
        p.add_argument("--checkpoint-dir", help="pretraining checkpoints, a directory or gs:// prefix (default: "
                       "OUTPUT_DIR/checkpoints); "
                       "a rerun with the same data and settings resumes from them")
        p.set_defaults(func=func)

    comp = sub.add_parser("compile", help="compile the pipelines to KFP IR YAML",
                          description="Write OUTPUT_DIR/representation.yaml and OUTPUT_DIR/selection.yaml, "
                          "the pipelines as KFP v2 IR YAML for upload to a Kubeflow Pipelines server.")
    comp.add_argument("--output-dir", required=True, help="directory for the YAML files")
    comp.add_argument("--config", help="YAML run configuration whose values become the parameter defaults")
    comp.add_argument("--k8s-manifests", action="store_true",
                      help="also write OUTPUT_DIR/<pipeline>.k8s.yaml: a Pipeline and a PipelineVersion "
                      "(pipelines.kubeflow.org/v2beta1) for KFP's Kubernetes-native API, e.g. for GitOps")
    comp.add_argument("--namespace", help="namespace of the Kubernetes manifests (default: kubeflow)")
    comp.add_argument("--version", help="version name in the manifests (default: <reprflow version>-<12 hex "
                      "of the YAML's sha256>)")
    comp.set_defaults(func=cmd_compile)

    up = sub.add_parser("upload", help="compile and upload the pipelines to a KFP server",
                        description="Compile the pipelines and upload them to a Kubeflow Pipelines server: a "
                        "pipeline that is not there yet is created (its first version); otherwise the YAML becomes "
                        "a new version of it, unless an identical version is already there. Prints the ids and URLs.")
    _server_options(up)
    up.add_argument("--pipeline", default="all", choices=["representation", "selection", "all"],
                    help="which pipeline to upload (default: all)")
    up.add_argument("--config", help="YAML run configuration whose values become the parameter defaults")
    up.add_argument("--version", help="version name (default: <reprflow version>-<12 hex of the YAML's sha256>)")
    up.set_defaults(func=cmd_upload)

    run_on = sub.add_parser("submit", help="run an uploaded pipeline on a KFP server",
                            description="Create a run of an uploaded pipeline's version (default: the latest) on a "
                            "Kubeflow Pipelines server, in an experiment that is created if missing. Prints the run "
                            "id and URL.")
    _server_options(run_on)
    _run_options(run_on)
    run_on.add_argument("--run-name", help="run name (default: <pipeline>-<UTC time>)")
    run_on.set_defaults(func=cmd_submit)

    sched = sub.add_parser("schedule", help="schedule recurring runs of an uploaded pipeline on a KFP server",
                           description="Create an enabled recurring run of an uploaded pipeline's version (default: "
                           "the latest now) on a Kubeflow Pipelines server; give exactly one of --cron and "
                           "--interval. Prints the recurring run id and URL.")
    _server_options(sched)
    _run_options(sched)
    sched.add_argument("--cron", help="6-field cron with seconds, e.g. '0 0 6 * * *' (06:00 daily); a 5-field "
                       "expression gets '0 ' prepended; @hourly, @daily, @weekly, @monthly, @yearly also work")
    sched.add_argument("--interval", type=int, metavar="SECONDS", help="run every SECONDS seconds instead of --cron")
    sched.add_argument("--name", help="recurring run name (default: <pipeline>-schedule-<UTC time>)")
    sched.add_argument("--max-concurrency", type=int, default=1, help="runs allowed at once, 1-10 (default: 1)")
    sched.add_argument("--start-time", help="ISO 8601 time of the first possible run (UTC if no zone given)")
    sched.add_argument("--end-time", help="ISO 8601 time after which no run starts (UTC if no zone given)")
    sched.add_argument("--catchup", action="store_true",
                       help="backfill intervals missed while paused or behind (default: only the latest)")
    sched.set_defaults(func=cmd_schedule)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except ReprflowError as exc:
        print(f"reprflow: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
