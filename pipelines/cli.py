"""The `reprflow` command line."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from reprflow.components.common.artifacts import read_json, write_json
from reprflow.components.common.errors import ReprflowError
from reprflow.version import __version__

if TYPE_CHECKING:
    from reprflow.components.common.registry import Registry
    from reprflow.pipelines.trigger import TriggerHandler

OUTPUT_FILES = ("summary.json", "report.html", "report.md")
PIPELINE_NAMES = ("representation", "selection", "retrain", "ab-prep")  # pipelines.compile.PIPELINES, without kfp
HOST_ENV = "REPRFLOW_KFP_HOST"
NAMESPACE_ENV, SERVICE_ACCOUNT_ENV = "REPRFLOW_KFP_NAMESPACE", "REPRFLOW_KFP_SERVICE_ACCOUNT"
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
    if config["cluster"]["registry"] and "://" not in config["cluster"]["registry"]:  # relative to the caller
        config["cluster"]["registry"] = _resolve_uri(config["cluster"]["registry"])
    config["data"]["uri"] = _resolve_uri(config["data"]["uri"])
    if not config["data"]["uri"].startswith("gs://") and not Path(config["data"]["uri"]).exists():
        raise ReprflowError(f"{config['data']['uri']}: no such data file or folder (field data.uri of {args.config}, "
                            "or --data)")
    out = Path(args.output_dir).resolve()
    checkpoints = _resolve_uri(args.checkpoint_dir) if args.checkpoint_dir else str(out / "checkpoints")
    _folder_or_absent(checkpoints, "--checkpoint-dir")
    return config, out, checkpoints


def _folder_or_absent(uri: str, what: str) -> None:
    """A local path where a run writes a folder must not be a file (checked before the run starts)."""
    if "://" not in uri and Path(uri).exists() and not Path(uri).is_dir():
        raise ReprflowError(f"{uri}: not a directory ({what})")


def _finish(summary_dir: Path, seconds: float, out: Path) -> int:
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
    registry = _registry(args, config, out) if args.publish else ""
    outputs, seconds = run_locally(
        representation_pipeline(LOCAL), out / "artifacts", data_uri=config["data"]["uri"], config=config,
        seeds=config["seeds"], checkpoint_root=checkpoints, registry=registry, publish=args.publish,
    )
    status = _finish(outputs["summary"], seconds, out)
    if args.publish:
        from reprflow.components.common.registry import Registry

        name, reg = config["retrain"]["name"], Registry(registry)
        version, current = published_version(reg, name, outputs["bundle"]), reg.read_pointer(name).version
        state = "current (production)" if version == current else f"not current (production is {current})"
        print(f"reprflow: published {name} version {version} at {reg.version_uri(name, version)}; {state}")
    return status


def published_version(registry: Registry, name: str, bundle_dir: Path) -> str:
    """The newest version of `name` that holds exactly the files of `bundle_dir` (not simply the newest
    version: another publisher may have published after this run)."""
    version = registry.holding(name, bundle_dir)
    if version is None:
        raise ReprflowError(f"{registry.root}: no version of {name} holds the bundle at {bundle_dir}")
    return version


def _registry(args: argparse.Namespace, config: dict, out: Path) -> str:
    """--registry, else the config's cluster.registry, else OUTPUT_DIR/registry (local runs)."""
    registry = _resolve_uri(args.registry or config["cluster"]["registry"] or str(out / "registry"))
    _folder_or_absent(registry, "--registry or cluster.registry")
    return registry


def cmd_retrain(args: argparse.Namespace) -> int:
    from reprflow.pipelines.retrain_local import retrain_locally

    config, out, checkpoints = _prepare(args)
    registry = _registry(args, config, out)
    data = _resolve_uri(args.new_data) if args.new_data else None
    done = retrain_locally(config, out, registry, data, checkpoints)
    if "bootstrap" in done:
        b = done["bootstrap"]
        print(f"reprflow: bootstrap: production {b['name']} version {b['version']} ({b['seconds']:.0f} s) at {b['uri']}")
    summary = read_json(done["summary_dir"] / "summary.json")
    for name in OUTPUT_FILES:
        shutil.copyfile(done["summary_dir"] / name, out / name)
    gate = summary["gate"]
    if done["production_after"] != done["production_before"]:
        print(f"reprflow: promoted: production is now {done['production_after']} (was {done['production_before']})")
    elif gate["promote"]:
        print(f"reprflow: the gate passed but production did not move from {done['production_before']}")
    else:
        print(f"reprflow: rejected; production stays {done['production_before']}: " + " ".join(gate["reasons"]))
    print(f"reprflow: retrain finished in {done['seconds']:.0f} s; wrote {out / 'report.html'}; registry {registry}")
    return 0


