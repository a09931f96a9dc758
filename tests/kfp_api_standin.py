"""A local stand-in for the Kubeflow Pipelines v2beta1 REST API, strict about what it accepts.

It serves, on 127.0.0.1 and an ephemeral port, the endpoints that `kfp.Client` uses to upload
pipelines and versions, list and get them, create and find experiments, and create runs and
recurring runs, keeping its state in memory. Every request is checked against the official
Swagger 2.0 spec (`kfp_api_single_file.swagger.json`; $REPRFLOW_KFP_API_SPEC overrides its path):

- the route and method must be an operation of the spec (one the stand-in does not implement: 501);
- query parameters must be ones the operation declares, with the declared type; a `filter` must be
  a v2beta1Filter (proto3 JSON, so lowerCamelCase names and numeric enums are accepted there);
- a JSON body must match the operation's body schema with every object closed
  (`additionalProperties: false`), so a misspelled field is rejected; int64 fields, `string` in the
  spec (proto3 JSON), also accept JSON numbers, which kfp.Client sends; `format`s are not enforced;
- an uploaded file must be a KFP IR YAML: its first document parses as a PipelineSpec proto with a
  `pipelineInfo.name`, later documents as a PlatformSpec;
- run parameters must be inputs the pipeline version declares, of the declared type, and every
  input without a default must be given (stricter than the real server, where the run would fail).

Invalid requests get KFP's error shape (the spec's googleRpcStatus: code, message, details) with an
HTTP status for the gRPC code. Responses are checked against the spec too. Every request is
recorded in `requests`, in order, with what the stand-in answered.
"""

from __future__ import annotations

import json
import os
import re
import threading
import uuid
from copy import deepcopy
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qs, urlsplit

import jsonschema
import yaml

SPEC_ENV = "REPRFLOW_KFP_API_SPEC"
DEFAULT_SPEC = Path(__file__).resolve().parents[2] / "shared" / "kfp-api" / "kfp_api_single_file.swagger.json"

# gRPC code -> HTTP status, as grpc-gateway maps them.
INVALID_ARGUMENT, NOT_FOUND, ALREADY_EXISTS, UNIMPLEMENTED, INTERNAL, UNAUTHENTICATED = 3, 5, 6, 12, 13, 16
HTTP_STATUS = {INVALID_ARGUMENT: 400, NOT_FOUND: 404, ALREADY_EXISTS: 409, UNIMPLEMENTED: 501, INTERNAL: 500,
               UNAUTHENTICATED: 401}
# filter.proto's Operation numbers (proto3 JSON may send an enum as its number).
PREDICATE_OPERATIONS = {0: "OPERATION_UNSPECIFIED", 1: "EQUALS", 2: "NOT_EQUALS", 3: "GREATER_THAN",
                        5: "GREATER_THAN_EQUALS", 6: "LESS_THAN", 7: "LESS_THAN_EQUALS", 8: "IN", 9: "IS_SUBSTRING"}
# IR parameterType -> the JSON values a runtime parameter of that type may take.
PARAMETER_TYPES: dict[str, Callable[[Any], bool]] = {
    "STRING": lambda v: isinstance(v, str),
    "NUMBER_INTEGER": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "NUMBER_DOUBLE": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "BOOLEAN": lambda v: isinstance(v, bool),
    "LIST": lambda v: isinstance(v, list),
    "STRUCT": lambda v: isinstance(v, dict),
}


class SpecMissing(RuntimeError):
    """The Swagger spec file is not where it should be."""


def spec_path() -> Path:
    return Path(os.environ.get(SPEC_ENV) or DEFAULT_SPEC)


def load_spec(path: Path | None = None) -> dict[str, Any]:
    """The Swagger 2.0 spec; SpecMissing names the path and the variable that overrides it."""
    path = path or spec_path()
    if not path.is_file():
        raise SpecMissing(f"the KFP API spec is missing at {path} (set {SPEC_ENV} to the path of "
                          "kfp_api_single_file.swagger.json, kubeflow/pipelines backend/api/v2beta1/swagger/)")
    return json.loads(path.read_text(encoding="utf-8"))


