"""Where a training run keeps its checkpoint: a local file, or a local file mirrored to gs://.

On a cluster a retried task usually lands on another node, so a checkpoint on local disk is
lost with the pod. With a `gs://` target the trainer still saves to a local file (in a
temporary directory) and every save is uploaded whole (an object is visible only complete and
its crc32c is verified); a new process starts by downloading it, so a retry resumes wherever it
runs. A local target behaves exactly as before: the file is the checkpoint.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from reprflow.components.common.gcs import GCS

log = logging.getLogger(__name__)


class CheckpointStore:
    """`local_path` is what the trainer saves to and loads from; `pull` and `push` sync it."""

    def __init__(self, target: str | os.PathLike, gcs: GCS | None = None) -> None:
        target = str(target)
        self._gcs = gcs
        self._tmp: str | None = None
        if target.startswith("gs://"):
            self.uri: str | None = target
            self._tmp = tempfile.mkdtemp(prefix="reprflow-ckpt-")
            self.local_path = Path(self._tmp) / target.rsplit("/", 1)[-1]
        else:
            self.uri = None
            self.local_path = Path(target)

    def __str__(self) -> str:
        return self.uri or str(self.local_path)

    def _store(self) -> GCS:
        from reprflow.components.common.gcs import default_gcs  # only runs with gs:// need the client

        return self._gcs or default_gcs()

    def pull(self) -> bool:
        """Make the latest checkpoint available at `local_path`; False when there is none."""
        if self.uri is None:
            return self.local_path.exists()
        if self._store().stat(self.uri) is None:
            return False
        info = self._store().download(self.uri, self.local_path)
        log.info("pulled checkpoint %s (generation %d, %d bytes)", self.uri, info.generation, info.size)
        return True

    def push(self) -> None:
        """Publish the checkpoint just saved at `local_path` (no-op for a local target)."""
        if self.uri is not None:
            self._store().upload(self.local_path, self.uri)

    def close(self) -> None:
        """Remove the local copy of a remote checkpoint."""
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
