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

    gs:// objects are downloaded to a temporary file removed on exit; the download verifies the
    object's checksum (google-cloud-storage does, for whole-object reads).
    """
    if uri.startswith("gs://"):
        from google.cloud import storage  # imported lazily: local runs need no credentials

        bucket_name, name = split_gcs_uri(uri)
        client = storage.Client()
        blob = client.bucket(bucket_name).blob(name)
        suffix = "".join(Path(name).suffixes)
        fd, tmp = tempfile.mkstemp(suffix=suffix)
        os.close(fd)
        try:
            try:
                blob.download_to_filename(tmp)
            except Exception as exc:  # NotFound, Forbidden, network: say which object
                raise DataError(f"{uri}: cannot read object ({type(exc).__name__}: {exc})") from exc
            log.info("downloaded %s (%d bytes)", uri, os.path.getsize(tmp))
            yield Path(tmp)
        finally:
            Path(tmp).unlink(missing_ok=True)  # the client removes it itself after a failed download
        return
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    yield path