class ApiError(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def _strict(node: Any) -> Any:
    """A copy of spec schemas with objects closed and int64 (`string`) fields also accepting numbers."""
    if isinstance(node, list):
        return [_strict(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {k: _strict(v) for k, v in node.items()}
    if "properties" in out and "additionalProperties" not in out:
        out["additionalProperties"] = False
    if out.get("type") == "string" and out.get("format") in ("int64", "uint64"):
        out["type"] = ["string", "integer"]
    return out


def _snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", lambda m: "_" + m.group(1).lower(), name)


def _protojson_filter(value: Any) -> Any:
    """A filter as proto3 JSON parsers read it: lowerCamelCase names and numeric enums made canonical."""
    if isinstance(value, list):
        return [_protojson_filter(x) for x in value]
    if not isinstance(value, dict):
        return value
    out = {_snake(k): _protojson_filter(v) for k, v in value.items()}
    if isinstance(out.get("operation"), int) and not isinstance(out["operation"], bool):
        out["operation"] = PREDICATE_OPERATIONS.get(out["operation"], out["operation"])
    return out


class SpecValidator:
    """Routes and JSON-schema checks from the Swagger spec."""

    def __init__(self, spec: dict[str, Any]) -> None:
        self.definitions = _strict(spec["definitions"])
        self.operations: list[tuple[str, re.Pattern[str], str, dict[str, Any]]] = []
        for template, ops in spec["paths"].items():
            names: list[str] = []

            def group(m: re.Match[str]) -> str:
                names.append(m.group(1).replace("\\", ""))
                return f"(?P<p{len(names) - 1}>[^/]+?)"

            regex = re.compile("^" + re.sub(r"\\\{([^}]+)\\\}", group, re.escape(template)) + "$")
            for method, op in ops.items():
                self.operations.append((method.upper(), regex, template, op | {"_path_names": list(names)}))
        # Literal routes before templated ones (/pipelines/upload before /pipelines/{pipeline_id}).
        self.operations.sort(key=lambda o: o[2].count("{"))
        self._validators: dict[str, jsonschema.Draft4Validator] = {}

    def route(self, method: str, path: str) -> tuple[str, dict[str, Any], dict[str, str]] | None:
        """(template, operation, path parameters) of the spec operation for this request, or None."""
        for op_method, regex, template, op in self.operations:
            m = regex.match(path)
            if m and op_method == method:
                params = {name: m.group(f"p{i}") for i, name in enumerate(op["_path_names"])}
                return template, op, params
        return None

    def check(self, schema: dict[str, Any], instance: Any, where: str) -> None:
        """Raise ApiError(INVALID_ARGUMENT) naming the first violation of `schema` (refs into the spec)."""
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            self._validators[key] = jsonschema.Draft4Validator({**_strict(schema), "definitions": self.definitions})
        errors = sorted(self._validators[key].iter_errors(instance), key=lambda e: list(e.absolute_path))
        if errors:
            at = "/".join(str(p) for p in errors[0].absolute_path) or "top level"
            raise ApiError(INVALID_ARGUMENT, f"{where} does not match the API spec at {at}: {errors[0].message}")

    def check_definition(self, name: str, instance: Any, where: str) -> None:
        self.check({"$ref": f"#/definitions/{name}"}, instance, where)

    def check_query(self, op: dict[str, Any], query: dict[str, list[str]]) -> None:
        declared = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "query"}
        for name, values in query.items():
            if name not in declared:
                raise ApiError(INVALID_ARGUMENT, f"query parameter {name!r} is not one of {op['operationId']}'s "
                                                 f"({', '.join(declared) or 'none'})")
            kind = declared[name].get("type")
            if kind != "array" and len(values) > 1:
                raise ApiError(INVALID_ARGUMENT, f"query parameter {name!r} is given {len(values)} times")
            for value in values:
                if kind == "integer" and not re.fullmatch(r"-?\d+", value):
                    raise ApiError(INVALID_ARGUMENT, f"query parameter {name!r}={value!r} is not an integer")
                if kind == "boolean" and value not in ("true", "false"):
                    raise ApiError(INVALID_ARGUMENT, f"query parameter {name!r}={value!r} is not true or false")
            if name == "filter":
                try:
                    parsed = json.loads(values[0])
                except ValueError:
                    raise ApiError(INVALID_ARGUMENT, f"query parameter 'filter' is not JSON: {values[0]!r}") from None
                self.check_definition("v2beta1Filter", _protojson_filter(parsed), "query parameter 'filter'")
        for name, p in declared.items():
            if p.get("required") and name not in query:
                raise ApiError(INVALID_ARGUMENT, f"query parameter {name!r} is required")

    def body_schema(self, op: dict[str, Any]) -> dict[str, Any] | None:
        return next((p["schema"] for p in op.get("parameters", []) if p["in"] == "body"), None)

    def response_schema(self, op: dict[str, Any]) -> dict[str, Any] | None:
        return op.get("responses", {}).get("200", {}).get("schema")


@dataclass
class Recorded:
    """One request as the stand-in saw it, and its answer."""

    method: str
    path: str
    operation: str | None
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None
    form: dict[str, dict[str, Any]] = field(default_factory=dict)
    status: int = 0
    response: Any = None


def _ir_documents(data: bytes) -> list[dict[str, Any]]:
    """The documents of an uploaded KFP IR YAML, each checked against the pipeline / platform spec proto."""
    from google.protobuf import json_format
    from kfp.pipeline_spec import pipeline_spec_pb2

    try:
        docs = [d for d in yaml.safe_load_all(data) if d is not None]
    except yaml.YAMLError as exc:
        raise ApiError(INVALID_ARGUMENT, f"uploadfile is not YAML: {' '.join(str(exc).split())}") from None
    if not docs or not all(isinstance(d, dict) for d in docs):
        raise ApiError(INVALID_ARGUMENT, "uploadfile has no pipeline spec (expected YAML mappings)")
    name = docs[0].get("pipelineInfo", {}).get("name")
    if not isinstance(name, str) or not name:
        raise ApiError(INVALID_ARGUMENT, "uploadfile is not a KFP IR YAML: no pipelineInfo.name")
    try:
        json_format.ParseDict(docs[0], pipeline_spec_pb2.PipelineSpec())
        platform: dict[str, Any] = {}
        for doc in docs[1:]:
            platform.update(doc)
        json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    except json_format.ParseError as exc:
        raise ApiError(INVALID_ARGUMENT, f"uploadfile is not a KFP IR YAML: {exc}") from None
    return docs


class KfpApiStandin:
    """The stand-in server. Use as a context manager; `url` is its base URL, `requests` what it received.

    `token`: when set, every request must carry `Authorization: Bearer <token>` (else 401).
    """

    def __init__(self, validator: SpecValidator, token: str | None = None, multi_user: bool = False) -> None:
        self.validator, self.token, self.multi_user = validator, token, multi_user
        self.requests: list[Recorded] = []
        self.pipelines: dict[str, dict[str, Any]] = {}
        self.versions: dict[str, list[dict[str, Any]]] = {}  # pipeline id -> versions, oldest first
        self.specs: dict[str, list[dict[str, Any]]] = {}  # version id -> IR documents
        self.experiments: dict[str, dict[str, Any]] = {}
        self.runs: dict[str, dict[str, Any]] = {}
        self.recurring_runs: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._clock = datetime(2026, 1, 1, tzinfo=timezone.utc)
        self._server: ThreadingHTTPServer | None = None
        self.handlers: dict[str, Callable[..., Any]] = {
            "HealthzService_GetHealthz": self._healthz,
            "PipelineService_ListPipelines": self._list_pipelines,
            "PipelineService_GetPipeline": self._get_pipeline,
            "PipelineService_GetPipelineByName": self._get_pipeline_by_name,
            "PipelineService_CreatePipeline": self._create_pipeline,
            "UploadPipeline": self._upload_pipeline,
            "UploadPipelineVersion": self._upload_pipeline_version,
            "PipelineService_ListPipelineVersions": self._list_versions,
            "PipelineService_GetPipelineVersion": self._get_version,
            "ExperimentService_CreateExperiment": self._create_experiment,
            "ExperimentService_ListExperiments": self._list_experiments,
            "ExperimentService_GetExperiment": self._get_experiment,
            "RunService_CreateRun": self._create_run,
            "RunService_ListRuns": self._list_runs,
            "RecurringRunService_CreateRecurringRun": self._create_recurring_run,
        }

    # --- lifecycle ---

    def __enter__(self) -> "KfpApiStandin":
        standin = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, payload = standin.handle(self.command, self.path, dict(self.headers), body)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = _serve

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._server is not None
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the stand-in with `with KfpApiStandin(...) as server:`"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def calls(self, operation: str) -> list[Recorded]:
        """The recorded requests for one spec operationId (e.g. "RunService_CreateRun"), in order."""
        return [r for r in self.requests if r.operation == operation]

    # --- request handling ---

    def handle(self, method: str, raw_path: str, headers: dict[str, str], body: bytes) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query, keep_blank_values=True)
        record = Recorded(method, parts.path, None, query, {k.lower(): v for k, v in headers.items()})
        with self._lock:
            self.requests.append(record)
            try:
                status, payload = 200, self._handle(record, body)
            except ApiError as exc:
                status, payload = HTTP_STATUS[exc.code], {"code": exc.code, "message": exc.message, "details": []}
                self.validator.check_definition("googleRpcStatus", payload, "the stand-in's error")
            record.status, record.response = status, payload
        return status, payload

    def _handle(self, record: Recorded, body: bytes) -> Any:
        routed = self.validator.route(record.method, record.path)
        if routed is None:
            raise ApiError(NOT_FOUND, f"{record.method} {record.path} is not an operation of the KFP v2beta1 API")
        _, op, path_params = routed
        record.operation = op["operationId"]
        if self.token is not None and record.headers.get("authorization") != f"Bearer {self.token}":
            raise ApiError(UNAUTHENTICATED, "request is not authenticated: missing or wrong bearer token")
        self.validator.check_query(op, record.query)
        content_type = record.headers.get("content-type", "")
        form_params = {p["name"]: p for p in op.get("parameters", []) if p["in"] == "formData"}
        body_schema = self.validator.body_schema(op)
        if form_params:
            record.form = self._multipart(content_type, body, form_params)
        elif body_schema is not None:
            if not content_type.startswith("application/json"):
                raise ApiError(INVALID_ARGUMENT, f"{op['operationId']} takes application/json, got {content_type!r}")
            try:
                record.body = json.loads(body or b"null")
            except ValueError:
                raise ApiError(INVALID_ARGUMENT, "the request body is not JSON") from None
            self.validator.check(body_schema, record.body, f"the {op['operationId']} body")
        elif body:
            raise ApiError(INVALID_ARGUMENT, f"{op['operationId']} takes no request body")
        handler = self.handlers.get(op["operationId"])
        if handler is None:
            raise ApiError(UNIMPLEMENTED, f"the stand-in does not implement {op['operationId']}")
        query = {k: v[0] for k, v in record.query.items()}
        response = handler(record, query, **path_params)
        schema = self.validator.response_schema(op)
        if schema is not None:
            self.validator.check(schema, response, f"the stand-in's {op['operationId']} response")
        return response

    def _multipart(self, content_type: str, body: bytes, declared: dict[str, Any]) -> dict[str, dict[str, Any]]:
        if not content_type.startswith("multipart/form-data"):
            raise ApiError(INVALID_ARGUMENT, f"an upload takes multipart/form-data, got {content_type!r}")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode("latin-1") + body)
        form: dict[str, dict[str, Any]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if name not in declared:
                raise ApiError(INVALID_ARGUMENT, f"form field {name!r} is not one of {', '.join(declared)}")
            form[name] = {"filename": part.get_filename(), "data": part.get_payload(decode=True) or b""}
        for name, p in declared.items():
            if p.get("required") and name not in form:
                raise ApiError(INVALID_ARGUMENT, f"form field {name!r} is required")
        return form

    # --- helpers ---

    def _now(self) -> str:
        self._clock += timedelta(seconds=1)
        return self._clock.strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _filtered(items: list[dict[str, Any]], query: dict[str, str]) -> list[dict[str, Any]]:
        """EQUALS predicates on string fields, sort_by on a field (asc/desc), as the list calls take them."""
        if query.get("filter"):
            for p in _protojson_filter(json.loads(query["filter"])).get("predicates", []):
                if p.get("operation") != "EQUALS" or "string_value" not in p:
                    raise ApiError(UNIMPLEMENTED, f"the stand-in filters only with EQUALS on strings, got {p}")
                items = [i for i in items if i.get(p["key"]) == p["string_value"]]
        sort = query.get("sort_by", "").split()
        if sort:
            if len(sort) > 2 or (len(sort) == 2 and sort[1] not in ("asc", "desc")) or \
                    sort[0] not in ("created_at", "name", "display_name"):
                raise ApiError(INVALID_ARGUMENT, f"invalid sort_by {query['sort_by']!r}")
            items = sorted(items, key=lambda i: i.get(sort[0], ""), reverse=sort[-1] == "desc")
        return items

    @staticmethod
    def _page(items: list[dict[str, Any]], query: dict[str, str], key: str) -> dict[str, Any]:
        start = int(query.get("page_token") or 0)
        size = int(query.get("page_size") or 20) or 20
        page: dict[str, Any] = {key: items[start:start + size], "total_size": len(items)}
        if start + size < len(items):
            page["next_page_token"] = str(start + size)
        return page

    def _pipeline(self, pipeline_id: str) -> dict[str, Any]:
        if pipeline_id not in self.pipelines:
            raise ApiError(NOT_FOUND, f"pipeline {pipeline_id!r} not found")
        return self.pipelines[pipeline_id]

    def _add_version(self, pipeline_id: str, name: str, description: str, docs: list[dict[str, Any]]) -> dict:
        if any(v["name"] == name for v in self.versions[pipeline_id]):
            raise ApiError(ALREADY_EXISTS, f"pipeline {pipeline_id!r} already has a version named {name!r}")
        platform: dict[str, Any] = {}
        for doc in docs[1:]:
            platform.update(doc)
        version = {"pipeline_id": pipeline_id, "pipeline_version_id": str(uuid.uuid4()), "name": name,
                   "display_name": name, "description": description, "created_at": self._now(),
                   "pipeline_spec": {"pipeline_spec": docs[0], "platform_spec": platform} if platform else docs[0]}
        self.versions[pipeline_id].append(version)
        self.specs[version["pipeline_version_id"]] = docs
        return version

    def _reference(self, body: dict[str, Any], what: str) -> list[dict[str, Any]]:
        """Check a run's pipeline reference, experiment and parameters; the referenced IR documents."""
        if not body.get("display_name"):
            raise ApiError(INVALID_ARGUMENT, f"{what}.display_name is required")
        ref = body.get("pipeline_version_reference")
        if (ref is None) == (body.get("pipeline_spec") is None):
            raise ApiError(INVALID_ARGUMENT, f"{what} needs exactly one of pipeline_version_reference, pipeline_spec")
        if body.get("experiment_id") and body["experiment_id"] not in self.experiments:
            raise ApiError(NOT_FOUND, f"experiment {body['experiment_id']!r} not found")
        if ref is None:
            return [body["pipeline_spec"]]
        versions = self.versions.get(ref.get("pipeline_id", ""))
        if versions is None:
            raise ApiError(NOT_FOUND, f"pipeline {ref.get('pipeline_id')!r} not found")
        matches = [v for v in versions if v["pipeline_version_id"] == ref.get("pipeline_version_id")]
        if ref.get("pipeline_version_id") and not matches:
            raise ApiError(NOT_FOUND, f"pipeline version {ref['pipeline_version_id']!r} not found")
        docs = self.specs[(matches or versions[-1:])[0]["pipeline_version_id"]]
        declared = docs[0].get("root", {}).get("inputDefinitions", {}).get("parameters", {})
        given = (body.get("runtime_config") or {}).get("parameters") or {}
        for name, value in given.items():
            if name not in declared:
                raise ApiError(INVALID_ARGUMENT, f"{what} parameter {name!r} is not an input of the pipeline "
                                                 f"({', '.join(sorted(declared))})")
            kind = declared[name].get("parameterType", "")
            if not PARAMETER_TYPES.get(kind, lambda v: True)(value):
                raise ApiError(INVALID_ARGUMENT, f"{what} parameter {name!r} must be {kind}, got {value!r}")
        missing = [n for n, d in declared.items()
                   if n not in given and "defaultValue" not in d and not d.get("isOptional")]
        if missing:
            raise ApiError(INVALID_ARGUMENT, f"{what} lacks the pipeline inputs {', '.join(sorted(missing))}")
        return docs

    # --- operations ---

    def _healthz(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        return {"multi_user": self.multi_user}

    def _list_pipelines(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        namespace = query.get("namespace", "")
        items = [p for p in self.pipelines.values() if p.get("namespace", "") == namespace]
        return self._page(self._filtered(items, query), query, "pipelines")

    def _get_pipeline(self, record: Recorded, query: dict[str, str], pipeline_id: str) -> dict[str, Any]:
        return self._pipeline(pipeline_id)

    def _get_pipeline_by_name(self, record: Recorded, query: dict[str, str], name: str) -> dict[str, Any]:
        for p in self.pipelines.values():
            if p["name"] == name and p.get("namespace", "") == query.get("namespace", ""):
                return p
        raise ApiError(NOT_FOUND, f"pipeline named {name!r} not found")

    def _new_pipeline(self, name: str, display_name: str, description: str, namespace: str) -> dict[str, Any]:
        if any(p["name"] == name and p.get("namespace", "") == namespace for p in self.pipelines.values()):
            raise ApiError(ALREADY_EXISTS, f"a pipeline named {name!r} already exists")
        pipeline = {"pipeline_id": str(uuid.uuid4()), "name": name, "display_name": display_name or name,
                    "description": description, "created_at": self._now()}
        if namespace:
            pipeline["namespace"] = namespace
        self.pipelines[pipeline["pipeline_id"]] = pipeline
        self.versions[pipeline["pipeline_id"]] = []
        return pipeline

    def _create_pipeline(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        body = record.body
        name = body.get("name") or body.get("display_name")
        if not name:
            raise ApiError(INVALID_ARGUMENT, "a pipeline needs a name or a display_name")
        return self._new_pipeline(name, body.get("display_name", ""), body.get("description", ""),
                                  body.get("namespace", ""))

    def _upload_pipeline(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        docs = _ir_documents(record.form["uploadfile"]["data"])
        name = query.get("name") or docs[0]["pipelineInfo"]["name"]
        pipeline = self._new_pipeline(name, query.get("display_name", ""), query.get("description", ""),
                                      query.get("namespace", ""))
        # Like KFP: the first version is named after the pipeline and carries its description.
        self._add_version(pipeline["pipeline_id"], name, pipeline["description"], docs)
        return pipeline

    def _upload_pipeline_version(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        docs = _ir_documents(record.form["uploadfile"]["data"])
        if not query.get("pipelineid"):
            raise ApiError(INVALID_ARGUMENT, "pipelineid is required to upload a pipeline version")
        self._pipeline(query["pipelineid"])
        name = query.get("name") or record.form["uploadfile"]["filename"]
        return self._add_version(query["pipelineid"], name, query.get("description", ""), docs)

    def _list_versions(self, record: Recorded, query: dict[str, str], pipeline_id: str) -> dict[str, Any]:
        self._pipeline(pipeline_id)
        return self._page(self._filtered(self.versions[pipeline_id], query), query, "pipeline_versions")

    def _get_version(self, record: Recorded, query: dict[str, str], pipeline_id: str,
                     pipeline_version_id: str) -> dict[str, Any]:
        for v in self.versions.get(self._pipeline(pipeline_id)["pipeline_id"], []):
            if v["pipeline_version_id"] == pipeline_version_id:
                return v
        raise ApiError(NOT_FOUND, f"pipeline version {pipeline_version_id!r} not found")

    def _create_experiment(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        body = record.body
        if not body.get("display_name"):
            raise ApiError(INVALID_ARGUMENT, "experiment.display_name is required")
        namespace = body.get("namespace", "")
        if any(e["display_name"] == body["display_name"] and e.get("namespace", "") == namespace
               for e in self.experiments.values()):
            raise ApiError(ALREADY_EXISTS, f"an experiment named {body['display_name']!r} already exists")
        experiment = deepcopy(body) | {"experiment_id": str(uuid.uuid4()), "created_at": self._now(),
                                       "storage_state": "AVAILABLE"}
        self.experiments[experiment["experiment_id"]] = experiment
        return experiment

    def _list_experiments(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        namespace = query.get("namespace", "")
        items = [e for e in self.experiments.values() if e.get("namespace", "") == namespace]
        return self._page(self._filtered(items, query), query, "experiments")

    def _get_experiment(self, record: Recorded, query: dict[str, str], experiment_id: str) -> dict[str, Any]:
        if experiment_id not in self.experiments:
            raise ApiError(NOT_FOUND, f"experiment {experiment_id!r} not found")
        return self.experiments[experiment_id]

    def _create_run(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        body = record.body
        self._reference(body, "run")
        run = deepcopy(body) | {"run_id": str(uuid.uuid4()), "created_at": self._now(), "state": "PENDING",
                                "storage_state": "AVAILABLE"}
        self.runs[run["run_id"]] = run
        return run

    def _list_runs(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        items = [r for r in self.runs.values()
                 if not query.get("experiment_id") or r.get("experiment_id") == query["experiment_id"]]
        return self._page(self._filtered(items, query), query, "runs")

    def _create_recurring_run(self, record: Recorded, query: dict[str, str]) -> dict[str, Any]:
        body = record.body
        self._reference(body, "recurring_run")
        trigger = body.get("trigger") or {}
        if len(trigger) != 1:
            raise ApiError(INVALID_ARGUMENT, "recurring_run.trigger needs exactly one of cron_schedule, "
                                             "periodic_schedule")
        cron = trigger.get("cron_schedule", {}).get("cron")
        if "cron_schedule" in trigger and not (cron and (len(cron.split()) == 6 or cron.startswith("@"))):
            raise ApiError(INVALID_ARGUMENT, f"recurring_run cron {cron!r} must have 6 fields (with seconds)")
        interval = trigger.get("periodic_schedule", {}).get("interval_second")
        if "periodic_schedule" in trigger and not (str(interval).isdigit() and int(interval) > 0):
            raise ApiError(INVALID_ARGUMENT, f"recurring_run interval_second {interval!r} must be positive")
        if not str(body.get("max_concurrency", "")).isdigit() or not 1 <= int(body["max_concurrency"]) <= 10:
            raise ApiError(INVALID_ARGUMENT, f"recurring_run.max_concurrency {body.get('max_concurrency')!r} "
                                             "must be from 1 to 10")
        if body.get("mode") not in ("ENABLE", "DISABLE"):
            raise ApiError(INVALID_ARGUMENT, f"recurring_run.mode {body.get('mode')!r} must be ENABLE or DISABLE")
        job = deepcopy(body)
        job["max_concurrency"] = str(job["max_concurrency"])  # int64 in proto3 JSON
        if "periodic_schedule" in trigger:
            job["trigger"]["periodic_schedule"]["interval_second"] = str(interval)
        now = self._now()
        job |= {"recurring_run_id": str(uuid.uuid4()), "created_at": now, "updated_at": now,
                "status": "ENABLED" if body["mode"] == "ENABLE" else "DISABLED"}
        self.recurring_runs[job["recurring_run_id"]] = job
        return job