def cmd_ab_prep(args: argparse.Namespace) -> int:
    from reprflow.components.common.config import load_config
    from reprflow.pipelines.ab_prep import ab_prep_pipeline
    from reprflow.pipelines.local_runner import run_locally

    config = load_config(args.config)
    out = Path(args.output_dir).resolve()
    root = args.registry or config["cluster"]["registry"]
    registry = _resolve_uri(root) if root else ""
    arms = {k: v if v == "current" or "://" in v else _resolve_uri(v) for k, v in
            (("control", args.control), ("treatment", args.treatment))}
    outputs, seconds = run_locally(ab_prep_pipeline(LOCAL), out / "artifacts", config=config, registry=registry, **arms)
    handoff = outputs["Output"]
    for name in ("handoff.json", "handoff.html", "handoff.md"):
        shutil.copyfile(handoff / name, out / name)
    doc = read_json(out / "handoff.json")
    n = doc["sample_size"]
    print(f"reprflow: handoff ready in {seconds:.0f} s: {n['control']:,} control and {n['treatment']:,} treatment units; "
          f"wrote {out / 'handoff.json'} and {out / 'handoff.html'}")
    return 0


def cmd_select(args: argparse.Namespace) -> int:
    from reprflow.components.model_selection.run import candidate_grid
    from reprflow.pipelines.local_runner import run_locally
    from reprflow.pipelines.selection import selection_pipeline

    config, out, checkpoints = _prepare(args)
    outputs, seconds = run_locally(
        selection_pipeline(LOCAL), out / "artifacts", data_uri=config["data"]["uri"], config=config,
        candidates=candidate_grid(config), seed=config["selection"]["seed"], checkpoint_root=checkpoints,
    )
    return _finish(outputs["Output"], seconds, out)


def cmd_compile(args: argparse.Namespace) -> int:
    import tempfile

    from reprflow.components.common.config import load_config
    from reprflow.pipelines.compile import compile_pipelines

    config = load_config(args.config) if args.config else None
    out = Path(args.output_dir)
    # Everything is built in a scratch folder first: a bad --namespace or --version leaves DIR as it was.
    with tempfile.TemporaryDirectory(prefix="reprflow-compile-") as tmp:
        built: list[tuple[Path, str]] = []
        for path in compile_pipelines(Path(tmp), config):
            built.append((path, ""))
            if args.k8s_manifests:
                from reprflow.pipelines.kfp_server import read_package, to_k8s_manifests, write_k8s_manifests

                name = read_package(path)[0]["pipelineInfo"]["name"]
                manifests = to_k8s_manifests(path, name, args.version, args.namespace or "kubeflow")
                k8s = write_k8s_manifests(path.with_name(f"{path.stem}.k8s.yaml"), manifests)
                built.append((k8s, f" (Pipeline {name}, PipelineVersion {manifests[1]['metadata']['name']})"))
        out.mkdir(parents=True, exist_ok=True)
        for path, what in built:
            shutil.copyfile(path, out / path.name)
            print(f"reprflow: wrote {out / path.name}{what}")
    return 0


