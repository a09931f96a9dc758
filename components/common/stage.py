"""What every stage does around its work when a component runs it: logging and error reporting."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any, TypeVar

from reprflow.components.common.config import validate_config
from reprflow.components.common.errors import ReprflowError

ERROR_FILE_ENV = "REPRFLOW_ERROR_FILE"
TORCH_THREADS_ENV = "REPRFLOW_TORCH_THREADS"  # set by a runner that runs several tasks per machine
EXPECT_CUDA_ENV = "REPRFLOW_EXPECT_CUDA"  # "1" on tasks placed on GPU nodes: device "auto" must find CUDA
T = TypeVar("T")


def run_stage(fn: Callable[[dict[str, Any]], T], config: dict[str, Any]) -> T:
    """Run `fn(validated config)` with INFO logging. A ReprflowError (bad input, worded for the user)
    is logged as one line, appended to $REPRFLOW_ERROR_FILE and ends the task with exit status 1;
    any other exception is a defect and keeps its traceback.

    The config is validated again here because it arrives as a pipeline parameter, from whoever
    submitted the run, and as a protobuf Struct (integers become floats).

    Stages run in subprocesses (kfp.local) or pods; the file lets the CLI show the user the reason
    in one line rather than a task status.
    """
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        return fn(validate_config(config, "pipeline parameter 'config'"))
    except ReprflowError as exc:
        path = os.environ.get(ERROR_FILE_ENV)
        if path:
            with open(path, "a", encoding="utf-8") as f:
                f.write(f"{exc}\n")
        logging.getLogger("reprflow").error("%s", exc)
        raise SystemExit(1) from None
