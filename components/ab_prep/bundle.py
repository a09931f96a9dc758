"""Reading a published bundle (`reprflow.bundle/1`) for A/B preparation, with one-line errors.

Only what A/B preparation uses is checked: the bundle may carry more (other tasks, more keys).
Every error names the file, the field and the value.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from reprflow.components.common.artifacts import read_json, stays_inside
from reprflow.components.common.errors import DataError, ReprflowError
from reprflow.components.common.registry import NAME_PATTERN, VERSION_PATTERN
from reprflow.components.featurize.fpr import FPRFeaturizer
from reprflow.components.package.bundle import OFFLINE_KEYS, SERVED, ids_digest
from reprflow.components.package.bundle import SCHEMA as BUNDLE_SCHEMA
from reprflow.components.package.linear_model import LinearModel

BUNDLE_FILE = "bundle.json"
IDS_FILE = "embeddings/ids.json"
MANIFEST_FILE = "MANIFEST.json"  # written next to a version's files by Registry.fetch
KINDS = ("multiclass", "regression", "binary")
METRICS = ("accuracy", "r2", "auc")
PROVENANCE_KEYS = ("code_version", "image", "config_hash", "seeds", "inputs", "created_at")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TIMESTAMP = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


class BundleError(ReprflowError):
    """A bundle cannot be read: names the file, the field and the value."""


@dataclass(frozen=True)
class Bundle:
    """One arm's bundle as read from its directory."""

    role: str  # "control" | "treatment"
    directory: Path
    uri: str  # the registry version URI when given, else the directory's absolute path
    version_id: str | None  # from the URI or the fetched MANIFEST.json; None for an unpublished directory
    doc: dict[str, Any]  # bundle.json
    ids: tuple[str, ...]

    @property
    def name(self) -> str:
        return str(self.doc["name"])

    @property
    def served(self) -> str:
        return str(self.doc["served_representation"])

    def file_uri(self, rel: str) -> str:
        return f"{self.uri.rstrip('/')}/{rel}"


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except DataError as exc:  # names the file already
        raise BundleError(str(exc)) from None


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and v == v and abs(v) != float("inf")


def _short(v: Any, limit: int = 120) -> str:
    text = json.dumps(v) if not isinstance(v, str) else repr(v)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _get(doc: dict[str, Any], dotted: str, where: Path) -> Any:
    cur: Any = doc
    for part in dotted.split("."):
        if not isinstance(cur, dict) or part not in cur:
            raise BundleError(f"{where}: missing field '{dotted}'")
        cur = cur[part]
    return cur


def _expect(ok: bool, where: Path, field: str, allowed: str, value: Any) -> None:
    if not ok:
        raise BundleError(f"{where}: field '{field}' must be {allowed}, got {_short(value)}")


def _rel_file(directory: Path, where: Path, field: str, rel: Any) -> str:
    _expect(isinstance(rel, str) and rel != "", where, field, "a relative file path", rel)
    _expect(stays_inside(rel), where, field, "a path inside the bundle", rel)
    if not (directory / rel).is_file():
        raise BundleError(f"{where}: field '{field}' names {rel!r}, which is not in the bundle ({directory / rel})")
    return rel


def version_id_from_uri(uri: str | None) -> str | None:
    """The registry version id that ends a version URI, or None."""
    if not uri:
        return None
    last = uri.rstrip("/").rsplit("/", 1)[-1]
    return last if VERSION_PATTERN.fullmatch(last) else None


def check_task_entry(bundle_file: Path, doc: dict[str, Any], task: str, served: str) -> None:
    """The chosen task's entry (when present: a missing task is a comparability failure)."""
    base = f"tasks.{task}"
    entry = doc["tasks"][task]
    _expect(isinstance(entry, dict), bundle_file, base, "an object", entry)
    kind, metric = _get(doc, f"{base}.kind", bundle_file), _get(doc, f"{base}.metric", bundle_file)
    _expect(kind in KINDS, bundle_file, f"{base}.kind", f"one of {', '.join(KINDS)}", kind)
    _expect(metric in METRICS, bundle_file, f"{base}.metric", f"one of {', '.join(METRICS)}", metric)
    definition = _get(doc, f"{base}.definition", bundle_file)
    _expect(isinstance(definition, dict), bundle_file, f"{base}.definition", "an object", definition)
    offline = _get(doc, f"{base}.offline.{served}", bundle_file)
    _expect(isinstance(offline, dict), bundle_file, f"{base}.offline.{served}", "an object", offline)
    for key in OFFLINE_KEYS:
        value = _get(doc, f"{base}.offline.{served}.{key}", bundle_file)
        field = f"{base}.offline.{served}.{key}"
        if key == "per_seed":
            _expect(isinstance(value, list) and len(value) >= 1 and all(_is_num(v) for v in value),
                    bundle_file, field, "a non-empty list of numbers", value)
        elif key == "downstream_std":
            _expect(_is_num(value) and value >= 0, bundle_file, field, "a non-negative number", value)
        else:
            _expect(_is_num(value), bundle_file, field, "a number", value)


