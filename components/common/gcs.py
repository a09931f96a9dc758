"""Objects in Google Cloud Storage, written and read so that a result is whole or absent.

The client library already retries some failures and checks some checksums, but not all that a
pipeline needs: an upload is only retried by default when it carries a generation precondition,
a download resumed after a dropped connection is not checksummed at all (the tail is a ranged
read), and its errors are long HTTP dumps. `GCS` wraps one `storage.Client` so that

- every request is retried on 408/429/5xx, connection errors and timeouts, with exponential
  backoff and full jitter (`RetryPolicy`, made short in tests);
- uploads send their crc32c (the server rejects a body that does not match) and the stored
  object's crc32c is compared with the local file's afterwards: a mismatch deletes the object;
- downloads land in a temporary file, are checked against the object's crc32c and only then
  renamed into place, so a reader never sees half a file;
- a failure after retries is one `StorageError` line naming the URI and the cause.

Files above 8 MiB go as resumable uploads in `CHUNK_SIZE` pieces (the library switches by size);
an interrupted chunk is re-sent, and an upload that gives up leaves no object behind.
"""

from __future__ import annotations

import base64
import http.client
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import google_crc32c
import requests
import urllib3
from google.api_core import exceptions as api_exceptions
from google.api_core.retry import Retry
from google.auth import exceptions as auth_exceptions
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.storage import split_gcs_uri

if TYPE_CHECKING:
    from google.cloud import storage

log = logging.getLogger(__name__)

KIB_256 = 256 * 1024
CHUNK_SIZE = 32 * KIB_256  # 8 MiB: resumable chunks must be multiples of 256 KiB
RESUMABLE_ABOVE = 8 * 1024 * 1024  # google-cloud-storage's own switch (_MAX_MULTIPART_SIZE)
_RETRYABLE_STATUS = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_TYPES: tuple[type[BaseException], ...] = (
    ConnectionError,  # builtin: resets, broken pipes, the library's "short read" signal
    TimeoutError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    http.client.HTTPException,  # IncompleteRead, RemoteDisconnected, BadStatusLine
    urllib3.exceptions.ProtocolError,
    urllib3.exceptions.TimeoutError,
    urllib3.exceptions.PoolError,
)


class StorageError(ReprflowError):
    """A storage operation failed for good: the message names the URI and the cause."""


class ObjectNotFound(StorageError):
    """The object does not exist."""


class GenerationMismatch(StorageError):
    """A write's generation precondition did not hold: someone else wrote the object first."""


class ChecksumMismatch(StorageError):
    """Bytes stored or received differ from the bytes sent or expected."""


def is_transient(exc: BaseException) -> bool:
    """True for failures worth retrying: 408/429/5xx, dropped connections and timeouts."""
    if isinstance(exc, api_exceptions.GoogleAPICallError):
        return exc.code in _RETRYABLE_STATUS
    if isinstance(exc, InvalidResponse):
        return getattr(exc.response, "status_code", None) in _RETRYABLE_STATUS
    if isinstance(exc, auth_exceptions.TransportError):
        return not exc.args or not isinstance(exc.args[0], BaseException) or is_transient(exc.args[0])
    return isinstance(exc, _TRANSIENT_TYPES)


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for every request: sleeps drawn uniformly from [0, min(initial * multiplier^k, maximum)].

    `deadline_s` bounds the time spent retrying one request (a resumable upload retries each chunk
    on its own clock).
    """

    initial_s: float = 1.0
    maximum_s: float = 32.0
    multiplier: float = 2.0
    deadline_s: float = 300.0

    def retry(self) -> Retry:
        return Retry(predicate=is_transient, initial=self.initial_s, maximum=self.maximum_s,
                     multiplier=self.multiplier, timeout=self.deadline_s)


@dataclass(frozen=True)
class ObjectInfo:
    """What GCS says about one object generation."""

    uri: str
    size: int
    crc32c: str  # base64 of the big-endian CRC32C, as GCS reports it
    generation: int
    md5: str | None = None


def bytes_crc32c(data: bytes) -> str:
    """GCS's crc32c notation for `data`."""
    return base64.b64encode(google_crc32c.Checksum(data).digest()).decode("ascii")


