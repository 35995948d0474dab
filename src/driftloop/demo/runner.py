"""``driftloop demo``: train v1, serve it, replay drifting traffic, and watch the loop close.

Everything is real: a SQLite registry and snapshot store in a fresh folder, the FastAPI
server under uvicorn (in a thread of this process), HTTP requests for every prediction
and label, and the RetrainOrchestrator inside the server. The replay sends the stream in
small ``/predict/batch`` requests at ``speed`` × 100 events per second and each label
``label_delay`` events later through ``/feedback/batch`` (labels arrive late in real
life). The summary measures the loop from the outside, as a user would.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
import webbrowser
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from driftloop.config import Settings
from driftloop.data.snapshots import EVENT_TIMESTAMP, SnapshotStore
from driftloop.demo.stream import DriftingStream, Stream
from driftloop.registry import ModelRegistry
from driftloop.serving.app import create_app
from driftloop.threads import limit_threads
from driftloop.training.sklearn import SklearnTrainer

MODEL = "demo"
ESTIMATOR = "sklearn.ensemble.HistGradientBoostingClassifier"
BASE_RATE = 100.0  # events per second at --speed 1
UNBOUNDED = 10**12  # until="promoted": no fixed end to the stream


@dataclass(frozen=True)
class DemoOptions:
    data_dir: Path = Path("artifacts")
    host: str = "127.0.0.1"
    port: int = 8000
    admin_token: str | None = None
    until: str = "promoted"  # or "end"
    max_seconds: float = 900.0  # with until="promoted": the replay's time budget
    speed: float = 1.0
    seed: int = 7
    train_rows: int = 3000
    before_shift: int = 3000
    after_shift: int = 12_000
    after_promotion: int = 1500  # events replayed after a promotion, to measure it
    batch: int = 20
    label_delay: int = 200


@dataclass
class Summary:
    folder: str
    url: str
    shift_event: int
    events_sent: int = 0
    alarm_event: int | None = None
    alarms_before_shift: int = 0
    promoted_event: int | None = None
    seconds_shift_to_alarm: float | None = None
    seconds_shift_to_promotion: float | None = None
    stages: dict[str, float] = field(default_factory=dict)
    run_outcome: str | None = None
    old_champion: int = 1
    new_champion: int | None = None
    accuracy_before_shift: float | None = None
    old_accuracy_after_shift: float | None = None
    new_accuracy_after_shift: float | None = None
    interrupted: bool = False

    @property
    def promoted(self) -> bool:
        return self.promoted_event is not None


def demo_settings(folder: Path, options: DemoOptions, token: str) -> Settings:
    """The server's settings for the demo: a small drift window so a shift shows within
    a few thousand events, the sklearn trainer with gradient boosting, a quick gate."""
    return Settings(
        model_name=MODEL, data_dir=folder, admin_token=token, drift_window=2000,
        drift_panes=2, trainer_options={"estimator": ESTIMATOR}, snapshot_rows=2000,
        min_train_rows=1000, min_samples=150, gate_alpha=0.05, min_delta=0.0,
        cooldown=30.0, watch_samples=300, train_timeout=300.0)


def train_first_version(settings: Settings, stream: DriftingStream | Stream, rows: int) -> int:
    """v1: the first ``rows`` events as a snapshot, fitted by the built-in trainer and
    promoted — the champion the loop starts from."""
    registry = ModelRegistry.for_settings(settings)
    start = datetime.now(UTC) - timedelta(seconds=rows)
    frame = stream.frame(0, rows).assign(
        request_id=[f"train-{i}" for i in range(rows)],
        **{EVENT_TIMESTAMP: [start + timedelta(seconds=i) for i in range(rows)]})
    snapshot = SnapshotStore.for_registry(registry).write(
        frame, query={"source": "river RandomRBF stream", "events": [0, rows]})
    model = SklearnTrainer(ESTIMATOR).train(snapshot, None, {})
    version = registry.push_candidate(MODEL, model, dataset=(snapshot.id, snapshot.sha256),
                                      params={"estimator": ESTIMATOR}, actor="demo",
                                      reason="the demo's first model")
    registry.promote_candidate(MODEL, version.version, actor="demo", reason="first champion")
    registry.engine.dispose()
    return version.version


class ServerThread:
    """uvicorn serving ``settings`` in a background thread of this process."""

    def __init__(self, settings: Settings, host: str, port: int) -> None:
        config = uvicorn.Config(create_app(settings), host=host, port=port,
                                log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="server")
        self.host = host

    def start(self, timeout: float = 60.0) -> str:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo server did not start; see the log above")
            time.sleep(0.05)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://{self.host}:{port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


class Replay:
    """Sends the stream to the server and keeps score of what came back."""

    def __init__(self, client: httpx.Client, stream: DriftingStream, options: DemoOptions,
                 first: int, on_state: Callable[[dict[str, Any], int], None]) -> None:
        self.client, self.stream, self.options = client, stream, options
        self.first = first
        self.on_state = on_state
        self.answers: list[tuple[int, int, int, bool]] = []  # event, version, label, correct
        self._labels: deque[tuple[int, str, int]] = deque()

    def run(self, last: int, stop: Callable[[], bool], progress: Callable[[int], None]) -> int:
        """Replay events [first, last) until ``stop()``; returns the next event index."""
        rate = BASE_RATE * self.options.speed
        started, sent, next_poll = time.monotonic(), 0, 0.0
        event = self.first
        while event < last and not stop():
            end = min(event + self.options.batch, last)
            self._predict(event, end)
            self._send_labels(upto=end - self.options.label_delay)
            sent += end - event
            event = self.first = end  # kept current: Ctrl-C may end the replay here
            progress(event)
            now = time.monotonic()
            if now >= next_poll:
                self.on_state(self.client.get("/api/state").json(), event)
                next_poll = now + 0.5
            ahead = started + sent / rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        self._send_labels(upto=event)
        return event

    def _predict(self, start: int, end: int) -> None:
        rows = self.stream.rows(start, end)
        body = {"rows": [{"features": r, "request_id": f"e{start + i}-{secrets.token_hex(3)}"}
                         for i, r in enumerate(rows)]}
        response = self.client.post("/predict/batch", json=body)
        response.raise_for_status()
        for i, answer in enumerate(response.json()["predictions"]):
            label = self.stream.label(start + i)
            correct = answer["output"]["prediction"] == label
            self.answers.append((start + i, answer["model_version"], label, correct))
            self._labels.append((start + i, answer["request_id"], label))

    def _send_labels(self, upto: int) -> None:
        items = []
        while self._labels and self._labels[0][0] < upto:
            _, request_id, label = self._labels.popleft()
            items.append({"request_id": request_id, "label": label})
        if items:
            self.client.post("/feedback/batch", json={"items": items}).raise_for_status()

    def accuracy(self, since: int, until: int, version: int) -> float | None:
        hits = [c for e, v, _, c in self.answers if since <= e < until and v == version]
        return sum(hits) / len(hits) if hits else None


class Demo:
    """One demo run: set up, serve, replay, summarise."""

    def __init__(self, options: DemoOptions, say: Callable[[str], None]) -> None:
        self.options = options
        self.say = say
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        self.folder = Path(options.data_dir) / "demo" / f"{stamp}-{secrets.token_hex(2)}"
        self.token = options.admin_token or secrets.token_urlsafe(16)
        self.settings = demo_settings(self.folder, options, self.token)
        o = options
        self.stream = DriftingStream(o.train_rows + o.before_shift, seed=o.seed)
        self.current: Replay | None = None
        self.state = "IDLE"
        self.summary = Summary(str(self.folder), "", shift_event=self.stream.shift_at)
        self._shift_time: float | None = None
        self.client: httpx.Client | None = None

    def prepare(self) -> None:
        self.folder.mkdir(parents=True)
        self.say(f"training v1 on the first {self.options.train_rows} events "
                 f"({ESTIMATOR.rsplit('.', 1)[1]})")
        train_first_version(self.settings, self.stream, self.options.train_rows)

    def observe(self, state: dict[str, Any], event: int) -> None:
        """Called with /api/state every half second of replay (so times are ±0.5 s; event
        counts are exact: the alarm's from the detector, the promotion's from the first
        answer of the new version)."""
        s = self.summary
        if self._shift_time is None and event >= s.shift_event:
            self._shift_time = time.monotonic()
            self.say(f"event {s.shift_event:,}: the stream's concept shifts")
        if state["alarms"] and s.alarm_event is None:
            assert self.client is not None
            alarms = self.client.get("/api/drift").json()["alarms"]
            seen = [self.options.train_rows + a["events_seen"] for a in alarms]
            s.alarms_before_shift = sum(e < s.shift_event for e in seen)
            after = [e for e in seen if e >= s.shift_event]
            if after:
                s.alarm_event = min(after)
                s.seconds_shift_to_alarm = self._since_shift()
                self.say(f"event {s.alarm_event:,}: drift alarm "
                         f"({s.alarm_event - s.shift_event:,} events after the shift)")
        loop = state["loop"]["state"]
        if loop != self.state:
            self.say(f"event {event:,}: loop {self.state} → {loop}")
            self.state = loop
        champion = state["champion"]["version"] if state["champion"] else None
        if champion is not None and champion != s.old_champion and s.promoted_event is None:
            s.promoted_event, s.new_champion = event, champion
            s.seconds_shift_to_promotion = self._since_shift()
            self.say(f"event {event:,}: v{champion} promoted — the loop closed")

    def _since_shift(self) -> float | None:
        return None if self._shift_time is None else time.monotonic() - self._shift_time

    @property
    def fixed_events(self) -> int:
        """The events of ``--until end`` (after the training rows)."""
        return self.options.before_shift + self.options.after_shift

    def replay(self, client: httpx.Client, progress: Callable[[int], None]) -> Replay:
        """``until="end"``: the fixed stream. ``until="promoted"``: as long as the loop
        needs (a busy machine trains and shadows slower), within ``max_seconds``."""
        o, s = self.options, self.summary
        self.client = client
        replay = self.current = Replay(client, self.stream, o, o.train_rows, self.observe)
        if o.until == "end":
            replay.run(o.train_rows + self.fixed_events, stop=lambda: False, progress=progress)
        else:
            deadline = time.monotonic() + o.max_seconds
            replay.run(UNBOUNDED, progress=progress,
                       stop=lambda: s.promoted or time.monotonic() > deadline)
        if s.promoted_event is not None:  # keep going a little to measure the new champion
            last = replay.first + o.after_promotion
            if o.until == "end":
                last = min(last, o.train_rows + self.fixed_events)
            replay.run(last, stop=lambda: False, progress=progress)
        return replay

    def finish(self, client: httpx.Client, replay: Replay) -> Summary:
        s = self.summary
        s.events_sent = replay.first - self.options.train_rows
        settle = s.shift_event + 200  # ConceptDriftStream's transition width
        s.accuracy_before_shift = replay.accuracy(0, s.shift_event, s.old_champion)
        s.old_accuracy_after_shift = replay.accuracy(settle, 10**9, s.old_champion)
        if s.new_champion is not None:
            s.new_accuracy_after_shift = replay.accuracy(settle, 10**9, s.new_champion)
            s.promoted_event = min(e for e, v, _, _ in replay.answers if v == s.new_champion)
        runs = client.get("/api/runs").json()["runs"]
        if runs:
            s.stages = runs[0]["stages"]
            s.run_outcome = runs[0]["outcome"]
        (self.folder / "summary.json").write_text(json.dumps(asdict(s), indent=2) + "\n")
        return s


def run_demo(options: DemoOptions, *, say: Callable[[str], None],
             progress_factory: Callable[[int | None], Callable[[int, str], None]],
             open_browser: bool = False,
             linger: Callable[[Summary], None] | None = None) -> Summary:
    """The whole demo; ``progress_factory(total)`` returns the replay's progress callback,
    called with the events replayed so far and the loop's state (a status line); ``total``
    is None when the replay runs until a promotion. Ctrl-C ends the demo early: the
    summary so far is still measured and returned, marked ``interrupted``. ``linger``, when
    given, is called with the finished summary while the server still runs (to keep the
    dashboard up for a look around)."""
    demo = Demo(options, say)
    server: ServerThread | None = None
    try:
        limit_threads(demo.settings.resolved_threads)  # v1's training, the server's scoring
        demo.prepare()
        server = ServerThread(demo.settings, options.host, options.port)
        url = demo.summary.url = server.start()
        token = "yours" if options.admin_token else "a random one (pass --admin-token)"
        say(f"dashboard at {url}/  (API docs at {url}/docs); admin token: {token}")
        say(f"serving v1; data in {demo.folder}")
        if open_browser and (Path(__file__).parents[1] / "serving" / "static"
                             / "index.html").exists():
            webbrowser.open(url)
        with httpx.Client(base_url=url, timeout=60,
                          headers={"Authorization": f"Bearer {demo.token}"}) as client:
            tick = progress_factory(demo.fixed_events if options.until == "end" else None)
            try:
                replay = demo.replay(client,
                                     lambda event: tick(event - options.train_rows, demo.state))
            except KeyboardInterrupt:
                demo.summary.interrupted = True
                if demo.current is None:
                    return demo.summary
                replay = demo.current
            summary = demo.finish(client, replay)
        if linger is not None and not summary.interrupted:
            linger(summary)
        return summary
    except KeyboardInterrupt:  # before the replay: setting up
        demo.summary.interrupted = True
        return demo.summary
    finally:
        if server is not None:
            server.stop()


def summary_rows(s: Summary) -> list[tuple[str, str]]:
    """The closing summary as (what, value) rows, for the terminal."""
    def pct(v: float | None) -> str:
        return "—" if v is None else f"{v:.1%}"

    def secs(v: float | None) -> str:
        return "—" if v is None else f"{v:.1f} s"

    def shift_to(event: int | None) -> str:
        return "—" if event is None else f"{event - s.shift_event:,} events"

    rows = [("events replayed", f"{s.events_sent:,}" + (" (interrupted)" if s.interrupted
                                                         else "")),
            ("false alarms before the shift", str(s.alarms_before_shift)),
            ("shift → drift alarm",
             f"{shift_to(s.alarm_event)} ({secs(s.seconds_shift_to_alarm)})"),
            ("shift → promotion",
             f"{shift_to(s.promoted_event)} ({secs(s.seconds_shift_to_promotion)})")]
    rows += [(f"  {stage.lower()}", secs(seconds)) for stage, seconds in s.stages.items()]
    rows += [("run outcome", s.run_outcome or "—"),
             (f"v{s.old_champion} accuracy before the shift", pct(s.accuracy_before_shift)),
             (f"v{s.old_champion} accuracy after the shift", pct(s.old_accuracy_after_shift))]
    if s.new_champion is not None:
        rows.append((f"v{s.new_champion} accuracy after the shift",
                     pct(s.new_accuracy_after_shift)))
    rows.append(("data folder", s.folder))
    return rows
