"""GeminiAgent and GeminiAdapter against the local Gemini stand-in, through the real SDK."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from prometheus_client import CollectorRegistry
from tests.gemini_standin import (
    ACCESS_TOKEN,
    API_KEY,
    LOCATION,
    PROJECT,
    GeminiStandIn,
    clear_google_env,
    threshold_rule,
    use_gemini_api,
    use_vertex,
)

from driftloop.models import UntrustedArtifactError
from driftloop.models.gemini import (
    FORMAT,
    GeminiAdapter,
    GeminiAgent,
    GeminiAnswerError,
    GeminiCredentialsError,
    GeminiRequestError,
    gemini_registry,
    make_client,
)
from driftloop.models.served import served
from driftloop.registry import ArtifactIntegrityError, ModelRegistry
from driftloop.serving.metrics import render

LABELS = ["low", "high"]
GENERATE = "/v1/models/gemini-2.5-flash:generateContent"


@pytest.fixture
def standin() -> Iterator[GeminiStandIn]:
    with GeminiStandIn() as server:
        yield server


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, standin: GeminiStandIn) -> GeminiStandIn:
    use_gemini_api(monkeypatch, tmp_path, standin)
    return standin


def make_agent(**settings: Any) -> GeminiAgent:
    options: dict[str, Any] = {"model": "gemini-2.5-flash", "labels": LABELS,
                               "feature_names": ["x", "y"], "backoff_s": 0.01,
                               "max_backoff_s": 0.04, "timeout_s": 5.0, **settings}
    return GeminiAgent(**options)


def rows(n: int, seed: int = 0) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    return [{"x": float(x), "y": float(y), "ignored": "not sent"}
            for x, y in rng.normal(size=(n, 2))]


def expected(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"prediction": "high" if row["x"] > 0 else "low"} for row in batch]


# ---------------------------------------------------------------------------- predictions
def test_rows_are_batched_into_calls_with_a_json_schema(api: GeminiStandIn) -> None:
    agent = make_agent(batch_size=10)
    batch = rows(25)
    assert agent.predict_batch(batch) == expected(batch)
    calls = api.generate_calls()
    assert [c.path for c in calls] == [GENERATE] * 3
    assert [len(c.prompt["rows"]) for c in calls] == [10, 10, 5]
    assert calls[0].prompt["rows"][0] == {"x": batch[0]["x"], "y": batch[0]["y"]}
    body = calls[0].body
    assert body["generationConfig"] == {
        "temperature": 0.0, "responseMimeType": "application/json",
        "responseSchema": {"type": "ARRAY", "items": {
            "type": "OBJECT", "required": ["prediction"],
            "properties": {"prediction": {"type": "STRING", "enum": LABELS}}}}}
    assert "low, high" in body["systemInstruction"]["parts"][0]["text"]
    assert calls[0].headers["x-server-timeout"] == "5"  # the per-call timeout travels
    stats = agent.stats()
    assert (stats["requests"], stats["retries"], stats["errors"]) == (3, 0, 0)
    assert stats["prompt_tokens"] > 0 and stats["candidate_tokens"] > 0
    assert stats["latency_s"] > 0
    assert served(agent, ["x", "y"]) is agent


def test_one_row_per_call_asks_for_one_object_and_shows_examples_as_turns(
    api: GeminiStandIn,
) -> None:
    examples = [{"features": {"x": 1.5, "y": 0.0}, "label": "high"},
                {"features": {"x": -2.0, "y": 1.0}, "label": "low"}]
    single = make_agent(batch_size=1, few_shot=examples, system_instruction="Is x positive?")
    batch = rows(3)
    assert single.predict_batch(batch) == expected(batch)
    call = api.generate_calls()[0]
    assert call.body["generationConfig"]["responseSchema"]["type"] == "OBJECT"
    assert [(t["role"], json.loads(t["parts"][0]["text"])) for t in call.body["contents"]] == [
        ("user", {"x": 1.5, "y": 0.0}), ("model", {"prediction": "high"}),
        ("user", {"x": -2.0, "y": 1.0}), ("model", {"prediction": "low"}),
        ("user", {"x": batch[0]["x"], "y": batch[0]["y"]})]
    assert call.body["systemInstruction"]["parts"][0]["text"].startswith("Is x positive?")

    batched = make_agent(batch_size=4, few_shot=examples)
    batched.predict_batch(batch)
    turns = api.generate_calls()[-1].body["contents"]
    assert [json.loads(t["parts"][0]["text"]) for t in turns[:2]] == [
        {"rows": [e["features"] for e in examples]},
        [{"prediction": "high"}, {"prediction": "low"}]]


def test_integer_labels_come_back_as_integers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    with GeminiStandIn(rule=threshold_rule(labels=("0", "1"))) as server:
        use_gemini_api(monkeypatch, tmp_path, server)
        agent = make_agent(labels=[0, 1])
        batch = rows(6)
        assert agent.predict_batch(batch) == [{"prediction": int(row["x"] > 0)} for row in batch]
        schema = server.generate_calls()[0].body["generationConfig"]["responseSchema"]
        assert schema["items"]["properties"]["prediction"]["enum"] == ["0", "1"]


# ---------------------------------------------------------------------------- failures
def test_429_and_5xx_are_retried_with_growing_jittered_backoff(
    api: GeminiStandIn, caplog: pytest.LogCaptureFixture,
) -> None:
    agent = make_agent(max_retries=3)
    api.fail_next(429, times=2)
    api.fail_next(503)
    batch = rows(4)
    with caplog.at_level(logging.WARNING, logger="driftloop.models.gemini"):
        assert agent.predict_batch(batch) == expected(batch)
    assert len(api.generate_calls()) == 4
    assert agent.stats()["retries"] == 3
    delays = [r.retry_in_s for r in caplog.records if hasattr(r, "retry_in_s")]
    caps = [min(0.04, 0.01 * 2 ** attempt) for attempt in range(3)]
    assert len(delays) == 3
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))
    assert "HTTP 429" in caplog.records[0].getMessage()


def test_retries_stop_after_max_retries(api: GeminiStandIn) -> None:
    agent = make_agent(max_retries=2)
    api.fail_next(500, times=5)
    with pytest.raises(GeminiRequestError, match=r"HTTP 500.*attempt 3 of 3") as info:
        agent.predict_batch(rows(2))
    assert info.value.status == 500
    assert len(api.generate_calls()) == 3
    assert agent.stats()["errors"] == 1


@pytest.mark.parametrize("status", [400, 403, 404])
def test_other_4xx_are_not_retried(api: GeminiStandIn, status: int) -> None:
    api.fail_next(status)
    with pytest.raises(GeminiRequestError, match=f"HTTP {status}") as info:
        make_agent().predict_batch(rows(2))
    assert info.value.status == status
    assert len(api.generate_calls()) == 1


def test_a_wrong_key_fails_at_once(api: GeminiStandIn, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-wrong")
    with pytest.raises(GeminiRequestError, match="HTTP 401") as info:
        make_agent().predict_batch(rows(1))
    assert "AIza-wrong" not in str(info.value)
    assert len(api.generate_calls()) == 1


def test_a_slow_answer_times_out_without_retrying(api: GeminiStandIn) -> None:
    api.delay_next(5.0)
    agent = make_agent(timeout_s=0.3)
    started = time.monotonic()
    with pytest.raises(GeminiRequestError, match="timed out"):
        agent.predict_batch(rows(2))
    assert time.monotonic() - started < 2.0
    assert len(api.generate_calls()) == 1


def test_connection_errors_are_retried(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, standin: GeminiStandIn,
) -> None:
    use_gemini_api(monkeypatch, tmp_path, standin)
    with socket.socket() as sock:  # a port nobody listens on once the socket closes
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DRIFTLOOP_GEMINI_BASE_URL", f"http://127.0.0.1:{port}")
    agent = make_agent(max_retries=2)
    with pytest.raises(GeminiRequestError, match="connection error"):
        agent.predict_batch(rows(1))
    assert agent.stats()["requests"] == 3


@pytest.mark.parametrize(("answer", "reason"), [
    ("Sure! Here are the labels: low, high", "not JSON"),
    ('{"prediction": "low"}', "expected a JSON array of 2 objects"),
    ('[{"prediction": "low"}]', "expected a JSON array of 2 objects"),
    ('[{"prediction": "low"}, {"label": "high"}]', 'lacks a string "prediction"'),
    ('[{"prediction": "low"}, {"prediction": "medium"}]', "'medium' is not one of the labels"),
])
def test_an_invalid_answer_fails_the_batch_clearly(
    api: GeminiStandIn, answer: str, reason: str,
) -> None:
    api.malform_next(answer)
    agent = make_agent()
    with pytest.raises(GeminiAnswerError, match=reason) as info:
        agent.predict_batch(rows(2))
    assert "gemini-2.5-flash answered 2 row(s) invalidly" in str(info.value)
    assert len(api.generate_calls()) == 1  # an answer is not retried
    assert agent.stats()["errors"] == 1


def test_prometheus_counts_calls_tokens_and_latency(api: GeminiStandIn) -> None:
    def sample(name: str, **labels: str) -> float:
        value = gemini_registry().get_sample_value(name, labels)
        return 0.0 if value is None else value

    before = {"ok": sample("driftloop_gemini_requests_total", outcome="ok"),
              "retried": sample("driftloop_gemini_requests_total", outcome="retried"),
              "prompt": sample("driftloop_gemini_tokens_total", kind="prompt"),
              "latency": sample("driftloop_gemini_latency_seconds_count")}
    api.fail_next(429)
    make_agent(batch_size=2).predict_batch(rows(4))
    assert sample("driftloop_gemini_requests_total", outcome="ok") - before["ok"] == 2
    assert sample("driftloop_gemini_requests_total", outcome="retried") - before["retried"] == 1
    assert sample("driftloop_gemini_tokens_total", kind="prompt") > before["prompt"]
    assert sample("driftloop_gemini_latency_seconds_count") - before["latency"] == 3
    server = CollectorRegistry()
    server.register(gemini_registry())  # single-process wiring into the server's registry
    assert b"driftloop_gemini_requests_total" in render(server)[0]


# ---------------------------------------------------------------------------- Vertex AI
def test_vertex_calls_models_and_tuned_endpoints_with_adc(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, standin: GeminiStandIn,
) -> None:
    use_vertex(monkeypatch, tmp_path, standin)
    place = f"/v1beta1/projects/{PROJECT}/locations/{LOCATION}"
    batch = rows(2)
    assert make_agent().predict_batch(batch) == expected(batch)
    endpoint = f"projects/{PROJECT}/locations/{LOCATION}/endpoints/77"
    assert make_agent(model=endpoint, batch_size=1).predict_batch(batch) == expected(batch)
    assert standin.paths() == [
        "POST /token",  # the service-account JWT exchanged for an access token
        f"POST {place}/publishers/google/models/gemini-2.5-flash:generateContent",
        "POST /token",  # each agent has its own client
        f"POST {place}/endpoints/77:generateContent",
        f"POST {place}/endpoints/77:generateContent",
    ]


# ---------------------------------------------------------------------------- credentials
def test_missing_credentials_name_the_variables(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    clear_google_env(monkeypatch, tmp_path)
    with pytest.raises(GeminiCredentialsError) as info:
        make_client()
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI",
                 "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION"):
        assert name in str(info.value)
    with pytest.raises(GeminiCredentialsError, match="GOOGLE_CLOUD_PROJECT"):
        make_agent().predict_batch(rows(1))  # the agent surfaces the same error

    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    with pytest.raises(GeminiCredentialsError, match=r"needs GOOGLE_CLOUD_LOCATION to be set"):
        make_client()
    monkeypatch.setenv("GOOGLE_CLOUD_LOCATION", LOCATION)
    with pytest.raises(GeminiCredentialsError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        make_client()


def test_gemini_api_key_is_the_fallback_variable(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, standin: GeminiStandIn,
) -> None:
    use_gemini_api(monkeypatch, tmp_path, standin)
    monkeypatch.delenv("GOOGLE_API_KEY")
    monkeypatch.setenv("GEMINI_API_KEY", API_KEY)
    batch = rows(2)
    assert make_agent().predict_batch(batch) == expected(batch)


def test_no_secret_reaches_artifacts_reprs_logs_or_errors(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, standin: GeminiStandIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and google-auth's included
    reg = ModelRegistry.open(f"sqlite:///{tmp_path / 'reg.db'}", artifacts=tmp_path / "art")
    texts: list[str] = []
    for use in (use_gemini_api, use_vertex):
        use(monkeypatch, tmp_path, standin)
        agent = make_agent()
        standin.fail_next(503)
        agent.predict_batch(rows(2))
        standin.fail_next(400)
        with pytest.raises(GeminiRequestError) as info:
            agent.predict_batch(rows(2))
        texts += [repr(agent), str(agent), str(info.value), repr(info.value.__cause__)]
        reg.push_candidate("agent", agent)
    key_file = json.loads(Path(tmp_path / "service-account.json").read_text())
    stored = b"".join(p.read_bytes() for p in (tmp_path / "art").rglob("*") if p.is_file())
    for secret in (API_KEY, ACCESS_TOKEN, key_file["private_key"].splitlines()[1]):
        assert secret not in caplog.text
        assert all(secret not in text for text in texts)
        assert secret.encode() not in stored


# ---------------------------------------------------------------------------- adapter
def test_registry_round_trip_verifies_and_restores_the_agent(
    db_url: str, tmp_path: Path, api: GeminiStandIn,
) -> None:
    reg = ModelRegistry.open(db_url, artifacts=tmp_path / "artifacts")
    agent = make_agent(few_shot=[{"features": {"x": 1.0, "y": 2.0}, "label": "high"}],
                       tuning_job="projects/p/locations/l/tuningJobs/1",
                       provenance={"snapshot_id": "20261127T000000Z-ab12"})
    version = reg.push_candidate("triage", agent)
    assert version.framework == "gemini"
    folder = reg.artifacts.root / version.artifact_path
    assert "manifest.json" in {p.name for p in folder.iterdir()}  # beside the registry's own
    document = json.loads((folder / "manifest.json").read_text())
    assert document["format"] == FORMAT
    assert document["agent"] == agent.to_config()
    loaded = reg.load("triage", version.version)
    assert loaded == agent and loaded is not agent
    batch = rows(3)
    assert loaded.predict_batch(batch) == expected(batch)

    manifest = folder / "manifest.json"
    manifest.chmod(0o644)
    manifest.write_text(manifest.read_text().replace("gemini-2.5-flash", "gemini-2.5-pro"))
    with pytest.raises(ArtifactIntegrityError, match="corrupt"):
        reg.load("triage", version.version)


@pytest.mark.parametrize(("document", "message"), [
    ({"format": "driftloop.gemini-agent/999", "agent": {"model": "m"}}, "format"),
    ({"agent": {"model": "m"}}, "format"),
    ({"format": FORMAT, "agent": {"model": "m", "labels": ["a"], "shell": "rm -rf /"}},
     "unknown agent config field"),
    ({"format": FORMAT, "agent": {"model": "m", "task": "classify"}}, "labels"),
    ({"format": FORMAT, "agent": ["m"]}, "JSON object"),
])
def test_the_adapter_refuses_manifests_it_does_not_understand(
    tmp_path: Path, document: Any, message: str,
) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps(document))
    with pytest.raises(UntrustedArtifactError, match=message):
        GeminiAdapter().load(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(UntrustedArtifactError, match="JSON"):
        GeminiAdapter().load(tmp_path)


@pytest.mark.parametrize(("settings", "field"), [
    ({"task": "summarise"}, "task"),
    ({"labels": []}, "labels"),
    ({"labels": [1, "1"]}, "labels"),
    ({"labels": [1.5, 2.5]}, "labels"),
    ({"batch_size": 0}, "batch_size"),
    ({"timeout_s": 0}, "timeout_s"),
    ({"temperature": float("nan")}, "temperature"),
    ({"few_shot": [{"features": {"x": 1}, "label": "medium"}]}, "few_shot"),
    ({"provenance": {"when": object()}}, "plain JSON"),
])
def test_invalid_configuration_names_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        make_agent(**settings)