def _parse_params(pipeline: str, items: list[str]) -> dict:
    """--param KEY=JSON values, checked against the pipeline's inputs and their types.

    A string input also takes a bare value (KEY=gs://bucket/x); the others need JSON (seeds=[0,1,2]).
    """
    from reprflow.pipelines.compile import pipeline_inputs

    inputs = pipeline_inputs(pipeline)
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
    from reprflow.components.common.config import SCHEMA, load_config, validate_config
    from reprflow.pipelines.compile import checkpoint_root, pipeline_inputs, pipeline_parameters

    config = load_config(args.config) if args.config else None
    params = pipeline_parameters(args.pipeline, config) if config is not None else {}
    given = _parse_params(args.pipeline, args.param or [])
    if "config" in given:  # what the run's tasks will read: the same checks and defaults as a config file
        given["config"] = validate_config(given["config"], "--param config")
    seeds_ok, seeds_wanted, _ = SCHEMA["seeds"][""]
    if "seeds" in given and not seeds_ok(given["seeds"]):
        raise ReprflowError(f"--param seeds={json.dumps(given['seeds'])}: expected {seeds_wanted}")
    params |= given
    root = args.pipeline_root
    if root is None:
        root = config["cluster"]["pipeline_root"] if config is not None else ""
    if root and "://" not in root:
        raise ReprflowError(f"--pipeline-root {root!r}: expected an object-store URI such as gs://bucket/prefix "
                            "('' = the server's default)")
    if root and "checkpoint_root" not in given and "checkpoint_root" in pipeline_inputs(args.pipeline):
        params["checkpoint_root"] = checkpoint_root(root)  # checkpoints follow the artifacts, as compile places them
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
    if args.once and not args.run_name:
        raise ReprflowError("--once needs --run-name: the name tells a retried submission from a new one")
    run = submit(args.host, _kfp_name(args.pipeline), args.version, args.experiment, args.run_name, params, root,
                 token=args.token, namespace=args.namespace, service_account=args.service_account, once=args.once)
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


def _trigger_handler(args: argparse.Namespace) -> TriggerHandler:
    from reprflow.pipelines.trigger import build_handler

    return build_handler(args.config, args.host_kfp, dedup=args.dedup, pipeline=args.pipeline,
                         pipeline_name=args.pipeline_name, token=args.token, namespace=args.namespace,
                         service_account=args.service_account,
                         audience=getattr(args, "audience", None),
                         push_service_account=getattr(args, "push_service_account", None))


def cmd_trigger_serve(args: argparse.Namespace) -> int:
    from reprflow.pipelines.trigger import make_server, serve

    handler = _trigger_handler(args)
    try:  # a pipeline that is not deployed yet is no reason not to start: each marker gets 503 until it is
        handler.parameters(handler.config, f"gs://{handler.settings.bucket}/{handler.settings.prefix}batch/")
    except Exception as exc:
        logging.getLogger("reprflow.trigger").warning(
            "run parameters for pipeline %r cannot be built yet (%s); markers will be answered 503 until they can",
            args.pipeline, " ".join(str(exc).split()))
    if handler.auth is None:
        logging.getLogger("reprflow.trigger").warning(
            "push authentication is off (no audience): the ingress must authenticate callers")
    try:
        server = make_server(handler, args.listen, args.port)
    except OSError as exc:
        raise ReprflowError(f"cannot listen on {args.listen}:{args.port} ({exc.strerror})") from None
    serve(server)
    return 0


def cmd_trigger_handle(args: argparse.Namespace) -> int:
    handler = _trigger_handler(args)
    try:
        with open(args.file, "rb") as f:
            body = f.read()
    except OSError as exc:
        raise ReprflowError(f"{args.file}: cannot read the push body ({exc.strerror})") from None
    outcome = handler.handle(body, authenticate=False)
    print(json.dumps(outcome.to_json()))
    return 0 if outcome.status < 300 else 1


def _trigger_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", help="YAML run configuration: its trigger section (bucket, prefix, marker, "
                   "experiment), cluster.pipeline_root and cluster.registry (default: $REPRFLOW_CONFIG); "
                   "$REPRFLOW_TRIGGER_BUCKET and $REPRFLOW_TRIGGER_PREFIX override the trigger's bucket and prefix")
    host = os.environ.get(HOST_ENV)
    p.add_argument("--host-kfp", default=host, help=f"URL of the KFP API (default: ${HOST_ENV})")
    p.add_argument("--token", help="bearer token for the KFP server (default: $REPRFLOW_KFP_TOKEN; none if unset)")
    _namespace_option(p)
    _service_account_option(p)
    p.add_argument("--pipeline", default="retrain",
                   help="pipeline whose parameters the config gives the run, data_uri set to the batch "
                   "(default: retrain)")
    p.add_argument("--pipeline-name", help="KFP pipeline to run, its latest version (default: reprflow-PIPELINE)")
    p.add_argument("--dedup", help="where handled notifications are recorded: gs://bucket/prefix or a local "
                   "directory (default: $REPRFLOW_TRIGGER_DEDUP, else <cluster.registry>/trigger-seen)")


