"""The HTTP and WebSocket contract: one pydantic model per request body, response and frame.

Every ``/api/*`` route answers through one of these models (``response_model``), every
error is an :class:`ErrorResponse`, and the hub checks each ``/ws`` frame against
:data:`Frame` before it goes out. ``/openapi.json`` is generated from them, and so are the
dashboard's TypeScript types (``scripts/gen_contract.py`` writes their JSON Schema,
``npm run gen:types`` the TypeScript) and its test fixtures: a shape changes here, once,
or a test says which copy went stale.

Two kinds of object: :class:`Closed` lists every key the server sends (an unknown key is
a bug, in the server or in a fixture); :class:`Open` lists the keys clients rely on and
allows more (a version's params and metrics, a run's evidence, lineage nodes).
Request bodies are strict: ``"1"``, ``" 1e3 "`` or ``false`` where a number goes is a 422
naming the field, never a number guessed from a string. Any JSON number is a number
(``1`` and ``1.0`` alike); no body field takes an integer only.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from driftloop.data.predictions import unstorable
from driftloop.events import Event

logger = logging.getLogger(__name__)


def _storable(value: str) -> str:
    problem = unstorable(value)
    if problem is not None:
        raise ValueError(problem)
    return value


#: A string the database can store (no NUL, no lone surrogate).
Text = Annotated[StrictStr, AfterValidator(_storable)]
#: A finite JSON number; a string or a boolean is refused, not converted.
Number = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Fraction = Annotated[float, Field(strict=True, ge=0.0, le=1.0)]

LoopStateName = Literal["IDLE", "SNAPSHOTTING", "TRAINING", "EVALUATING", "SHADOWING",
                        "PROMOTED", "REJECTED", "COOLDOWN", "FAILED"]
TrafficMode = Literal["off", "shadow", "canary", "ab"]
SlotName = Literal["champion", "candidate"]


class Closed(BaseModel):
    """A shape whose every key is listed."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A shape with the keys clients rely on, and room for more."""

    model_config = ConfigDict(extra="allow")


# ---------------------------------------------------------------------- request bodies
class FeedbackRequest(Closed):
    request_id: Text = Field(min_length=1, max_length=64)
    label: Text | int | float | StrictBool
    overwrite: StrictBool = False


class FeedbackItem(Closed):
    request_id: Text = Field(min_length=1, max_length=64)
    label: Text | int | float | StrictBool


class FeedbackBatchRequest(Closed):
    items: list[FeedbackItem] = Field(min_length=1, max_length=10_000)


class RetrainRequest(Closed):
    reason: Text = Field("requested by an admin", min_length=1, max_length=500)


class TrafficRequest(Closed):
    mode: TrafficMode
    weight: Fraction = 0.0
    shadow_fraction: Fraction = 1.0
    reason: Text | None = Field(None, max_length=500)


class AdminAction(Closed):
    reason: Text | None = Field(None, max_length=500)


# ---------------------------------------------------------------------- errors
class ErrorDetail(Closed):
    field: str
    message: str


class ErrorBody(Closed):
    status: int
    message: str
    field: str | None = Field(description="the request field at fault, when one is")
    details: list[ErrorDetail] | None = Field(
        None, description="every validation error, when there were several kinds")


class ErrorResponse(Closed):
    """Every error the server answers: ``{"error": {status, message, field, details}}``."""

    error: ErrorBody


