"""A local stand-in for the Google endpoints the Gemini code calls, over real HTTP.

The unmodified google-genai SDK talks to it through ``DRIFTLOOP_GEMINI_BASE_URL`` (the
production code path; only the host differs), so the tests see the exact REST paths and
JSON the SDK sends. It answers (shapes as google-genai 3.6.1 sends and parses them):

* ``POST /{v1|v1beta|v1beta1}/…/{models|endpoints}/{id}:generateContent``: the Gemini API
  (``v1/models/{m}``) and Vertex AI (``v1beta1/projects/{p}/locations/{l}/publishers/
  google/models/{m}`` and tuned ``…/endpoints/{e}``). The answer is computed by a rule
  (``tuned_rule`` for tuned endpoints, when set) from the last user turn: a JSON object of
  features (one row) or ``{"rows": [...]}`` (a batch), answered as ``{"prediction": …}``
  or an array of them, with usageMetadata.
* ``POST /v1beta1/projects/{p}/locations/{l}/tuningJobs``, ``GET …/tuningJobs/{id}`` and
  ``POST …/tuningJobs/{id}:cancel``: a job that is RUNNING for ``tuning.polls`` gets, then
  ends as ``tuning.outcome`` (SUCCEEDED with a tuned model and endpoint, or FAILED /
  CANCELLED / EXPIRED with ``tuning.error``).
* ``POST /token``: the OAuth token endpoint of :meth:`GeminiStandIn.service_account_file`
  (Application Default Credentials for Vertex, signed JWT and all).
* ``POST /upload/storage/v1/b/{bucket}/o?uploadType=media&name=…``: the Cloud Storage
  JSON API simple upload; the bytes are kept in ``objects`` by ``gs://`` uri.

Calls need the stand-in's API key or its access token (401 otherwise). Faults queued with
:meth:`fail_next`, :meth:`delay_next` and :meth:`malform_next` apply, in order, to the next
generateContent calls. Every request is recorded (:class:`Recorded`), credentials removed.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

API_KEY = "AIza-standin-secret-key-0123456789"
ACCESS_TOKEN = "ya29.standin-secret-access-token"
PROJECT, LOCATION = "standin-project", "us-central1"
#: Every variable the SDK or google-auth read that could leak the developer's own setup.
GOOGLE_ENV = ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
              "GOOGLE_GENAI_USE_ENTERPRISE", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION",
              "GOOGLE_APPLICATION_CREDENTIALS", "GOOGLE_GENAI_API_VERSION",
              "GOOGLE_GENAI_HTTP_CLIENT", "DRIFTLOOP_GEMINI_BASE_URL")
_SECRET_HEADERS = frozenset({"authorization", "x-goog-api-key"})
_STATUS_NAMES = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED",
                 404: "NOT_FOUND", 429: "RESOURCE_EXHAUSTED", 500: "INTERNAL",
                 503: "UNAVAILABLE"}
_GENERATE = re.compile(r"^/v1(?:beta1?)?/(?P<model>.+):generateContent$")
_JOBS = re.compile(r"^/v1beta1/projects/(?P<p>[^/]+)/locations/(?P<l>[^/]+)/tuningJobs$")
_JOB = re.compile(r"^/v1beta1/(?P<name>projects/[^/]+/locations/[^/]+/tuningJobs/[^/:]+)"
                  r"(?P<cancel>:cancel)?$")
_UPLOAD = re.compile(r"^/upload/storage/v1/b/(?P<bucket>[^/]+)/o$")

Rule = Callable[[Mapping[str, Any]], str]


def threshold_rule(feature: str = "x", threshold: float = 0.0,
                   labels: tuple[str, str] = ("low", "high")) -> Rule:
    """``labels[1]`` when ``row[feature] > threshold``, else ``labels[0]``."""
    def rule(row: Mapping[str, Any]) -> str:
        return labels[1] if float(row[feature]) > threshold else labels[0]
    return rule


@dataclass(frozen=True)
class Recorded:
    """One request as the stand-in received it, credentials removed."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any  # parsed JSON, or the raw bytes of an upload

    @property
    def prompt(self) -> Any:
        """The last user turn of a generateContent request, parsed as JSON."""
        return json.loads(self.body["contents"][-1]["parts"][0]["text"])


@dataclass
class Fault:
    """What the next generateContent call gets instead of (or before) its answer."""

    status: int | None = None      # answer with this HTTP error
    delay_s: float = 0.0            # wait this long first
    text: str | None = None         # answer with this text instead of the rule's