def _server_options(p: argparse.ArgumentParser) -> None:
    host = os.environ.get(HOST_ENV)
    p.add_argument("--host", required=host is None, default=host,
                   help=f"URL of the KFP API, e.g. http://localhost:8080 (kubectl port-forward svc/ml-pipeline-ui "
                   f"8080:80 -n kubeflow); default: ${HOST_ENV}")
    p.add_argument("--token", help="bearer token for the server (default: $REPRFLOW_KFP_TOKEN; none if unset)")
    _namespace_option(p)


def _namespace_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--namespace", default=os.environ.get(NAMESPACE_ENV),
                   help=f"Kubernetes namespace (profile) on a multi-user KFP install (default: ${NAMESPACE_ENV})")


def _service_account_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--service-account", default=os.environ.get(SERVICE_ACCOUNT_ENV),
                   help="Kubernetes service account the run's pods use, e.g. reprflow-runner "
                   f"(default: ${SERVICE_ACCOUNT_ENV}, else the server's)")


def _run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pipeline", required=True, choices=list(PIPELINE_NAMES), help="which pipeline")
    p.add_argument("--version", help="pipeline version name or id (default: the latest)")
    p.add_argument("--experiment", default="reprflow", help="experiment, created if missing (default: reprflow)")
    p.add_argument("--config", help="YAML run configuration: its values become the run's parameters "
                   "(data_uri, config, seeds or candidates and seed) and cluster.pipeline_root the pipeline root")
    p.add_argument("--param", action="append", metavar="KEY=JSON",
                   help="a pipeline parameter, applied after the config's (repeatable), e.g. seeds=[0,1,2] or "
                   "data_uri=gs://b/x")
    p.add_argument("--pipeline-root", help="where the run's artifacts go, e.g. gs://bucket/prefix "
                   "(default: the config's cluster.pipeline_root; '' = the server's default)")
    _service_account_option(p)