#: Why each error status happens, for the routes' documented responses.
ERROR_CAUSES: dict[int, str] = {
    401: "the admin token is missing or wrong (`Authorization: Bearer <token>`)",
    403: "admin routes are disabled (no admin token is configured), or a state change "
         "came from a web page whose origin is not allowed",
    404: "what the request names does not exist",
    408: "the body arrived too slowly",
    409: "the request conflicts with the current state",
    413: "the body is larger than max_body_bytes",
    422: "the body or a parameter is invalid; `field` names it",
    503: "overloaded, no champion loaded, or the database is unavailable; retry after "
         "Retry-After",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The ``responses=`` of a route that can answer these error statuses."""
    return {status: {"model": ErrorResponse, "description": ERROR_CAUSES[status]}
            for status in statuses}


# ---------------------------------------------------------------------- shared shapes
class Slot(Closed):
    version: int
    queue_depth: int


class Shares(Closed):
    champion: float
    candidate: float
    shadow: float


class TrafficSplit(Closed):
    mode: TrafficMode
    weight: float
    shadow_fraction: float


class Traffic(TrafficSplit):
    shares: Shares


class TrafficPoint(Traffic):
    at: float


class LoopStatus(Closed):
    state: LoopStateName
    run_id: str | None
    cooldown_until: float | None


class State(Closed):
    model: str
    generation: int
    champion: Slot | None
    candidate: Slot | None
    traffic: Traffic
    alarms: int = Field(description="open alarms (since the last promotion)")
    loop: LoopStatus
    newer_format_workers: dict[str, int] = Field(
        description="worker id → drift format version of the workers a newer driftloop "
                    "runs, left out of the drift view until the drift leader runs it too "
                    "(a rolling upgrade not finished); empty with one process")


class FeatureDrift(Closed):
    name: str
    kind: Literal["numeric", "categorical"]
    count: int
    missing: int
    reference_count: int
    ks_statistic: float | None
    ks_pvalue: float | None
    chi2_statistic: float | None
    chi2_pvalue: float | None
    psi: float | None
    js_distance: float | None
    total_variation: float | None
    effect: float | None
    significant: bool
    drifted: bool
    bins: list[str] = Field(description="labels of the PSI/JS bins")
    reference_histogram: list[int]
    current_histogram: list[int]
    chi2_dof: int
    bins_used: int
    inflation: float
    missing_inflation: float
    reference_missing: int
    missing_pvalue: float | None
    missing_chi2: float | None
    missing_psi: float | None
    missing_js: float | None
    missing_effect: float | None
    missing_drifted: bool
    pvalue: float | None
    adjusted_pvalue: float | None
    missing_share: float


class Report(Closed):
    """A drift evaluation; the merged report of several workers adds the leader's keys."""

    features: dict[str, FeatureDrift]
    output: FeatureDrift | None
    window_size: int
    window_fill: float
    pane_id: int | None
    evaluated_at: float
    drifted: bool
    drifted_features: list[str]
    drift_share: float
    level: float | None
    output_source: str | None
    warming_up: bool
    workers: int | None = None
    worker_ids: list[str] | None = None
    rejected_workers: list[str] | None = None
    newer_format_workers: dict[str, int] | None = Field(
        None, description="workers whose window is in a newer format than the leader reads "
                          "(worker id: format version): a rolling upgrade half done")
    leader_id: str | None = None
    evaluated_pane_id: int | None = None
    updated_at: float | None = None


class PointStats(Closed):
    psi: float | None
    js: float | None
    ks: float | None
    drifted: bool


class DriftPoint(Closed):
    at: float
    pane_id: int | None = Field(description="with several workers: the pane the leader "
                                            "evaluated")
    drift_share: float
    drifted: bool
    features: dict[str, PointStats]
    output: PointStats | None


class Alarm(Closed):
    id: str
    update: int = Field(description="0 for the alarm that opens an episode, then counts up")
    detected_at: float
    events_seen: int
    drifted_features: list[str]
    output_drifted: bool
    drift_share: float


class DriftEvent(Alarm):
    report: Report


class Thresholds(Closed):
    psi: float
    js: float
    ks: float


class LabelShare(Closed):
    """Whether labels arrive as often for every predicted class (evaluation/horizon.py)."""

    shares: dict[str, float] = Field(
        description="labelled share of the paired requests, by the champion's predicted "
                    "class")
    pvalue: float | None
    diverging: bool = Field(description="the shares differ (chi-square at 0.001): labels "
                                        "of one outcome arrive later than the others")


class ShadowEvidence(Open):
    candidate_version: int
    n: int
    mean_delta: float | None
    lower: float | None
    upper: float | None
    min_delta: float
    alpha: float
    verdict: Literal["continue", "promote", "reject"]
    label_share: LabelShare | None = Field(
        None, description="null while no paired request is label_horizon old, or when the "
                          "predictions are not classes")
    warnings: list[str] = Field(default_factory=list,
                                description="what makes this evidence doubtful")


class Shadow(ShadowEvidence):
    run_id: str


class Evidence(Open):
    holdout: dict[str, Any] | None = None
    shadow: ShadowEvidence | None = None


class RunTrigger(Closed):
    kind: Literal["drift", "manual", "schedule"]
    reason: str
    at: float
    drift_event_id: str | None


class Transition(Closed):
    model_config = ConfigDict(extra="forbid", serialize_by_alias=True, validate_by_name=True)
    from_: LoopStateName | None = Field(alias="from")
    to: LoopStateName
    at: float
    reason: str | None


class Run(Closed):
    id: str
    model: str
    state: LoopStateName
    active: bool
    outcome: Literal["promoted", "rejected", "failed", "rolled_back"] | None
    reason: str | None
    trigger: RunTrigger
    attached_triggers: int = Field(description="triggers that arrived during the run")
    started_at: float
    finished_at: float | None
    snapshot_id: str | None
    parent_version: int | None
    candidate_version: int | None
    transitions: list[Transition]
    stages: dict[str, float] = Field(description="seconds spent per finished stage")
    evidence: Evidence
    log_tail: list[str] = Field(
        default_factory=list, description="the last trainer log lines; only with the admin "
                                          "token")


class Version(Closed):
    name: str
    version: int
    status: Literal["champion", "candidate", "archived", "rejected"]
    created_at: str
    parent_version: int | None
    dataset_id: str | None
    dataset_sha256: str | None
    run_id: str | None
    drift_event_id: str | None
    params: dict[str, Any]
    metrics: dict[str, Any]
    artifact_path: str
    sha256: str
    size_bytes: int
    framework: str
    code_revision: str | None


class LineageNode(Open):
    """Model nodes carry the Version keys; dataset nodes dataset_id, sha256, rows, ..."""

    id: str
    type: Literal["model", "dataset", "run", "drift_event"]


class LineageEdge(Closed):
    source: str
    target: str
    kind: Literal["parent", "trained_on", "produced", "triggered"]


class LineageGraph(Closed):
    nodes: list[LineageNode]
    edges: list[LineageEdge]


class Lineage(Closed):
    model: str
    versions: list[Version]
    lineage: LineageGraph


class MetricsPoint(Closed):
    at: float
    requests_per_s: float
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    errors_per_s: float
    observed: int
    dropped: int
    labelled: int = Field(description="counted every 5 s")


class LogLine(Closed):
    run_id: str
    line: str
    at: float


# ---------------------------------------------------------------------- HTTP responses
class Health(Closed):
    status: Literal["ok", "starting"]
    champion: int | None


class Ready(Closed):
    status: Literal["ready"]
    champion: int


class NotReady(Closed):
    status: Literal["not ready"]
    reason: str


class Prediction(Closed):
    request_id: str
    model_version: int
    slot: SlotName
    output: Any = Field(description="what the model returned for this row")


class Predictions(Closed):
    predictions: list[Prediction]


class FeedbackAnswer(Closed):
    request_id: str
    labelled_at: str
    previous_label: Any = Field(description="the label this one replaced, or null")


class FeedbackBatchAnswer(Closed):
    applied: int
    unknown: list[str]
    conflicts: list[str]


class Observations(Closed):
    queued: int
    dropped: int
    observed: int


class RouterCounters(Closed):
    candidate_errors: int
    candidate_timeouts: int
    fallbacks: int
    mirrored: int
    mirrors_shed: int
    swaps: int
    by_slot: dict[str, int]


class LogHealth(Closed):
    """The prediction log's backlog, journal and size (``enabled`` false: not logging)."""

    enabled: Literal[False] | None = None
    pending: int | None = None
    written: int | None = None
    dropped: int | None = None
    duplicates: int | None = None
    failures: int | None = None
    quarantined: int | None = None
    stuck_seconds: float | None = None
    last_error: str | None = None
    durability: str
    journal_unsaved: int
    rows: int | None
    pruned: int


class Worker(Closed):
    pid: int
    instance: str
    drives_loop: bool


class ServerState(State):
    """The dashboard feed's state, and what only the process that answered knows."""

    queues: dict[str, int]
    observations: Observations
    router: RouterCounters
    prediction_log: LogHealth
    worker: Worker


class DriftView(Closed):
    report: Report | None
    alarms: list[DriftEvent]


class Runs(Closed):
    model: str
    runs: list[Run]


class RetrainAnswer(Closed):
    run_id: str | None
    attached: bool
    ignored: str | None


class ChampionAnswer(Closed):
    champion: Version


class TrafficAnswer(Closed):
    traffic: TrafficSplit
    modes: list[TrafficMode]


# ---------------------------------------------------------------------- WebSocket frames
class DriftDelta(Closed):
    point: DriftPoint | None
    report: Report
    alarms: list[Alarm]


class DriftState(Closed):
    report: Report | None
    history: list[DriftPoint]
    alarms: list[Alarm] = Field(description="newest first")
    thresholds: Thresholds


class TrafficState(Closed):
    current: Traffic
    history: list[TrafficPoint]
    shadow: Shadow | None


class TrafficDelta(Closed):
    current: Traffic
    point: TrafficPoint
    shadow: Shadow | None


class MetricsHistory(Closed):
    history: list[MetricsPoint]


class Snapshot(Closed):
    """Everything a client holds; histories oldest first, ``drift.alarms`` newest first."""

    model: str
    state: State
    drift: DriftState
    runs: list[Run]
    lineage: Lineage
    traffic: TrafficState
    metrics: MetricsHistory


class Pong(Closed):
    pass


class Envelope(Closed):
    seq: int = Field(description="one more per frame sent to this client")
    at: float = Field(description="the server's clock, epoch seconds")


class SnapshotFrame(Envelope):
    type: Literal["snapshot"]
    data: Snapshot


class DriftFrame(Envelope):
    type: Literal["drift"]
    data: DriftDelta


class StateFrame(Envelope):
    type: Literal["state"]
    data: State


class RunFrame(Envelope):
    type: Literal["run"]
    data: Run


class LogFrame(Envelope):
    type: Literal["log"]
    data: LogLine


class LineageFrame(Envelope):
    type: Literal["lineage"]
    data: Lineage


class TrafficFrame(Envelope):
    type: Literal["traffic"]
    data: TrafficDelta


class MetricsFrame(Envelope):
    type: Literal["metrics"]
    data: MetricsPoint


class PongFrame(Envelope):
    type: Literal["pong"]
    data: Pong


Frame = Annotated[SnapshotFrame | DriftFrame | StateFrame | RunFrame | LogFrame
                  | LineageFrame | TrafficFrame | MetricsFrame | PongFrame,
                  Field(discriminator="type")]
FRAME: TypeAdapter[Any] = TypeAdapter(Frame)
#: The data model of each frame type.
FRAME_DATA: dict[str, type[BaseModel]] = {
    get_args(m.model_fields["type"].annotation)[0]: m.model_fields["data"].annotation
    for m in get_args(get_args(Frame)[0])}


def frame_data(kind: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` of a ``kind`` frame as the contract serialises it (keys a client may not
    rely on dropped, non-finite numbers null). A frame that does not match is logged and
    sent as it is: a wrong frame is a bug to fix, and a dashboard with a partial view is
    better than one without a feed."""
    try:
        checked: dict[str, Any] = FRAME_DATA[kind].model_validate(data).model_dump(
            mode="json", exclude_unset=True)
    except ValidationError as exc:
        logger.error("a %s frame does not match the contract (serving/schemas.py): %s",
                     kind, exc)
        return data
    return checked


class DeltaFrames:
    """Each bus event's delta, built and checked once however many clients relay it.

    ``build`` turns an event into ``{"type": ..., "data": ...}`` or None; the last
    ``size`` results are kept by the event's bus sequence number."""

    def __init__(self, build: Callable[[Event], dict[str, Any] | None],
                 size: int = 256) -> None:
        self.build = build
        self.size = size
        self._recent: OrderedDict[int, tuple[Event, dict[str, Any] | None]] = OrderedDict()

    def __call__(self, event: Event) -> dict[str, Any] | None:
        cached = self._recent.get(event.seq)
        if cached is not None and cached[0] is event:
            return cached[1]
        frame = self.build(event)
        if frame is not None:
            frame = {"type": frame["type"], "data": frame_data(frame["type"], frame["data"])}
        self._recent[event.seq] = (event, frame)
        while len(self._recent) > self.size:
            self._recent.popitem(last=False)
        return frame