def load_bundle(directory: str | Path, role: str, uri: str | None, task: str) -> Bundle:
    """Read and check `directory/bundle.json` and `embeddings/ids.json`; BundleError names file and field."""
    directory = Path(directory)
    bundle_file = directory / BUNDLE_FILE
    if not directory.is_dir():
        raise BundleError(f"{directory}: the {role} bundle is not a directory")
    if not bundle_file.is_file():
        raise BundleError(f"{bundle_file}: missing; the {role} bundle has no {BUNDLE_FILE}")
    doc = _read_json(bundle_file)
    _expect(isinstance(doc, dict), bundle_file, "(top level)", "an object", doc)
    schema = doc.get("schema")
    if schema != BUNDLE_SCHEMA:
        raise BundleError(f"{bundle_file}: field 'schema' must be {BUNDLE_SCHEMA!r}, got {_short(schema)}")

    name = _get(doc, "name", bundle_file)
    _expect(isinstance(name, str) and bool(NAME_PATTERN.fullmatch(name)), bundle_file, "name",
            "a registry name (letters, digits, '.', '_', '-')", name)
    served = _get(doc, "served_representation", bundle_file)
    _expect(served in SERVED, bundle_file, "served_representation", f"one of {', '.join(SERVED)}", served)
    count = _get(doc, "entities.count", bundle_file)
    _expect(isinstance(count, int) and not isinstance(count, bool) and count > 0, bundle_file, "entities.count",
            "a positive integer", count)
    sha = _get(doc, "entities.ids_sha256", bundle_file)
    _expect(isinstance(sha, str) and bool(_SHA256.match(sha)), bundle_file, "entities.ids_sha256",
            "64 lower-case hex digits", sha)
    tasks = _get(doc, "tasks", bundle_file)
    _expect(isinstance(tasks, dict), bundle_file, "tasks", "an object", tasks)
    prov = _get(doc, "provenance", bundle_file)
    _expect(isinstance(prov, dict), bundle_file, "provenance", "an object", prov)
    for key in PROVENANCE_KEYS:
        _get(doc, f"provenance.{key}", bundle_file)
    for key in ("code_version", "image", "config_hash", "created_at"):
        _expect(isinstance(prov[key], str) and prov[key] != "", bundle_file, f"provenance.{key}", "a string",
                prov[key])
    _expect(bool(_TIMESTAMP.match(prov["created_at"])), bundle_file, "provenance.created_at",
            "an ISO 8601 date-time with a time zone (e.g. 2026-11-23T10:15:00Z)", prov["created_at"])
    _expect(isinstance(prov["seeds"], list) and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                                                   for s in prov["seeds"]),
            bundle_file, "provenance.seeds", "a list of non-negative integers", prov["seeds"])
    inputs = prov["inputs"]
    _expect(isinstance(inputs, list) and all(
        isinstance(i, dict) and isinstance(i.get("uri"), str) and {"uri", "generation"} <= set(i)
        and (i["generation"] is None or (isinstance(i["generation"], int) and not isinstance(i["generation"], bool)))
        for i in inputs), bundle_file, "provenance.inputs", 'a list of {"uri": string, "generation": integer|null}',
        inputs)
    # the files the handoff tells a team to serve must parse, not just exist
    FPRFeaturizer.load(directory / _rel_file(directory, bundle_file, "featurizer", _get(doc, "featurizer", bundle_file)))
    if task in tasks:
        check_task_entry(bundle_file, doc, task, served)
        model = _get(doc, f"models.{task}.{served}", bundle_file)
        LinearModel.load(directory / _rel_file(directory, bundle_file, f"models.{task}.{served}", model))

    ids_file = directory / IDS_FILE
    if not ids_file.is_file():
        raise BundleError(f"{ids_file}: missing; the {role} bundle has no entity ids")
    ids = _read_json(ids_file)
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BundleError(f"{ids_file}: must be a list of entity id strings, got {_short(ids)}")
    if len(set(ids)) != len(ids):
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise BundleError(f"{ids_file}: entity id {dup!r} appears more than once")
    if len(ids) != count:
        raise BundleError(f"{bundle_file}: field 'entities.count' is {count} but {ids_file} holds {len(ids)} ids")
    if ids_digest(ids) != sha:
        raise BundleError(f"{bundle_file}: field 'entities.ids_sha256' is {sha} but {ids_file} hashes to {ids_digest(ids)}")

    version_id = version_id_from_uri(uri)
    manifest_file = directory / MANIFEST_FILE
    if manifest_file.is_file():  # fetched from a registry: the manifest says which version it is
        try:
            manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
            m_version, m_uri = manifest["version"], manifest["uri"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BundleError(f"{manifest_file}: not a registry manifest ({type(exc).__name__}: {exc})") from None
        if version_id is not None and m_version != version_id:
            raise BundleError(f"{manifest_file}: field 'version' is {m_version!r} but the {role} URI {uri} "
                              f"names version {version_id!r}")
        version_id, uri = str(m_version), uri or str(m_uri)
    return Bundle(role, directory, uri or str(directory.resolve()), version_id, doc, tuple(ids))
