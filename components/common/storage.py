"""Reading inputs from a local path or a gs:// URI."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reprflow.components.common.errors import DataError

log = logging.getLogger(__name__)


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """'gs://bucket/a/b' -> ('bucket', 'a/b')."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or not name:
        raise DataError(f"{uri}: a gs:// URI needs a bucket and an object name")
    return bucket, name


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """Yield a local path holding the content of `uri` (a path, file:// or gs:// URI).

    gs:// objects are downloaded to a temporary file removed on exit, through `gcs.GCS`: retried on
    transient failures and verified against the object's crc32c.
    """
    if uri.startswith("gs://"):
        # imported lazily: local runs need neither the client library nor credentials
        from reprflow.components.common.gcs import StorageError, default_gcs

        _, name = split_gcs_uri(uri)
        suffix = "".join(Path(name).suffixes)
        fd, tmp = tempfile.mkstemp(suffix=suffix)
        os.close(fd)
        try:
            try:
                default_gcs().download(uri, tmp)  # retried, crc32c-verified, renamed into place
            except StorageError as exc:  # missing object, access, network after retries: say which
                reason = str(exc).removeprefix(f"{uri}: ")
                raise DataError(f"{uri}: cannot read object ({reason})") from exc
            log.info("downloaded %s (%d bytes)", uri, os.path.getsize(tmp))
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)
        return
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    yield path
