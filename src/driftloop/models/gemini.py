"""A Gemini model as a driftloop model: a prompt configuration served through google-genai.

A :class:`GeminiAgent` is configuration only (which model or tuned endpoint, the task,
the allowed labels, the system instruction, few-shot examples, call settings), so a
version in the registry is one ``manifest.json`` (:class:`GeminiAdapter`, format
``driftloop.gemini-agent/1``) and never holds a credential. Credentials come from the
standard Google environment at call time (:func:`make_client`):

* Gemini API: ``GOOGLE_API_KEY`` (or ``GEMINI_API_KEY``).
* Vertex AI: ``GOOGLE_GENAI_USE_VERTEXAI=true``, ``GOOGLE_CLOUD_PROJECT``,
  ``GOOGLE_CLOUD_LOCATION`` and Application Default Credentials
  (``GOOGLE_APPLICATION_CREDENTIALS`` or ``gcloud auth application-default login``).
  Tuned models (:class:`~driftloop.training.gemini.GeminiTuningTrainer`) exist only here.
* ``DRIFTLOOP_GEMINI_BASE_URL`` sends every call to another host (a proxy, a stand-in).

``predict_batch`` sends ``batch_size`` rows per ``generateContent`` call, asking for a JSON
array under a response schema whose ``prediction`` is an enum of the labels (one JSON
object per call when ``batch_size`` is 1, the shape tuned models are trained on), at the
configured temperature and per-call timeout. 429, 5xx and connection errors are retried
with exponential backoff and jitter; other 4xx and timeouts are not (a timed-out call has
already spent the caller's latency budget). An answer that is not the JSON asked for, or
names a label outside ``labels``, fails the whole call with :class:`GeminiAnswerError`.

**What was verified locally, and what was not.** Everything here runs in the test suite
against ``tests/gemini_standin.py``, a real HTTP server on 127.0.0.1 that the unmodified
google-genai SDK (3.6.1) talks to through ``DRIFTLOOP_GEMINI_BASE_URL``: the REST paths
and JSON the SDK sends (``v1/models/{m}:generateContent`` on the Gemini API;
``v1beta1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent``,
``.../endpoints/{e}:generateContent``, ``POST .../tuningJobs``, ``GET .../tuningJobs/{id}``
and ``POST .../tuningJobs/{id}:cancel`` on Vertex), API-key and ADC auth (a service-account
key whose token endpoint is the stand-in), batching, retries, timeouts, malformed answers,
the tuning dataset's Cloud Storage upload (``upload/storage/v1/b/{bucket}/o``) and a
tuning job's life cycle. The stand-in answers by a fixed rule, so nothing here measures how
well a real Gemini model classifies, whether Vertex accepts the tuning JSONL and
hyperparameters for a given base model, real quotas and latencies, or IAM (the tuning
service agent reading the bucket, the caller's ``aiplatform`` and ``storage`` roles):
those need a real Google Cloud project with Vertex AI and a Cloud Storage bucket.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from prometheus_client import CollectorRegistry, Counter, Histogram

from driftloop.errors import ModelError
from driftloop.models.base import UntrustedArtifactError, read_manifest, write_manifest

if TYPE_CHECKING:
    from google.auth.credentials import Credentials
    from google.genai import Client, types

FORMAT: Final = "driftloop.gemini-agent/1"
MANIFEST: Final = "manifest.json"
TASKS: Final = ("classify", "extract")
BASE_URL_ENV: Final = "DRIFTLOOP_GEMINI_BASE_URL"
API_KEY_ENVS: Final = ("GOOGLE_API_KEY", "GEMINI_API_KEY")  # the SDK's order of preference
VERTEX_ENV: Final = "GOOGLE_GENAI_USE_VERTEXAI"
VERTEX_PLACE_ENVS: Final = ("GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")
CLOUD_PLATFORM_SCOPE: Final = "https://www.googleapis.com/auth/cloud-platform"
#: Latency buckets (seconds) of one generateContent call: LLM calls take 0.2 s to a minute.
LATENCY_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
OUTCOMES: Final = ("ok", "retried", "failed", "invalid")
TOKEN_KINDS: Final = ("prompt", "candidates")
_ANSWER_EXCERPT = 200

log = logging.getLogger(__name__)

Label = str | int | bool


class GeminiError(ModelError):
    """A Gemini call produced no usable predictions."""


class GeminiCredentialsError(GeminiError):
    """The environment lacks the credentials; the message names the variables to set."""


class GeminiRequestError(GeminiError):
    """A call failed (after any retries); ``status`` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class GeminiAnswerError(GeminiError):
    """The model answered, but not with the JSON asked for or with a label not allowed."""