def _port(text: str) -> int:
    port = int(text) if text.isdigit() else -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number from 0 to 65535, got {text!r}")
    return port


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
    retrain = sub.add_parser("retrain", help="retrain on new data, compare with production, promote or reject",
                             description="Run the retrain pipeline locally. Without --new-data, the config's data "
                             "are split at retrain.production_until: the first months train the first production "
                             "version (published to the registry if it has none), the rest arrives as a new batch. "
                             "The candidate is retrained on production's data and the batch, featurized against "
                             "production's anchors, compared (drift of raw and FPR features, production's model on "
                             "the new features) and promoted if the gate passes; writes summary.json, report.html "
                             "and report.md.")
    for p, func in ((run, cmd_run), (select, cmd_select), (retrain, cmd_retrain)):
        p.add_argument("--config", required=True, help="YAML run configuration (e.g. configs/online_retail.yaml)")
        p.add_argument("--output-dir", required=True, help="where results and artifacts go")
        p.add_argument("--data", help="interactions: a file, a folder or a gs:// URI or prefix (default: the config's "
                       "data.uri)")
        p.add_argument("--checkpoint-dir", help="pretraining checkpoints, a directory or gs:// prefix (default: "
                       "OUTPUT_DIR/checkpoints); "
                       "a rerun with the same data and settings resumes from them")
        p.set_defaults(func=func)
    for p in (run, retrain):
        p.add_argument("--registry", help="where versions are published: a directory or gs:// prefix (default: the "
                       "config's cluster.registry, else OUTPUT_DIR/registry)")
    run.add_argument("--publish", action="store_true", help="publish the run's bundle to the registry; it becomes "
                     "production (the current version) if there is none yet")
    retrain.add_argument("--new-data", help="the new batch (file, folder or gs:// prefix) to retrain with, against "
                         "the registry's current version (default: split the config's data by time)")

    ab = sub.add_parser("ab-prep", help="prepare an A/B experiment between two published versions",
                        description="Check that control and treatment can be compared (entities, task definitions, "
                        "an effect beyond the treatment's seed noise), size the experiment (units per arm for the "
                        "config's ab section) and write handoff.json (schema reprflow.handoff/1, validated), "
                        "handoff.html and handoff.md. Exit 1 with the reason when the arms are not comparable.")
    ab.add_argument("--control", required=True, help="a version URI (REGISTRY/NAME/versions/ID), 'current', or a "
                    "bundle folder")
    ab.add_argument("--treatment", required=True, help="the same forms as --control")
    ab.add_argument("--config", required=True, help="YAML run configuration (its ab and retrain sections)")
    ab.add_argument("--output-dir", required=True, help="where the handoff and artifacts go")
    ab.add_argument("--registry", help="for 'current': the registry (default: the config's cluster.registry)")
    ab.set_defaults(func=cmd_ab_prep)

    comp = sub.add_parser("compile", help="compile the pipelines to KFP IR YAML",
                          description="Write OUTPUT_DIR/<pipeline>.yaml for every pipeline (representation, "
                          "selection, retrain, ab-prep) as KFP v2 IR YAML for upload to a Kubeflow Pipelines server.")
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
    up.add_argument("--pipeline", default="all", choices=[*PIPELINE_NAMES, "all"],
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
    run_on.add_argument("--once", action="store_true",
                        help="if the experiment already has a run named --run-name, report it instead of starting "
                        "another (a retried job, e.g. the retrain CronJob's, makes no duplicate)")
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

    trig = sub.add_parser("trigger", help="start retrain runs when a new data batch lands in GCS",
                          description="The new-data trigger: GCS object-finalize notifications, pushed by Pub/Sub, "
                          "start a run when a batch's completion marker (trigger.marker, default _SUCCESS) is "
                          "written under gs://BUCKET/PREFIX/<batch>/; each object generation runs at most once.")
    trig_sub = trig.add_subparsers(dest="trigger_command", required=True, metavar="SUBCOMMAND")
    trig_serve = trig_sub.add_parser("serve", help="serve GET /healthz and POST /pubsub (Pub/Sub push)",
                                     description="Serve the push endpoint until SIGTERM: POST /pubsub handles a "
                                     "notification (200 acknowledged: submitted, duplicate, ignored, malformed; "
                                     "503 retry later; 401/403 bad OIDC token), GET /healthz answers 200.")
    _trigger_options(trig_serve)
    trig_serve.add_argument("--port", type=_port, default=8080, help="port to listen on (default: 8080)")
    trig_serve.add_argument("--listen", default="0.0.0.0", help="address to listen on (default: 0.0.0.0)")
    trig_serve.add_argument("--audience",
                            help="check the push's OIDC token for this audience, the push URL (default: "
                            "$REPRFLOW_TRIGGER_AUDIENCE; unset: no check, the ingress must authenticate)")
    trig_serve.add_argument("--push-service-account",
                            help="the e-mail the OIDC token must carry, e.g. reprflow-push@PROJECT.iam."
                            "gserviceaccount.com (default: $REPRFLOW_TRIGGER_PUSH_SA)")
    trig_serve.set_defaults(func=cmd_trigger_serve)
    trig_handle = trig_sub.add_parser("handle", help="process one push body from a file and print the outcome",
                                      description="Process one Pub/Sub push body (JSON, as POSTed to /pubsub) "
                                      "with the same checks and dedup as the server, without OIDC; prints the "
                                      "outcome as JSON. Exit 0 when acknowledged, 1 when it should be retried.")
    _trigger_options(trig_handle)
    trig_handle.add_argument("--file", required=True, help="the push body, e.g. a saved notification")
    trig_handle.set_defaults(func=cmd_trigger_handle)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return args.func(args)
    except ReprflowError as exc:
        print(f"reprflow: error: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:  # an output folder that cannot be made, a full disk: the path and the reason
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"reprflow: error: {where}{exc.strerror or exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