@dataclass
class TuningScript:
    """How tuning jobs behave: RUNNING for ``polls`` gets, then ``outcome``."""

    polls: int = 2
    outcome: str = "SUCCEEDED"
    error: str = "Dataset validation failed: line 3 has no model turn."


@dataclass
class GeminiStandIn:
    """The stand-in server; use it as a context manager (it binds 127.0.0.1, port 0)."""

    rule: Rule = field(default_factory=threshold_rule)
    #: How tuned endpoints answer (None: like the base models): what tuning "learned".
    tuned_rule: Rule | None = None
    tuning: TuningScript = field(default_factory=TuningScript)
    requests: list[Recorded] = field(default_factory=list)
    jobs: dict[str, dict[str, Any]] = field(default_factory=dict)
    objects: dict[str, bytes] = field(default_factory=dict)
    faults: deque[Fault] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _closing: threading.Event = field(default_factory=threading.Event)
    _server: ThreadingHTTPServer | None = None

    def __enter__(self) -> Self:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.standin = self  # type: ignore[attr-defined]
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02},
                         name="gemini-standin", daemon=True).start()
        self._server = server
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._server is not None
        self._closing.set()  # wakes delayed answers
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}"

    # ------------------------------------------------------------------ test controls
    def fail_next(self, status: int, times: int = 1) -> None:
        self.faults.extend(Fault(status=status) for _ in range(times))

    def delay_next(self, seconds: float, times: int = 1) -> None:
        self.faults.extend(Fault(delay_s=seconds) for _ in range(times))

    def malform_next(self, text: str, times: int = 1) -> None:
        self.faults.extend(Fault(text=text) for _ in range(times))

    def generate_calls(self) -> list[Recorded]:
        with self._lock:
            return [r for r in self.requests if r.path.endswith(":generateContent")]

    def paths(self) -> list[str]:
        with self._lock:
            return [f"{r.method} {r.path}" for r in self.requests]

    def service_account_file(self, directory: Path) -> Path:
        """A service-account key file whose token endpoint is this stand-in: real ADC."""
        info = {"type": "service_account", "project_id": PROJECT, "private_key_id": "standin",
                "private_key": _private_key_pem(), "client_id": "1",
                "client_email": f"driftloop@{PROJECT}.iam.gserviceaccount.com",
                "token_uri": f"{self.base_url}/token"}
        path = directory / "service-account.json"
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    # ------------------------------------------------------------------ answers
    def handle(self, method: str, target: str, headers: Mapping[str, str],
               body: bytes) -> tuple[int, Any]:
        """The status and JSON body answering one request (after any delay)."""
        url = urlsplit(target)
        headers = {k.lower(): v for k, v in headers.items()}
        parsed: Any = body
        if body and headers.get("content-type", "").split(";")[0] == "application/json":
            parsed = json.loads(body)
        with self._lock:
            self.requests.append(Recorded(
                method, url.path, parse_qs(url.query),
                {k: v for k, v in headers.items() if k not in _SECRET_HEADERS}, parsed))
        if url.path == "/token":
            return 200, {"access_token": ACCESS_TOKEN, "expires_in": 3600,
                         "token_type": "Bearer"}
        if not _authorised(headers):
            return _error(401, "API key or access token not valid.")
        return self._route(method, url.path, parse_qs(url.query), parsed)

    def _route(self, method: str, path: str, query: dict[str, list[str]],
               body: Any) -> tuple[int, Any]:
        if method == "POST" and (match := _GENERATE.match(path)):
            tuned = "/endpoints/" in match["model"] and self.tuned_rule is not None
            return self._generate(body, self.tuned_rule if tuned else self.rule)
        if method == "POST" and (match := _JOBS.match(path)):
            if match["p"] != PROJECT:
                return _error(403, f"Permission denied on project {match['p']}.")
            return self._create_job(match["p"], match["l"], body)
        if (match := _JOB.match(path)) and match["name"] in self.jobs:
            if match["cancel"] and method == "POST":
                return self._cancel_job(match["name"])
            if method == "GET":
                return self._poll_job(match["name"])
        if method == "POST" and (match := _UPLOAD.match(path)):
            if query.get("uploadType") != ["media"] or "name" not in query:
                return _error(400, "uploadType=media and name are required")
            self.objects[f"gs://{match['bucket']}/{query['name'][0]}"] = body
            return 200, {"bucket": match["bucket"], "name": query["name"][0], "size": len(body)}
        return _error(404, f"no route for {method} {path}")

    def _generate(self, body: Mapping[str, Any], rule: Rule) -> tuple[int, Any]:
        fault = self.faults.popleft() if self.faults else Fault()
        if fault.delay_s:
            self._closing.wait(fault.delay_s)
        if fault.status is not None:
            return _error(fault.status, "injected fault")
        prompt = json.loads(body["contents"][-1]["parts"][0]["text"])
        if isinstance(prompt, dict) and "rows" in prompt:
            answer: Any = [{"prediction": rule(row)} for row in prompt["rows"]]
        else:
            answer = {"prediction": rule(prompt)}
        text = json.dumps(answer) if fault.text is None else fault.text
        prompt_tokens = len(json.dumps(body)) // 4
        return 200, {
            "candidates": [{"content": {"role": "model", "parts": [{"text": text}]},
                            "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": prompt_tokens,
                              "candidatesTokenCount": len(text) // 4,
                              "totalTokenCount": prompt_tokens + len(text) // 4},
            "modelVersion": "standin-001",
        }

    def _create_job(self, project: str, location: str, body: Any) -> tuple[int, Any]:
        name = f"projects/{project}/locations/{location}/tuningJobs/{1000 + len(self.jobs)}"
        job = {"name": name, "state": "JOB_STATE_PENDING", "baseModel": body.get("baseModel"),
               "supervisedTuningSpec": body.get("supervisedTuningSpec"),
               "tunedModelDisplayName": body.get("tunedModelDisplayName"),
               "createTime": "2026-11-27T00:00:00Z", "_polls": 0}
        self.jobs[name] = job
        return 200, _public(job)

    def _poll_job(self, name: str) -> tuple[int, Any]:
        job = self.jobs[name]
        job["_polls"] += 1
        if job["state"] in ("JOB_STATE_PENDING", "JOB_STATE_RUNNING"):
            job["state"] = "JOB_STATE_RUNNING"
            if job["_polls"] > self.tuning.polls:
                self._finish(job, self.tuning.outcome)
        return 200, _public(job)

    def _cancel_job(self, name: str) -> tuple[int, Any]:
        self._finish(self.jobs[name], "CANCELLED", "Cancelled by the caller.")
        return 200, {}

    def _finish(self, job: dict[str, Any], outcome: str, message: str | None = None) -> None:
        job["state"] = f"JOB_STATE_{outcome}"
        job["endTime"] = "2026-11-27T01:00:00Z"
        if outcome == "SUCCEEDED":
            number = job["name"].rsplit("/", 1)[1]
            place = job["name"].split("/tuningJobs/")[0]
            job["tunedModel"] = {"model": f"{place}/models/{number}",
                                 "endpoint": f"{place}/endpoints/{number}"}
        else:
            job["error"] = {"code": 9, "message": message or self.tuning.error}


def _authorised(headers: Mapping[str, str]) -> bool:
    """``headers`` with lower-case names."""
    return (headers.get("x-goog-api-key") == API_KEY
            or headers.get("authorization") == f"Bearer {ACCESS_TOKEN}")


def _public(job: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in job.items() if not k.startswith("_") and v is not None}


def _error(status: int, message: str) -> tuple[int, Any]:
    return status, {"error": {"code": status, "message": message,
                              "status": _STATUS_NAMES.get(status, "UNKNOWN")}}


@cache
def _private_key_pem() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # a small answer must not wait for a delayed ACK (~40 ms)

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        standin: GeminiStandIn = self.server.standin  # type: ignore[attr-defined]
        status, document = standin.handle(self.command, self.path, dict(self.headers), body)
        payload = json.dumps(document).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json; charset=UTF-8")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the test records requests itself."""


# ---------------------------------------------------------------------------- environment
def clear_google_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No Google setting of the developer's machine reaches the test (gcloud's ADC file
    included: CLOUDSDK_CONFIG points at an empty folder)."""
    for name in GOOGLE_ENV:
        monkeypatch.delenv(name, raising=False)
    empty = tmp_path / "gcloud-config"
    empty.mkdir(exist_ok=True)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(empty))


def use_gemini_api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                   standin: GeminiStandIn) -> None:
    """The Gemini API with an API key, served by ``standin``."""
    clear_google_env(monkeypatch, tmp_path)
    monkeypatch.setenv("GOOGLE_API_KEY", API_KEY)
    monkeypatch.setenv("DRIFTLOOP_GEMINI_BASE_URL", standin.base_url)


def use_vertex(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
               standin: GeminiStandIn) -> None:
    """Vertex AI with Application Default Credentials (a service-account key), served by
    ``standin``."""
    clear_google_env(monkeypatch, tmp_path)
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", LOCATION)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS",
                       str(standin.service_account_file(tmp_path)))
    monkeypatch.setenv("DRIFTLOOP_GEMINI_BASE_URL", standin.base_url)