# ---------------------------------------------------------------------------- client
def make_client(http_options: types.HttpOptions | None = None) -> Client:
    """A google-genai client configured only from the standard Google environment (see the
    module docstring), pointed at ``DRIFTLOOP_GEMINI_BASE_URL`` when that is set.

    Vertex AI credentials are resolved here, not at the first call, so a missing setup
    fails when the server or trainer starts, naming what to set.
    """
    from google import genai  # noqa: PLC0415 - google-genai takes ~0.6 s to import

    options = _with_base_url(http_options)
    if os.environ.get(VERTEX_ENV, "").strip().lower() in ("true", "1"):
        project, location = _vertex_place()
        return genai.Client(vertexai=True, project=project, location=location,
                            credentials=google_credentials(CLOUD_PLATFORM_SCOPE),
                            http_options=options)
    return genai.Client(vertexai=False, api_key=_api_key(), http_options=options)


def google_credentials(scope: str) -> Credentials:
    """Application Default Credentials for ``scope``, or :class:`GeminiCredentialsError`."""
    import google.auth  # noqa: PLC0415
    from google.auth.exceptions import DefaultCredentialsError  # noqa: PLC0415

    try:
        credentials, _ = google.auth.default(scopes=[scope])
    except DefaultCredentialsError as exc:
        raise GeminiCredentialsError(
            "Vertex AI and Cloud Storage need Application Default Credentials: set "
            "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or run `gcloud auth "
            f"application-default login` ({exc})") from None
    return credentials


def _api_key() -> str:
    for name in API_KEY_ENVS:
        key = os.environ.get(name, "").strip()
        if key:
            return key
    raise GeminiCredentialsError(
        "no Gemini credentials: set GOOGLE_API_KEY (or GEMINI_API_KEY) for the Gemini API, or "
        f"{VERTEX_ENV}=true with {' and '.join(VERTEX_PLACE_ENVS)} (and Application Default "
        "Credentials) for Vertex AI")


def _vertex_place() -> tuple[str, str]:
    project, location = (os.environ.get(name, "").strip() for name in VERTEX_PLACE_ENVS)
    missing = [name for name, value in zip(VERTEX_PLACE_ENVS, (project, location), strict=True)
               if not value]
    if missing:
        raise GeminiCredentialsError(
            f"{VERTEX_ENV}=true needs {' and '.join(missing)} to be set (the Google Cloud "
            "project and region, e.g. us-central1, that Vertex AI runs in)")
    return project, location


def _with_base_url(options: types.HttpOptions | None) -> types.HttpOptions | None:
    from google.genai import types  # noqa: PLC0415

    base_url = os.environ.get(BASE_URL_ENV, "").strip()
    if not base_url:
        return options
    return (options or types.HttpOptions()).model_copy(update={"base_url": base_url})


# ---------------------------------------------------------------------------- failures
@dataclass(frozen=True)
class Failure:
    """What went wrong in one call, and whether trying again may help."""

    description: str
    retryable: bool
    status: int | None = None


