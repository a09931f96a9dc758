"""Reading inputs from a local path or a gs:// URI."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

from reprflow.components.common.errors import DataError

log = logging.getLogger(__name__)


def split_gcs_uri(uri: str, name_required: bool = True) -> tuple[str, str]:
    """'gs://bucket/a/b' -> ('bucket', 'a/b'); 'gs://bucket/' -> ('bucket', '') if not `name_required`."""
    if not uri.startswith("gs://"):
        raise ValueError(f"not a gs:// URI: {uri!r}")
    bucket, _, name = uri[len("gs://") :].partition("/")
    if not bucket or (name_required and not name):
        raise DataError(f"{uri}: a gs:// URI needs a bucket and an object name")
    return bucket, name


def looks_like_broken_gcs_uri(uri: str) -> bool:
    """'gs:/b/x', 'gs//b/x', 'GS://b', 'gs://' (an unset bucket): meant for GCS, yet not a gs://BUCKET
    URI, so it would otherwise be taken as a local path and the data written to the pod's disk."""
    return re.match(r"(?i)gs:|gs//", uri) is not None and re.fullmatch(r"gs://[^/]+(/.*)?", uri) is None


DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")


def _is_data_name(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(DATA_SUFFIXES) and not base.startswith(("_", "."))


def expand_sources(uri: str) -> list[str]:
    """The data files behind `uri`: the file itself, or every .csv/.csv.gz/.parquet in a local
    directory or under a gs:// prefix ending in '/' (sorted by name; markers such as _SUCCESS and
    hidden files left out). DataError when a folder holds none."""
    if uri.startswith("gs://") and uri.endswith("/"):
        from reprflow.components.common.gcs import StorageError, default_gcs

        try:
            found = [o.uri for o in default_gcs().list(uri) if _is_data_name(o.uri)]
        except StorageError as exc:
            raise DataError(f"{uri}: cannot list objects ({str(exc).removeprefix(f'{uri}: ')})") from exc
    elif not uri.startswith("gs://") and Path(uri.removeprefix("file://")).is_dir():
        folder = Path(uri.removeprefix("file://"))
        found = sorted(str(p) for p in folder.rglob("*") if p.is_file() and _is_data_name(p.name))
    else:
        return [uri]
    if not found:
        raise DataError(f"{uri}: no {', '.join(DATA_SUFFIXES)} files there")
    return found


def local_file_info(uri: str, path: Path) -> dict:
    """What an input was, for provenance: URI, size, crc32c (and for gs:// the object's generation).

    No null values: the record travels as a KFP parameter, whose Struct cannot hold one."""
    from reprflow.components.common.gcs import file_crc32c

    return {"uri": uri, "bytes": path.stat().st_size, "crc32c": file_crc32c(path)}


def _missing_object(uri: str) -> str:
    """Why gs:// `uri` cannot be read: a folder named without its trailing '/', or nothing there."""
    from reprflow.components.common.gcs import StorageError, default_gcs

    try:
        folder = any(True for _ in default_gcs().list(uri + "/"))
    except StorageError:
        folder = False
    if folder:
        return f"{uri}: a folder, not an object; end it with '/' to read the data files under it"
    return f"{uri}: no such object"


@contextlib.contextmanager
def local_copy(uri: str) -> Iterator[Path]:
    """Yield a local path holding the content of `uri` (a path, file:// or gs:// URI)."""
    with local_copy_with_info(uri) as (path, _):
        yield path


@contextlib.contextmanager
def local_copy_with_info(uri: str) -> Iterator[tuple[Path, dict]]:
    """Yield a local path holding the content of `uri` and its provenance (see local_file_info).

    gs:// objects are downloaded to a temporary file removed on exit, through `gcs.GCS`: retried on
    transient failures and verified against the object's crc32c.
    """
    if uri.startswith("gs://"):
        # imported lazily: local runs need neither the client library nor credentials
        from reprflow.components.common.gcs import ObjectNotFound, StorageError, default_gcs

        _, name = split_gcs_uri(uri)
        suffix = "".join(Path(name).suffixes)
        fd, tmp = tempfile.mkstemp(suffix=suffix)
        os.close(fd)
        try:
            try:
                info = default_gcs().download(uri, tmp)  # retried, crc32c-verified, renamed into place
            except ObjectNotFound as exc:
                raise DataError(_missing_object(uri)) from exc
            except StorageError as exc:  # access, network after retries: say which
                reason = str(exc).removeprefix(f"{uri}: ")
                raise DataError(f"{uri}: cannot read object ({reason})") from exc
            log.info("downloaded %s (%d bytes, generation %s)", uri, info.size, info.generation)
            yield Path(tmp), {"uri": uri, "generation": info.generation, "bytes": info.size, "crc32c": info.crc32c}
        finally:
            Path(tmp).unlink(missing_ok=True)
        return
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    yield path, local_file_info(uri, path)