def file_crc32c(path: str | os.PathLike) -> str:
    """GCS's crc32c notation for a file's content, read in 1 MiB blocks."""
    checksum = google_crc32c.Checksum()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            checksum.update(block)
    return base64.b64encode(checksum.digest()).decode("ascii")


def make_client() -> storage.Client:
    """The product's client: Application Default Credentials.

    With STORAGE_EMULATOR_HOST set (tests, local emulators) the library sends requests there;
    it then needs no credentials, and a placeholder project keeps it from looking for ADC.
    """
    from google.cloud import storage

    if os.environ.get("STORAGE_EMULATOR_HOST"):
        from google.auth.credentials import AnonymousCredentials

        return storage.Client(project=os.environ.get("GOOGLE_CLOUD_PROJECT") or "reprflow-emulator",
                              credentials=AnonymousCredentials())
    return storage.Client()


def _short(exc: BaseException, limit: int = 240) -> str:
    """One line for an exception; HTTP errors as their status and GCS's own message."""
    response = getattr(exc, "response", None)
    if isinstance(exc, InvalidResponse) and response is not None:
        text = f"HTTP {response.status_code} {_body_message(response)}"
    elif isinstance(exc, api_exceptions.GoogleAPICallError):
        message = _body_message(response) if response is not None else exc.message
        text = f"HTTP {exc.code} {message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    text = " ".join(text.split())
    return f"{text[:limit]}{'...' if len(text) > limit else ''}"


def _body_message(response: Any) -> str:
    """GCS's message from a JSON error body, else the start of the body."""
    try:
        return str(response.json()["error"]["message"])
    except Exception:
        return (getattr(response, "text", "") or getattr(response, "reason", "") or "")[:200]