@functools.cache
def _transport_errors() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(timeouts, all transport errors) of httpx and httpx2: google-genai 3 sends through
    httpx2, earlier versions through httpx, and neither's classes subclass the other's."""
    modules = [importlib.import_module(name) for name in ("httpx", "httpx2")
               if importlib.util.find_spec(name) is not None]
    return (tuple(m.TimeoutException for m in modules),
            tuple(m.TransportError for m in modules))


def classify_failure(exc: Exception) -> Failure | None:
    """The :class:`Failure` of a google-genai call's exception; ``None`` for an exception
    that is not about the call (a bug), which the caller should let through.

    429 and 5xx are retryable (overload, a server hiccup), as are connection errors and a
    network failure while refreshing a token; other 4xx say the request itself is wrong.
    """
    from google.auth.exceptions import TransportError as AuthTransportError  # noqa: PLC0415
    from google.genai import errors  # noqa: PLC0415

    timeouts, transport = _transport_errors()
    if isinstance(exc, errors.APIError):
        status = int(exc.code)
        reason = " ".join(str(part) for part in (exc.status, exc.message) if part)
        return Failure(f"HTTP {status}: {reason}", retryable=status == 429 or status >= 500,
                       status=status)
    if isinstance(exc, timeouts):
        return Failure(f"timed out ({type(exc).__name__})", retryable=False)
    if isinstance(exc, (*transport, AuthTransportError)):
        return Failure(f"connection error ({type(exc).__name__}: {exc})", retryable=True)
    return None


def backoff_delay(attempt: int, initial_s: float, max_s: float) -> float:
    """Seconds to wait before retry ``attempt`` (0-based): exponential, capped, with "equal
    jitter" (half fixed, half random) so clients that failed together do not retry
    together, yet every wait still grows."""
    cap = min(max_s, initial_s * 2.0 ** attempt)
    return cap / 2 + random.uniform(0, cap / 2)


# ---------------------------------------------------------------------------- metrics
@functools.cache
@functools.cache
def gemini_registry() -> CollectorRegistry:
    """The registry of the ``driftloop_gemini_*`` metrics, one per process.

    In multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) these metrics land in the shared
    files like every other driftloop metric, so ``/metrics`` shows them without more ado.
    In single-process mode the server's :class:`~driftloop.serving.metrics.ServerMetrics`
    registers this registry with its own, so ``/metrics`` shows them too.
    """
    return CollectorRegistry()


@dataclass(frozen=True)
class _Instruments:
    requests: Counter
    tokens: Counter
    latency: Histogram


@functools.cache
def _instruments() -> _Instruments:
    registry = gemini_registry()
    instruments = _Instruments(
        requests=Counter("driftloop_gemini_requests_total",
                         "generateContent calls by outcome: ok, retried (failed, tried again), "
                         "failed (gave up), invalid (answered, but not as asked).",
                         ["outcome"], registry=registry),
        tokens=Counter("driftloop_gemini_tokens_total",
                       "Tokens reported by Gemini's usage metadata, by kind.", ["kind"],
                       registry=registry),
        latency=Histogram("driftloop_gemini_latency_seconds",
                          "Duration of one generateContent call, retries counted apart.",
                          registry=registry, buckets=LATENCY_BUCKETS),
    )
    # Every series exists at 0 from the start, so its first increment shows in increase().
    for outcome in OUTCOMES:
        instruments.requests.labels(outcome)
    for kind in TOKEN_KINDS:
        instruments.tokens.labels(kind)
    return instruments


@dataclass
class _Runtime:
    """Per-instance state that is not configuration: the client and the counters."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    client: Client | None = None
    counts: dict[str, float] = field(default_factory=lambda: dict.fromkeys(
        ("requests", "retries", "errors", "prompt_tokens", "candidate_tokens", "latency_s"), 0))

    def record(self, outcome: str, seconds: float, usage: Any = None) -> None:
        """Count one call in the instance's stats and in Prometheus."""
        prompt = int(getattr(usage, "prompt_token_count", None) or 0)
        candidates = int(getattr(usage, "candidates_token_count", None) or 0)
        with self.lock:
            counts = self.counts
            counts["requests"] += 1
            counts["retries"] += outcome == "retried"
            counts["errors"] += outcome in ("failed", "invalid")
            counts["prompt_tokens"] += prompt
            counts["candidate_tokens"] += candidates
            counts["latency_s"] += seconds
        instruments = _instruments()
        instruments.requests.labels(outcome).inc()
        instruments.latency.observe(seconds)
        instruments.tokens.labels("prompt").inc(prompt)
        instruments.tokens.labels("candidates").inc(candidates)


