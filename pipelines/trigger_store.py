"""Where the trigger remembers which notifications it has acted on: one small JSON record per key.

A record is created only if absent (GCS: `ifGenerationMatch=0`; a local directory: `os.link` of a
finished temporary file, which fails when the name exists), so of two deliveries racing for the
same key exactly one wins. Every later change (recording the run, taking over a stale claim,
releasing a claim after a failed submit) is a compare-and-swap against the claim the caller holds:
the object generation on GCS, the record's `claim_id` under a lock file locally. So a delivery can
never overwrite or delete a claim that another delivery has taken over in the meantime.

Records carry a random `claim_id`, so two claimers never write identical bytes: `GCS.upload_bytes`
treats "the object already holds exactly our bytes" as success after a lost response.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Protocol

from reprflow.components.common.errors import ReprflowError
from reprflow.components.common.gcs import GCS, GenerationMismatch, RetryPolicy, StorageError

# A claim must be answered within Pub/Sub's push deadline (60 s in manifests/base/pubsub.yaml), so
# the store gives up retrying after 20 s and the delivery is answered 503 (redelivered later).
STORE_RETRY = RetryPolicy(initial_s=0.5, maximum_s=5.0, deadline_s=20.0)
_ATTEMPTS = 3  # a record that vanishes between "exists" and "read" (released meanwhile): try again


@dataclass(frozen=True)
class Claim:
    """A record this process holds: `token` is the GCS generation or the local `claim_id`."""

    where: str
    token: int | str


@dataclass(frozen=True)
class Held:
    """A record someone else created first: its content ({} when unreadable) and its token."""

    where: str
    record: dict[str, Any] = field(default_factory=dict)
    token: int | str = ""


class ClaimStore(Protocol):
    """What the trigger needs from a dedup store; `key` is a hex digest (see trigger.dedup_key)."""

    def location(self, key: str) -> str: ...

    def claim(self, key: str, record: dict[str, Any]) -> Claim | Held: ...

    def take_over(self, held: Held, record: dict[str, Any]) -> Claim | None: ...

    def update(self, claim: Claim, record: dict[str, Any]) -> Claim: ...

    def release(self, claim: Claim) -> bool: ...

    def read(self, key: str) -> dict[str, Any] | None: ...


def _encode(record: dict[str, Any]) -> bytes:
    return (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8")


def _decode(data: bytes) -> dict[str, Any]:
    """A record's content; {} for anything that is not a JSON object (treated as a stale claim)."""
    try:
        value = json.loads(data)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


class GcsClaimStore:
    """Records under a gs:// prefix, e.g. gs://bucket/registry/trigger-seen/<key>.json."""

    def __init__(self, root_uri: str, gcs: GCS | None = None) -> None:
        if not root_uri.startswith("gs://") or len(root_uri.rstrip("/")) <= len("gs://"):
            raise ReprflowError(f"dedup location {root_uri!r}: expected gs://bucket[/prefix]")
        self.root = root_uri.rstrip("/")
        self.gcs = gcs or GCS(retry=STORE_RETRY)

    def location(self, key: str) -> str:
        return f"{self.root}/{key}.json"

    def claim(self, key: str, record: dict[str, Any]) -> Claim | Held:
        uri = self.location(key)
        for _ in range(_ATTEMPTS):
            try:
                info = self.gcs.upload_bytes(_encode(record), uri, if_generation_match=0,
                                             content_type="application/json")
                return Claim(uri, info.generation)
            except GenerationMismatch:
                pass
            got = self.gcs.read_bytes(uri)
            if got is not None:
                return Held(uri, _decode(got[0]), got[1].generation)
        raise StorageError(f"{uri}: claim failed: the record kept appearing and disappearing")

    def take_over(self, held: Held, record: dict[str, Any]) -> Claim | None:
        try:
            info = self.gcs.upload_bytes(_encode(record), held.where, if_generation_match=int(held.token),
                                         content_type="application/json")
        except GenerationMismatch:
            return None
        return Claim(held.where, info.generation)

    def update(self, claim: Claim, record: dict[str, Any]) -> Claim:
        info = self.gcs.upload_bytes(_encode(record), claim.where, if_generation_match=int(claim.token),
                                     content_type="application/json")
        return Claim(claim.where, info.generation)

    def release(self, claim: Claim) -> bool:
        """Delete our claim; False when it is no longer ours (taken over) or already gone."""
        try:
            return self.gcs.delete(claim.where, if_generation_match=int(claim.token))
        except GenerationMismatch:
            return False

    def read(self, key: str) -> dict[str, Any] | None:
        got = self.gcs.read_bytes(self.location(key))
        return None if got is None else _decode(got[0])


class LocalClaimStore:
    """Records in a local directory (one machine, or a shared POSIX filesystem with working locks)."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"{self.directory}: cannot create the dedup directory ({exc.strerror})") from None

    def location(self, key: str) -> str:
        return str(self.directory / f"{key}.json")

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        """Serializes compare-and-swap changes (take over, update, release) across processes."""
        with open(self.directory / ".lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _read(self, path: Path) -> dict[str, Any] | None:
        try:
            return _decode(path.read_bytes())
        except FileNotFoundError:
            return None

    def _write(self, path: Path, record: dict[str, Any], exclusive: bool) -> bool:
        """Write via a finished temporary file: `os.link` (create only if absent) or `os.replace`."""
        tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            tmp.write_bytes(_encode(record))
            if not exclusive:
                os.replace(tmp, path)
                return True
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        except OSError as exc:
            raise StorageError(f"{path}: cannot write the dedup record ({exc.strerror})") from None
        finally:
            tmp.unlink(missing_ok=True)

    def claim(self, key: str, record: dict[str, Any]) -> Claim | Held:
        path = Path(self.location(key))
        for _ in range(_ATTEMPTS):
            if self._write(path, record, exclusive=True):
                return Claim(str(path), record["claim_id"])
            held = self._read(path)
            if held is not None:
                return Held(str(path), held, held.get("claim_id", ""))
        raise StorageError(f"{path}: claim failed: the record kept appearing and disappearing")

    def _swap(self, where: str, token: int | str, record: dict[str, Any] | None) -> bool:
        """Replace (or, record None, delete) the record if it still carries `token`."""
        path = Path(where)
        with self._locked():
            current = self._read(path)
            if current is None or current.get("claim_id", "") != token:
                return False
            if record is None:
                path.unlink()
            else:
                self._write(path, record, exclusive=False)
            return True

    def take_over(self, held: Held, record: dict[str, Any]) -> Claim | None:
        return Claim(held.where, record["claim_id"]) if self._swap(held.where, held.token, record) else None

    def update(self, claim: Claim, record: dict[str, Any]) -> Claim:
        if not self._swap(claim.where, claim.token, record):
            raise StorageError(f"{claim.where}: update refused: the claim is no longer ours")
        return Claim(claim.where, record["claim_id"])

    def release(self, claim: Claim) -> bool:
        return self._swap(claim.where, claim.token, None)

    def read(self, key: str) -> dict[str, Any] | None:
        return self._read(Path(self.location(key)))


def open_store(location: str, gcs: GCS | None = None) -> ClaimStore:
    """A store for a gs:// prefix or a local directory."""
    if location.startswith("gs://"):
        return GcsClaimStore(location, gcs)
    if "://" in location:
        raise ReprflowError(f"dedup location {location!r}: expected gs://bucket/prefix or a local directory")
    return LocalClaimStore(location)