class GCS:
    """Uploads, downloads and small JSON objects with retries and crc32c checks (see module doc).

    `client` is created on first use with `make_client()` unless given (tests pass one that
    points at an emulator or a fault-injecting proxy).
    """

    def __init__(
        self,
        client: storage.Client | None = None,
        *,
        retry: RetryPolicy | None = None,
        chunk_size: int = CHUNK_SIZE,
        timeout_s: float = 60.0,
        integrity_attempts: int = 2,
    ) -> None:
        if chunk_size <= 0 or chunk_size % KIB_256:
            raise ValueError(f"chunk_size {chunk_size} is not a positive multiple of 256 KiB")
        self._client = client
        self.policy = retry or RetryPolicy()
        self._retry = self.policy.retry()
        self.chunk_size = chunk_size
        self.timeout_s = timeout_s
        self.integrity_attempts = max(1, integrity_attempts)

    @property
    def client(self) -> storage.Client:
        if self._client is None:
            self._client = make_client()
        return self._client

    def _blob(self, uri: str, generation: int | None = None, chunked: bool = False) -> storage.Blob:
        bucket, name = split_gcs_uri(uri)
        # chunk_size only for uploads: a chunked *download* skips checksum verification.
        return self.client.bucket(bucket).blob(name, chunk_size=self.chunk_size if chunked else None,
                                               generation=generation)

    def _error(self, uri: str, action: str, exc: BaseException) -> StorageError:
        cause, retried = exc, False
        if isinstance(exc, api_exceptions.RetryError):
            cause, retried = exc.cause or exc, True
        if isinstance(cause, InvalidResponse):  # raised by the media layer, not yet translated
            cause = api_exceptions.from_http_status(getattr(cause.response, "status_code", 0),
                                                    _body_message(cause.response))
        if isinstance(cause, api_exceptions.NotFound):
            return ObjectNotFound(f"{uri}: {action} failed: no such object or bucket")
        if isinstance(cause, api_exceptions.PreconditionFailed):
            return GenerationMismatch(f"{uri}: {action} refused: the object's generation changed")
        if isinstance(cause, DataCorruption):
            return ChecksumMismatch(f"{uri}: {action} failed: checksum mismatch ({_short(cause)})")
        retried = retried or is_transient(cause)
        how = f"after retrying for up to {self.policy.deadline_s:g} s " if retried else ""
        return StorageError(f"{uri}: {action} failed {how}({_short(cause)})")

    # -- objects --------------------------------------------------------------------------------

    def stat(self, uri: str, *, retry: bool = True) -> ObjectInfo | None:
        """The object's size, crc32c and generation, or None when it does not exist."""
        bucket, name = split_gcs_uri(uri)
        try:
            blob = self.client.bucket(bucket).get_blob(name, retry=self._retry if retry else None,
                                                       timeout=self.timeout_s)
        except Exception as exc:
            raise self._error(uri, "stat", exc) from exc
        return None if blob is None else self._info(uri, blob)

    @staticmethod
    def _info(uri: str, blob: storage.Blob) -> ObjectInfo:
        return ObjectInfo(uri=uri, size=int(blob.size or 0), crc32c=blob.crc32c or "",
                          generation=int(blob.generation or 0), md5=blob.md5_hash)

    def upload(
        self,
        local_path: str | os.PathLike,
        uri: str,
        *,
        if_generation_match: int | None = None,
        content_type: str | None = None,
    ) -> ObjectInfo:
        """Upload a file to `uri`; returns the stored object's info once its crc32c is verified.

        `if_generation_match=0` writes only if the object does not exist, `=g` only over
        generation g. GCS makes an object visible only when its upload completes, so a failed
        upload leaves the previous state (or nothing).
        """
        path = Path(local_path)
        size = path.stat().st_size
        return self._put(uri, path, size, file_crc32c(path), if_generation_match, content_type)

    def upload_bytes(
        self, data: bytes, uri: str, *, if_generation_match: int | None = None, content_type: str | None = None
    ) -> ObjectInfo:
        """`upload` for bytes in memory."""
        return self._put(uri, data, len(data), bytes_crc32c(data), if_generation_match, content_type)

    def _put(
        self, uri: str, source: Path | bytes, size: int, crc: str, if_generation_match: int | None,
        content_type: str | None,
    ) -> ObjectInfo:
        blob = self._blob(uri, chunked=size > RESUMABLE_ABOVE)
        common = dict(if_generation_match=if_generation_match, checksum="crc32c", retry=self._retry,
                      timeout=self.timeout_s, crc32c_checksum_value=crc)
        try:
            if isinstance(source, Path):
                blob.upload_from_filename(str(source), content_type=content_type, **common)
            else:
                blob.upload_from_string(source, content_type=content_type or "application/octet-stream", **common)
        except Exception as exc:
            error = self._error(uri, "upload", exc)
            # The write may have landed with its response lost; its retry then fails (412 under a
            # precondition, 404/400 for a finished resumable session). An object holding exactly
            # our bytes is the state we asked for, so that is success, not an error.
            try:
                current = self.stat(uri, retry=False)  # one look: the error is already known
            except StorageError:
                current = None
            if current is not None and current.crc32c == crc and current.size == size:
                log.warning("%s: upload reported %s but the object holds our bytes (crc32c %s)", uri, error, crc)
                return current
            if isinstance(error, GenerationMismatch):
                found = current.generation if current else 0
                error = GenerationMismatch(f"{uri}: upload refused: expected generation {if_generation_match}, "
                                           f"found {found}; nothing was written")
            raise error from exc
        info = self._info(uri, blob)
        if info.crc32c != crc or info.size != size:
            self._delete_quietly(uri, info.generation)
            raise ChecksumMismatch(f"{uri}: stored object (crc32c {info.crc32c}, {info.size} bytes) does not match "
                                   f"the upload (crc32c {crc}, {size} bytes); the object was deleted")
        log.info("uploaded %s (%d bytes, crc32c %s, generation %d)", uri, size, crc, info.generation)
        return info

    def download(self, uri: str, local_path: str | os.PathLike) -> ObjectInfo:
        """Download `uri` to `local_path`, which appears only once the content matches the crc32c.

        A mismatch (bytes damaged in transit) is retried from scratch up to `integrity_attempts`
        times; then `ChecksumMismatch`, and nothing is written at `local_path`.
        """
        dest = Path(local_path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        problem, replaced = "", False
        for attempt in range(1, self.integrity_attempts + 1):
            info = self.stat(uri)
            if info is None:
                raise ObjectNotFound(f"{uri}: cannot read object: no such object")
            tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.part")
            try:
                # Pinned to the generation just read, so a concurrent overwrite cannot mix versions.
                self._blob(uri, generation=info.generation).download_to_filename(
                    str(tmp), checksum="crc32c", retry=self._retry, timeout=self.timeout_s)
                got = file_crc32c(tmp)
                if got == info.crc32c:
                    os.replace(tmp, dest)
                    log.info("downloaded %s (%d bytes, crc32c %s)", uri, info.size, got)
                    return info
                problem, replaced = f"received crc32c {got}, object has {info.crc32c}", False
            except api_exceptions.NotFound:  # that generation was replaced after the stat: stat again
                problem, replaced = f"generation {info.generation} was replaced during the read", True
            except DataCorruption as exc:
                problem, replaced = _short(exc, 160), False
            except Exception as exc:
                raise self._error(uri, "download", exc) from exc
            finally:
                tmp.unlink(missing_ok=True)
            log.warning("%s: download attempt %d failed (%s)", uri, attempt, problem)
        error = StorageError if replaced else ChecksumMismatch
        raise error(f"{uri}: download failed {self.integrity_attempts} times ({problem}); nothing was written to {dest}")

    def read_bytes(self, uri: str) -> tuple[bytes, ObjectInfo] | None:
        """The object's bytes and the generation they belong to, or None when absent."""
        for _ in range(5):
            info = self.stat(uri)
            if info is None:
                return None
            try:
                data = self._blob(uri, generation=info.generation).download_as_bytes(
                    checksum="crc32c", retry=self._retry, timeout=self.timeout_s)
            except api_exceptions.NotFound:
                continue  # replaced between the stat and the read: read again
            except Exception as exc:
                raise self._error(uri, "read", exc) from exc
            if bytes_crc32c(data) == info.crc32c:
                return data, info
            # Different bytes than the generation we stat'ed: overwritten in between. Read again.
        raise StorageError(f"{uri}: read failed: the object kept changing while being read")

    def read_json(self, uri: str) -> tuple[Any, ObjectInfo] | None:
        """Parsed JSON and its object info (for `if_generation_match`), or None when absent."""
        got = self.read_bytes(uri)
        if got is None:
            return None
        try:
            return json.loads(got[0]), got[1]
        except ValueError as exc:
            raise StorageError(f"{uri}: not valid JSON ({exc})") from exc

    def write_json(self, uri: str, obj: Any, *, if_generation_match: int | None = None) -> ObjectInfo:
        """Write `obj` as JSON; with `if_generation_match` only over that generation (0: create)."""
        data = (json.dumps(obj, indent=2) + "\n").encode("utf-8")
        return self.upload_bytes(data, uri, if_generation_match=if_generation_match, content_type="application/json")

    def delete(self, uri: str, *, if_generation_match: int | None = None) -> bool:
        """Delete the object; False when it was already absent."""
        try:
            self._blob(uri).delete(if_generation_match=if_generation_match, retry=self._retry, timeout=self.timeout_s)
        except api_exceptions.NotFound:
            return False
        except Exception as exc:
            raise self._error(uri, "delete", exc) from exc
        return True

    def _delete_quietly(self, uri: str, generation: int | None = None) -> None:
        try:
            self.delete(uri, if_generation_match=generation)
        except StorageError as exc:
            log.error("could not delete %s: %s", uri, exc)

    def list(self, prefix_uri: str) -> list[ObjectInfo]:
        """Every object whose name starts with the prefix, sorted by name."""
        bucket, prefix = split_gcs_uri(prefix_uri, name_required=False)
        try:
            blobs = list(self.client.list_blobs(bucket, prefix=prefix, retry=self._retry, timeout=self.timeout_s))
        except Exception as exc:
            raise self._error(prefix_uri, "list", exc) from exc
        return sorted((self._info(f"gs://{bucket}/{b.name}", b) for b in blobs), key=lambda i: i.uri)


_default: GCS | None = None
_default_env: str | None = None  # STORAGE_EMULATOR_HOST when the lazy default was made


def default_gcs() -> GCS:
    """The process's shared `GCS`, created on first use (its client on first request).

    A lazily made default follows STORAGE_EMULATOR_HOST: when that changes, the next call makes a
    fresh one, so a client never keeps talking to an emulator that is gone.
    """
    global _default, _default_env
    env = os.environ.get("STORAGE_EMULATOR_HOST")
    if _default is None or (_default_env is not None and _default_env != (env or "")):
        _default, _default_env = GCS(), env or ""
    return _default


def set_default_gcs(gcs: GCS | None) -> None:
    """Replace the shared `GCS` (kept until replaced again); None goes back to the lazy default."""
    global _default, _default_env
    _default, _default_env = gcs, None
