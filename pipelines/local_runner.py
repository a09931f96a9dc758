"""Run a pipeline on this machine with kfp.local, leaving nothing behind when it fails."""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kfp import local

from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.stage import ERROR_FILE_ENV, TORCH_THREADS_ENV

log = logging.getLogger(__name__)
# kfp.local runs at most two ParallelFor iterations at once; torch in each should then use half
# the cores, or two pretraining processes spinning on all cores slow each other down ~20x.
LOCAL_PARALLELISM = 2
ANSI = re.compile(r"\x1b\[[0-9;]*m")  # kfp.local colours its messages


class PipelineFailed(ReprflowError):
    """A task failed; the message is the stage's own one-line reason when it gave one."""


def _outermost_missing(path: Path) -> Path | None:
    """The outermost of `path` and its parents that does not exist yet (None if `path` exists)."""
    missing = None
    for p in (path, *path.parents):
        if p.exists():
            break
        missing = p
    return missing


def _remove_empty(path: Path, created: Path | None) -> None:
    """Remove `path` and its parents up to `created` (the folders this run made) while they are empty."""
    if created is None:
        return
    for p in (path, *path.parents):
        if not p.is_dir() or any(p.iterdir()):
            return
        p.rmdir()
        if p == created:
            return


def run_locally(pipeline: Callable[..., Any], pipeline_root: Path, **arguments: Any) -> tuple[dict[str, Path], float]:
    """Run `pipeline(**arguments)` under SubprocessRunner in the current environment.

    Returns the local paths of the pipeline's output artifacts by name ("Output" for a pipeline
    with one) and the wall time. On failure the run's own directory under `pipeline_root` is
    removed, then whichever folders on the way to it this call created and left empty; what was
    there before is untouched. PipelineFailed carries the failing stage's reason.
    """
    created = _outermost_missing(pipeline_root)
    pipeline_root.mkdir(parents=True, exist_ok=True)
    before = set(pipeline_root.iterdir())
    scratch = tempfile.mkdtemp(prefix="reprflow-local-")
    error_file = os.path.join(scratch, "error.txt")
    Path(error_file).touch()
    # TMPDIR: kfp.local writes each task's program to a `mktemp -d` folder it never removes
    env = {ERROR_FILE_ENV: error_file, TORCH_THREADS_ENV: str(max(1, (os.cpu_count() or 1) // LOCAL_PARALLELISM)),
           "TMPDIR": scratch}
    previous = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    started = time.perf_counter()
    try:
        # The components' image is the package installed here, which is what the warning asks for.
        warnings.filterwarnings("ignore", message="You may be attemping to run a task that uses custom")
        local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(pipeline_root))
        task = pipeline(**arguments)
        return {name: Path(a.path) for name, a in task.outputs.items()}, time.perf_counter() - started
    except Exception as exc:
        for path in set(pipeline_root.iterdir()) - before:
            shutil.rmtree(path, ignore_errors=True)
        _remove_empty(pipeline_root, created)
        reason = Path(error_file).read_text(encoding="utf-8").strip().splitlines()
        raise PipelineFailed(reason[-1] if reason else ANSI.sub("", f"pipeline failed: {exc}")) from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
