"""Published artifact versions at stable URIs, and a compare-and-swap pointer to the current one.

Layout under a root (`gs://bucket/prefix` or a local directory, the same on both):

    {root}/{name}/versions/{version_id}/...files...
    {root}/{name}/versions/{version_id}/MANIFEST.json   written last: the version exists only
                                                        once its manifest does
    {root}/{name}/CURRENT.json  {"version", "uri", "updated_at", "previous"} (+ "generation" locally)

`version_id` is `YYYYMMDDTHHMMSS.ffffffZ-<first 10 hex of sha256 over the files' paths, sizes
and crc32c>`: it sorts by publication time (UTC, microseconds, so two publications never share an
id) and shows identical content at a glance. Publishing identical content twice makes a second
version on purpose: a version records one publication with its provenance (code, inputs, time),
and the matching hash suffix says the bytes are the same.

Every write is whole or invisible: on GCS each object appears only complete, files carry
`ifGenerationMatch=0` (a version never overwrites anything), the manifest goes last and a failed
publish deletes what it wrote under its version prefix; locally a version is staged and renamed
into place. The pointer moves only from the generation its writer read (GCS `ifGenerationMatch`;
locally `flock` plus a generation counter in the file), so of two writers that read the same
pointer exactly one moves it and the other gets `PointerMoved`, its version still published.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from reprflow.components.common.artifacts import atomic_dir, read_json, staging_dir, stays_inside, write_json
from reprflow.components.common.errors import DataError, ReprflowError
from reprflow.components.common.gcs import (
    GCS,
    ChecksumMismatch,
    GenerationMismatch,
    StorageError,
    default_gcs,
    file_crc32c,
)
from reprflow.components.common.storage import looks_like_broken_gcs_uri

log = logging.getLogger(__name__)

MANIFEST = "MANIFEST.json"
POINTER = "CURRENT.json"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # artifact names (use fullmatch)
VERSION_PATTERN = re.compile(r"\d{8}T\d{6}\.\d{6}Z-[0-9a-f]{10}")  # version ids (use fullmatch)


class VersionNotFound(StorageError):
    """No such published version (no manifest), or no current version."""


class PointerMoved(StorageError):
    """The pointer changed between the caller's read and its move: nothing was changed."""


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative, POSIX separators
    size: int
    crc32c: str  # GCS notation: base64 of the big-endian CRC32C
    md5: str  # hex


@dataclass(frozen=True)
class Version:
    name: str
    version_id: str
    uri: str
    files: tuple[FileEntry, ...]
    provenance: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""

    def manifest(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version_id, "uri": self.uri, "created_at": self.created_at,
                "files": [vars(f) for f in self.files], "provenance": self.provenance}


@dataclass(frozen=True)
class Pointer:
    version: str | None
    generation: int  # 0: no pointer yet