# ---------------------------------------------------------------------------- the agent
@dataclass
class GeminiAgent:
    """A Gemini model behind the ServedModel contract; configuration only, JSON through
    and through (:meth:`to_config`), so it is stored as a manifest, never pickled.

    ``model`` is a model name (``gemini-2.5-flash``) or a tuned endpoint's resource name
    (``projects/…/locations/…/endpoints/…``). ``few_shot`` holds ``{"features": {...},
    "label": ...}`` examples shown before every request. ``feature_names`` selects and
    orders the row keys sent (empty: every key of the row).
    """

    model: str
    task: str = "classify"
    labels: list[Label] = field(default_factory=list)
    system_instruction: str | None = None
    feature_names: list[str] = field(default_factory=list)
    few_shot: list[dict[str, Any]] = field(default_factory=list)
    temperature: float = 0.0
    timeout_s: float = 30.0
    max_retries: int = 3
    backoff_s: float = 0.5
    max_backoff_s: float = 8.0
    batch_size: int = 16
    tuning_job: str | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    _runtime: _Runtime = field(init=False, repr=False, compare=False,
                               default_factory=_Runtime)

    def __post_init__(self) -> None:
        _check_agent(self)

    # ---------------------------------------------------------------- configuration
    def to_config(self) -> dict[str, Any]:
        """Every configuration field as plain JSON values (a fresh copy)."""
        config = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        return dict(json.loads(json.dumps(config, allow_nan=False)))

    @classmethod
    def from_config(cls, config: Any) -> GeminiAgent:
        """The agent :meth:`to_config` described; ``ValueError`` on anything else."""
        if not isinstance(config, Mapping):
            raise ValueError(f"agent config must be a JSON object, got {type(config).__name__}")
        known = {f.name for f in fields(cls) if f.init}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"unknown agent config field(s) {unknown}")
        if "model" not in config:
            raise ValueError("agent config lacks 'model'")
        return cls(**config)

    def stats(self) -> dict[str, float]:
        """Calls made, retries, failed calls, tokens and summed latency since creation."""
        with self._runtime.lock:
            return dict(self._runtime.counts)

    # ---------------------------------------------------------------- prompts
    @property
    def batched(self) -> bool:
        """Whether calls carry several rows (a JSON array answer) or one (a JSON object)."""
        return self.batch_size > 1

    def instruction(self) -> str:
        """The system instruction sent with every call: the task, then the answer format."""
        if self.system_instruction:
            task = self.system_instruction
        elif self.task == "classify":
            task = ("Classify each input row into exactly one of these labels: "
                    f"{', '.join(map(str, self.labels))}.")
        else:
            task = "Extract the requested value from each input row."
        if self.batched:
            shape = ('The user message is a JSON object whose "rows" array holds rows of '
                     'features. Reply with a JSON array holding one {"prediction": ...} '
                     "object per row, in the same order.")
        else:
            shape = ("The user message is one row of features as a JSON object. Reply with "
                     'one JSON object {"prediction": ...}.')
        return f"{task}\n\n{shape}"

    def features_of(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """The row's features as sent: the configured names in order, JSON-clean values."""
        names = self.feature_names or list(row)
        return {name: json_value(row.get(name)) for name in names}

    def user_text(self, rows: Sequence[Mapping[str, Any]]) -> str:
        """The user turn for ``rows`` (exactly one row when not batched)."""
        features = [self.features_of(row) for row in rows]
        return _dumps({"rows": features} if self.batched else features[0])

    def answer_text(self, labels: Sequence[Any]) -> str:
        """The model turn that answers rows labelled ``labels`` as this agent asks."""
        answers = [{"prediction": str(label)} for label in labels]
        return _dumps(answers if self.batched else answers[0])

    def contents(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """The conversation for one call: few-shot turns in the same shape, then ``rows``.

        Batched, the examples are one batch (one user turn, one array answer), so the
        model sees exactly the exchange it is asked to continue.
        """
        if self.batched:
            groups = [self.few_shot] if self.few_shot else []
        else:
            groups = [[example] for example in self.few_shot]
        turns: list[dict[str, Any]] = []
        for group in groups:
            turns.append(_turn("user", self.user_text([e["features"] for e in group])))
            turns.append(_turn("model", self.answer_text([e["label"] for e in group])))
        turns.append(_turn("user", self.user_text(rows)))
        return turns

    def response_schema(self) -> dict[str, Any]:
        """The JSON schema Gemini must answer in: ``prediction`` is an enum of the labels."""
        prediction: dict[str, Any] = {"type": "STRING"}
        if self.task == "classify":
            prediction["enum"] = [str(label) for label in self.labels]
        item = {"type": "OBJECT", "properties": {"prediction": prediction},
                "required": ["prediction"]}
        return {"type": "ARRAY", "items": item} if self.batched else item

    # ---------------------------------------------------------------- serving
    def predict_batch(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """``{"prediction": label}`` per row, in order, ``batch_size`` rows per call."""
        rows = list(rows)
        outputs: list[dict[str, Any]] = []
        for start in range(0, len(rows), self.batch_size):
            outputs.extend(self._predict_chunk(rows[start:start + self.batch_size]))
        return outputs

    def _predict_chunk(self, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        response, seconds = self._generate(self.contents(rows))
        try:
            outputs = self.parse_answer(response.text, len(rows))
        except GeminiAnswerError:
            self._runtime.record("invalid", seconds, response.usage_metadata)
            raise
        self._runtime.record("ok", seconds, response.usage_metadata)
        return outputs

    def _generate(self, contents: list[dict[str, Any]]) -> tuple[Any, float]:
        """One answered call and its duration; retries as the module docstring says."""
        from google.genai import types  # noqa: PLC0415

        config = types.GenerateContentConfig(
            system_instruction=self.instruction(), temperature=self.temperature,
            response_mime_type="application/json", response_schema=self.response_schema(),
            http_options=types.HttpOptions(timeout=max(1, round(self.timeout_s * 1000))))
        client = self._client()
        attempt = 0
        while True:
            started = time.perf_counter()
            try:
                response = client.models.generate_content(model=self.model, contents=contents,
                                                          config=config)
                return response, time.perf_counter() - started
            except Exception as exc:
                self._after_failure(exc, attempt, time.perf_counter() - started)
            attempt += 1

    def _after_failure(self, exc: Exception, attempt: int, seconds: float) -> None:
        """Raise unless ``exc`` is retryable and retries remain; otherwise wait to retry."""
        failure = classify_failure(exc)
        if failure is None:
            raise exc
        if not failure.retryable or attempt >= self.max_retries:
            self._runtime.record("failed", seconds)
            raise GeminiRequestError(
                f"gemini {self.model}: {failure.description} (attempt {attempt + 1} of "
                f"{self.max_retries + 1}, timeout {self.timeout_s} s)",
                status=failure.status) from exc
        self._runtime.record("retried", seconds)
        delay = backoff_delay(attempt, self.backoff_s, self.max_backoff_s)
        log.warning("gemini %s: %s; retry %d of %d in %.3f s", self.model, failure.description,
                    attempt + 1, self.max_retries, delay, extra={"retry_in_s": delay})
        time.sleep(delay)

    def _client(self) -> Client:
        runtime = self._runtime
        with runtime.lock:
            if runtime.client is None:
                runtime.client = make_client()
            return runtime.client

    def parse_answer(self, text: str | None, n_rows: int) -> list[dict[str, Any]]:
        """The outputs in an answer to ``n_rows`` rows, or :class:`GeminiAnswerError`."""
        if not text:
            raise GeminiAnswerError(f"gemini {self.model} returned no text for {n_rows} row(s) "
                                    "(blocked, or cut off before answering)")
        try:
            answer = json.loads(text)
        except ValueError:
            raise self._invalid(n_rows, "it is not JSON", text) from None
        items = answer if self.batched else [answer]
        if not isinstance(items, list) or len(items) != n_rows:
            shape = f"a JSON array of {n_rows} objects" if self.batched else "a JSON object"
            raise self._invalid(n_rows, f"expected {shape}", text)
        allowed = {str(label): label for label in self.labels}
        outputs = []
        for item in items:
            value = item.get("prediction") if isinstance(item, dict) else None
            if not isinstance(value, str):
                raise self._invalid(n_rows, 'an item lacks a string "prediction"', text)
            if self.task == "classify" and value not in allowed:
                raise self._invalid(n_rows, f"{value!r} is not one of the labels "
                                             f"{list(allowed)}", text)
            outputs.append({"prediction": allowed.get(value, value)})
        return outputs

    def _invalid(self, n_rows: int, reason: str, text: str) -> GeminiAnswerError:
        excerpt = text if len(text) <= _ANSWER_EXCERPT else text[:_ANSWER_EXCERPT] + "…"
        return GeminiAnswerError(f"gemini {self.model} answered {n_rows} row(s) invalidly: "
                                 f"{reason}; the answer was {excerpt!r}")


def _check_agent(agent: GeminiAgent) -> None:
    """Refuse a configuration that could not serve, naming the field."""
    if not isinstance(agent.model, str) or not agent.model.strip():
        raise ValueError("model: must be a model name or endpoint resource name")
    if agent.task not in TASKS:
        raise ValueError(f"task: must be one of {TASKS}, got {agent.task!r}")
    _check_labels(agent)
    for name in ("temperature", "backoff_s", "max_backoff_s"):
        if not _number(getattr(agent, name)) or getattr(agent, name) < 0:
            raise ValueError(f"{name}: must be a number >= 0")
    if not _number(agent.timeout_s) or agent.timeout_s <= 0:
        raise ValueError("timeout_s: must be a number > 0")
    for name, least in (("max_retries", 0), ("batch_size", 1)):
        value = getattr(agent, name)
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name}: must be an integer >= {least}")
    for example in agent.few_shot:
        if (not isinstance(example, dict) or set(example) != {"features", "label"}
                or not isinstance(example["features"], dict)):
            raise ValueError('few_shot: each example must be {"features": {...}, "label": ...}')
        if agent.task == "classify" and example["label"] not in agent.labels:
            raise ValueError(f"few_shot: label {example['label']!r} is not one of the labels")
    try:
        agent.to_config()
    except (TypeError, ValueError) as exc:
        raise ValueError(f"agent configuration must be plain JSON: {exc}") from None


def _check_labels(agent: GeminiAgent) -> None:
    if agent.task == "classify" and not agent.labels:
        raise ValueError("labels: a classify agent needs the labels it may answer")
    if any(not isinstance(label, str | int) for label in agent.labels):
        raise ValueError("labels: must be strings, integers or booleans")
    texts = [str(label) for label in agent.labels]
    if len(set(texts)) != len(texts):
        raise ValueError(f"labels: must be distinct as text, got {texts}")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def json_value(value: Any) -> Any:
    """``value`` as plain JSON: dates as ISO-8601, numpy scalars unboxed, NaN and infinities
    as null (JSON has neither), lists and dicts cleaned recursively. Missing values from
    pandas (NA, NaT) must already be None."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if callable(getattr(value, "item", None)):
        value = value.item()  # numpy scalars
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): json_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    return value


def _dumps(value: Any) -> str:
    """Compact JSON, as sent in prompts and written to tuning data (fewer tokens)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _turn(role: str, text: str) -> dict[str, Any]:
    return {"role": role, "parts": [{"text": text}]}


# ---------------------------------------------------------------------------- adapter
class GeminiAdapter:
    """Stores a :class:`GeminiAgent` as ``manifest.json``: its configuration and a format
    tag, nothing executable and no credential."""

    framework = "gemini"

    def handles(self, model: Any) -> bool:
        return isinstance(model, GeminiAgent)

    def save(self, model: Any, directory: Path) -> None:
        write_manifest(directory / MANIFEST, {"format": FORMAT, "agent": model.to_config()})

    def load(self, directory: Path) -> GeminiAgent:
        path = directory / MANIFEST
        document = read_manifest(path, FORMAT)
        try:
            return GeminiAgent.from_config(document.get("agent"))
        except (TypeError, ValueError) as exc:
            raise UntrustedArtifactError(f"{path}: invalid Gemini agent: {exc}") from None
