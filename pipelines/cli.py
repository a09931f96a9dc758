"""The `reprflow` command line."""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
from pathlib import Path

from reprflow.components.common.artifacts import read_json, write_json
from reprflow.components.common.errors import ReprflowError
from reprflow.version import __version__

OUTPUT_FILES = ("summary.json", "report.html", "report.md")


def _resolve_uri(uri: str) -> str:
    """Local paths become absolute (tasks run in other processes); URIs stay as they are."""
    return uri if "://" in uri else str(Path(uri).expanduser().resolve())


def _prepare(args: argparse.Namespace) -> tuple[dict, Path, Path]:
    """The validated config with its data URI resolved, the output dir and the checkpoint dir."""
    from reprflow.components.common.config import load_config

    config = load_config(args.config)
    if args.data:
        config["data"]["uri"] = args.data
    config["data"]["uri"] = _resolve_uri(config["data"]["uri"])
    if not config["data"]["uri"].startswith("gs://") and not Path(config["data"]["uri"]).is_file():
        raise ReprflowError(f"{config['data']['uri']}: no such data file (field data.uri of {args.config}, or --data)")
    out = Path(args.output_dir).resolve()
    checkpoints = Path(args.checkpoint_dir).resolve() if args.checkpoint_dir else out / "checkpoints"
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
        representation_pipeline, out / "artifacts",
        data_uri=config["data"]["uri"], config=config, seeds=config["seeds"], checkpoint_root=str(checkpoints),
    )
    return _publish(summary_dir, seconds, out)


def cmd_select(args: argparse.Namespace) -> int:
    from reprflow.components.model_selection.run import candidate_grid
    from reprflow.pipelines.local_runner import run_locally
    from reprflow.pipelines.selection import selection_pipeline

    config, out, checkpoints = _prepare(args)
    summary_dir, seconds = run_locally(
        selection_pipeline, out / "artifacts", data_uri=config["data"]["uri"], config=config,
        candidates=candidate_grid(config), seed=config["selection"]["seed"], checkpoint_root=str(checkpoints),
    )
    return _publish(summary_dir, seconds, out)


def cmd_compile(args: argparse.Namespace) -> int:
    from reprflow.components.common.config import load_config
    from reprflow.pipelines.compile import compile_pipelines

    config = load_config(args.config) if args.config else None
    for path in compile_pipelines(Path(args.output_dir), config):
        print(f"reprflow: wrote {path}")
    return 0


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
        p.add_argument("--checkpoint-dir", help="pretraining checkpoints (default: OUTPUT_DIR/checkpoints); "
                       "a rerun with the same data and settings resumes from them")
        p.set_defaults(func=func)

    comp = sub.add_parser("compile", help="compile the pipelines to KFP IR YAML",
                          description="Write OUTPUT_DIR/representation.yaml and OUTPUT_DIR/selection.yaml, "
                          "the pipelines as KFP v2 IR YAML for upload to a Kubeflow Pipelines server.")
    comp.add_argument("--output-dir", required=True, help="directory for the YAML files")
    comp.add_argument("--config", help="YAML run configuration whose values become the parameter defaults")
    comp.set_defaults(func=cmd_compile)
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