def _md5_hex(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _files_under(local_dir: Path) -> list[Path]:
    """Every file under `local_dir`, through symlinked folders too (rglob does not enter them); a
    link back to a folder above it is refused rather than followed forever."""
    found: list[Path] = []
    for top, _, names in os.walk(local_dir, followlinks=True):
        top = Path(top)
        walked = top.relative_to(local_dir).parts
        target = top.resolve()
        if any(local_dir.joinpath(*walked[:i]).resolve().is_relative_to(target) for i in range(len(walked))):
            raise ReprflowError(f"{top}: a symlink to a folder that holds it; nothing was published")
        found += [top / n for n in names if (top / n).is_file()]
    return sorted(found)


def _scan(local_dir: Path) -> tuple[FileEntry, ...]:
    if not local_dir.is_dir():
        raise ReprflowError(f"{local_dir}: not a directory, nothing to publish")
    files = _files_under(local_dir)
    entries = tuple(FileEntry(p.relative_to(local_dir).as_posix(), p.stat().st_size, file_crc32c(p), _md5_hex(p))
                    for p in files)
    if not entries:
        raise ReprflowError(f"{local_dir}: no files to publish")
    if any(e.path == MANIFEST for e in entries):
        raise ReprflowError(f"{local_dir}/{MANIFEST}: the registry writes this file itself; rename it")
    for e in entries:  # fetch refuses these: a backslash is a separator elsewhere
        if "\\" in e.path:
            raise ReprflowError(f"{local_dir / e.path}: a file name with a backslash cannot be published")
    return entries


def content_hash(files: tuple[FileEntry, ...]) -> str:
    """The first 10 hex of sha256 over the files' paths, sizes and crc32c: a version id's suffix."""
    return hashlib.sha256("".join(f"{f.path}\t{f.size}\t{f.crc32c}\n" for f in files).encode()).hexdigest()[:10]


def version_id_for(files: tuple[FileEntry, ...], when: datetime) -> str:
    """Sortable, unique id: UTC time to the microsecond plus a content hash prefix."""
    return f"{when.strftime('%Y%m%dT%H%M%S.%f')}Z-{content_hash(files)}"


def _safe_rel(path: str, where: str) -> str:
    if not stays_inside(path):
        raise StorageError(f"{where}: file path {path!r} escapes the version (no '..', absolute path or '\\')")
    return path


def _version_from(manifest: dict[str, Any], where: str) -> Version:
    try:
        files = tuple(FileEntry(_safe_rel(str(f["path"]), where), int(f["size"]), str(f["crc32c"]), str(f["md5"]))
                      for f in manifest["files"])
        return Version(str(manifest["name"]), str(manifest["version"]), str(manifest["uri"]), files,
                       dict(manifest.get("provenance") or {}), str(manifest.get("created_at", "")))
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(f"{where}: malformed manifest ({type(exc).__name__}: {exc})") from exc


class _Conflict(Exception):
    """Internal: the pointer's generation was not the expected one."""


class _LocalBackend:
    """A directory: versions staged and renamed into place; the pointer under an flock."""

    def __init__(self, root: str) -> None:
        self.root = Path(root[len("file://"):] if root.startswith("file://") else root)

    def uri(self, rel: str) -> str:
        return str(self.root / rel)

    def write_version(self, rel_dir: str, local_dir: Path, files: tuple[FileEntry, ...],
                      manifest: dict[str, Any]) -> None:
        final = self.root / rel_dir
        # Staged next to `final` and renamed: rename onto an existing non-empty directory fails,
        # so a version is never replaced (unlike atomic_dir).
        staging = staging_dir(final)
        try:
            for f in files:
                dest = staging / f.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(local_dir / f.path, dest)
                if file_crc32c(dest) != f.crc32c:
                    raise ChecksumMismatch(f"{local_dir / f.path}: changed while being published")
            write_json(staging / MANIFEST, manifest)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def read_json(self, rel: str) -> tuple[Any, int] | None:
        path = self.root / rel
        if not path.is_file():
            return None
        try:
            obj = read_json(path)
        except DataError as exc:  # names the path already
            raise StorageError(str(exc)) from exc
        return obj, int(obj.get("generation", 1)) if isinstance(obj, dict) else 1

    def fetch_file(self, rel: str, dest: Path) -> None:
        src = self.root / rel
        if not src.is_file():
            raise StorageError(f"{src}: missing file of a published version")
        shutil.copyfile(src, dest)

    def version_ids(self, rel_dir: str) -> list[str]:
        d = self.root / rel_dir
        if not d.is_dir():
            return []
        # a staging folder (.<id>.xxxx) holds its manifest just before its rename
        return sorted(p.name for p in d.iterdir() if VERSION_PATTERN.fullmatch(p.name) and (p / MANIFEST).is_file())

    @contextlib.contextmanager
    def _locked(self, rel: str) -> Iterator[None]:
        lock = self.root / Path(rel).with_name(f".{Path(rel).name}.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with open(lock, "a+") as fd:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released when the file is closed
            yield

    def cas_json(self, rel: str, obj: dict[str, Any], expected_generation: int) -> int:
        with self._locked(rel):
            current = self.read_json(rel)
            generation = current[1] if current else 0
            if generation != expected_generation:
                raise _Conflict(generation)
            write_json(self.root / rel, {**obj, "generation": generation + 1})  # temp + rename
            return generation + 1


class _GcsBackend:
    """gs://bucket/prefix: objects are atomic; preconditions make the pointer a CAS register."""

    def __init__(self, root: str, gcs: GCS) -> None:
        self.root, self.gcs = root, gcs

    def uri(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def write_version(self, rel_dir: str, local_dir: Path, files: tuple[FileEntry, ...],
                      manifest: dict[str, Any]) -> None:
        prefix = self.uri(rel_dir)
        written: list[str] = []
        try:
            for f in files:
                uri = f"{prefix}/{f.path}"
                written.append(uri)  # before the call: a failed upload may still have landed
                info = self.gcs.upload(local_dir / f.path, uri, if_generation_match=0)
                if info.crc32c != f.crc32c:
                    raise ChecksumMismatch(f"{uri}: stored crc32c {info.crc32c} differs from the scanned "
                                           f"{f.crc32c}: {local_dir / f.path} changed while being published")
            written.append(f"{prefix}/{MANIFEST}")
            self.gcs.write_json(f"{prefix}/{MANIFEST}", manifest, if_generation_match=0)
        except BaseException:
            self._remove(prefix, written)
            raise

    def _remove(self, prefix: str, written: list[str]) -> None:
        """Best effort: everything under the (unique) version prefix, listed or remembered."""
        try:
            targets = set(written) | {i.uri for i in self.gcs.list(f"{prefix}/")}
        except StorageError as exc:
            log.error("%s: cannot list for clean-up (%s)", prefix, exc)
            targets = set(written)
        manifest = f"{prefix}/{MANIFEST}"
        for uri in sorted(targets, key=lambda u: u == manifest, reverse=True):  # manifest first
            try:
                self.gcs.delete(uri)
            except StorageError as exc:
                log.error("clean-up of a failed publish left %s (%s)", uri, exc)

    def read_json(self, rel: str) -> tuple[Any, int] | None:
        got = self.gcs.read_json(self.uri(rel))
        return None if got is None else (got[0], got[1].generation)

    def fetch_file(self, rel: str, dest: Path) -> None:
        self.gcs.download(self.uri(rel), dest)

    def version_ids(self, rel_dir: str) -> list[str]:
        prefix = self.uri(rel_dir) + "/"
        ids = {i.uri[len(prefix):].split("/", 1)[0] for i in self.gcs.list(prefix)
               if i.uri.endswith(f"/{MANIFEST}") and i.uri[len(prefix):].count("/") == 1}
        return sorted(i for i in ids if VERSION_PATTERN.fullmatch(i))

    def cas_json(self, rel: str, obj: dict[str, Any], expected_generation: int) -> int:
        try:
            return self.gcs.write_json(self.uri(rel), obj, if_generation_match=expected_generation).generation
        except GenerationMismatch as exc:
            raise _Conflict() from exc


class Registry:
    """Versions of named artifacts under `root` (a `gs://bucket/prefix` or a local directory)."""

    def __init__(self, root: str | os.PathLike, gcs: GCS | None = None) -> None:
        if looks_like_broken_gcs_uri(str(root)):
            raise ReprflowError(f"registry {str(root)!r}: not a gs://BUCKET/PREFIX URI (nor meant as a local path?)")
        root = str(root).rstrip("/")
        self._backend: _LocalBackend | _GcsBackend = (
            _GcsBackend(root, gcs or default_gcs()) if root.startswith("gs://") else _LocalBackend(root))
        self.root = str(self._backend.root)  # a local root as pathlib spells it, so URIs compare

    # -- naming -----------------------------------------------------------------------------------

    @staticmethod
    def _check(name: str, version_id: str | None = None) -> None:
        if not NAME_PATTERN.fullmatch(name):
            raise ReprflowError(f"artifact name {name!r}: use letters, digits, '.', '_' and '-'")
        if version_id is not None and not VERSION_PATTERN.fullmatch(version_id):
            raise VersionNotFound(f"{version_id!r}: not a version id (YYYYMMDDTHHMMSS.ffffffZ-<10 hex>)")

    def version_uri(self, name: str, version_id: str) -> str:
        return self._backend.uri(f"{name}/versions/{version_id}")

    def pointer_uri(self, name: str) -> str:
        return self._backend.uri(f"{name}/{POINTER}")

    # -- versions ---------------------------------------------------------------------------------

    def publish(self, name: str, local_dir: str | os.PathLike, provenance: dict[str, Any],
                reuse: bool = False) -> Version:
        """Publish every file under `local_dir` as a new version; the manifest is written last.

        On any failure what was written for this version is removed (best effort, logged) and
        the error is raised: the version is either complete with its manifest or not listed.
        With `reuse`, the newest version that already holds exactly these files is returned instead
        (a retried task publishes once).
        """
        self._check(name)
        local = Path(local_dir)
        files = _scan(local)
        same = self._holding(name, content_hash(files)) if reuse else None
        if same is not None:
            log.info("%s already holds these files", self.version_uri(name, same))
            return self.get_version(name, same)
        when = datetime.now(timezone.utc)
        version_id = version_id_for(files, when)
        version = Version(name, version_id, self.version_uri(name, version_id), files, dict(provenance),
                          when.isoformat().replace("+00:00", "Z"))
        self._backend.write_version(f"{name}/versions/{version_id}", local, files, version.manifest())
        log.info("published %s (%d files)", version.uri, len(files))
        return version

    def get_version(self, name: str, version_id: str) -> Version:
        """The version's manifest; `VersionNotFound` when it has none (not published)."""
        self._check(name, version_id)
        where = f"{self.version_uri(name, version_id)}/{MANIFEST}"
        got = self._backend.read_json(f"{name}/versions/{version_id}/{MANIFEST}")
        if got is None:
            raise VersionNotFound(f"{self.version_uri(name, version_id)}: not a published version (no {MANIFEST})")
        return _version_from(got[0], where)

    def list_versions(self, name: str) -> list[str]:
        """Published version ids (those with a manifest), oldest first."""
        self._check(name)
        return self._backend.version_ids(f"{name}/versions")

    def resolve(self, uri: str) -> Version:
        """The version a version URI (`{root}/{name}/versions/{id}`) names."""
        rest = uri.rstrip("/").removesuffix(f"/{MANIFEST}")
        if not rest.startswith(self.root + "/"):
            raise VersionNotFound(f"{uri}: not under this registry's root {self.root}")
        parts = rest[len(self.root) + 1:].split("/")
        if len(parts) != 3 or parts[1] != "versions":
            raise VersionNotFound(f"{uri}: not a version URI ({self.root}/NAME/versions/VERSION_ID)")
        return self.get_version(parts[0], parts[2])

    def fetch(self, name: str, version: str, local_dir: str | os.PathLike) -> Path:
        """Download a version ("current" for the pointer's) into `local_dir`, verified file by file.

        Each file's size and crc32c must match the manifest, else `ChecksumMismatch` and
        `local_dir` is left as it was. The manifest is written alongside as MANIFEST.json.
        """
        if version == "current":
            pointer = self.read_pointer(name)
            if pointer.version is None:
                raise VersionNotFound(f"{self.pointer_uri(name)}: no current version")
            version = pointer.version
        v = self.get_version(name, version)
        with atomic_dir(local_dir) as staging:
            for f in v.files:
                dest = staging / f.path
                dest.parent.mkdir(parents=True, exist_ok=True)
                self._backend.fetch_file(f"{name}/versions/{version}/{f.path}", dest)
                size, crc = dest.stat().st_size, file_crc32c(dest)
                if (size, crc) != (f.size, f.crc32c):
                    raise ChecksumMismatch(
                        f"{v.uri}/{f.path}: content (crc32c {crc}, {size} bytes) does not match the manifest "
                        f"(crc32c {f.crc32c}, {f.size} bytes); version {version} refused")
            write_json(staging / MANIFEST, v.manifest())
        log.info("fetched %s into %s", v.uri, local_dir)
        return Path(local_dir)

    # -- the pointer ------------------------------------------------------------------------------

    def read_pointer(self, name: str) -> Pointer:
        """The current version and the pointer's generation (0 and None when there is none)."""
        self._check(name)
        got = self._backend.read_json(f"{name}/{POINTER}")
        if got is None:
            return Pointer(None, 0)
        if not isinstance(got[0], dict):
            raise StorageError(f"{self.pointer_uri(name)}: not a pointer (a JSON object with \"version\")")
        return Pointer(got[0].get("version"), got[1])

    def holding(self, name: str, local_dir: str | os.PathLike) -> str | None:
        """The newest version of `name` that holds exactly the files under `local_dir`, or None."""
        return self._holding(name, content_hash(_scan(Path(local_dir))))

    def _holding(self, name: str, digest: str) -> str | None:
        same = [v for v in self.list_versions(name) if v.endswith("-" + digest)]
        return same[-1] if same else None

    @staticmethod
    def holds(version_id: str | None, local_dir: str | os.PathLike) -> bool:
        """Whether version `version_id` holds exactly the files under `local_dir` (its id ends in
        their content hash)."""
        return bool(version_id) and version_id.endswith("-" + content_hash(_scan(Path(local_dir))))

    def move_pointer(self, name: str, version_id: str, expected: Pointer) -> Pointer:
        """Point `name` at a published version, only if the pointer is still at `expected`.

        Raises `PointerMoved` (nothing changed) when another writer moved it since `expected` was
        read; the caller's version stays published and can be pointed at after a fresh read.
        """
        v = self.get_version(name, version_id)  # refuses a version without manifest
        doc = {"version": version_id, "uri": v.uri, "updated_at": datetime.now(timezone.utc).isoformat()
               .replace("+00:00", "Z"), "previous": expected.version}
        try:
            generation = self._backend.cas_json(f"{name}/{POINTER}", doc, expected.generation)
        except _Conflict as exc:
            now = self.read_pointer(name)
            raise PointerMoved(
                f"{self.pointer_uri(name)} moved since it was read (expected generation {expected.generation}, "
                f"found {now.generation} pointing at {now.version}): nothing was changed; your version "
                f"{version_id} stays published at {v.uri}; re-read the pointer and decide again") from exc
        log.info("%s -> %s (generation %d)", self.pointer_uri(name), version_id, generation)
        return Pointer(version_id, generation)
