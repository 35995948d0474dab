"""The FastAPI application: ``create_app(settings)``.

Request bodies are pydantic models built from the champion's feature schema, so ``/docs``
shows the real fields, and a bad body gets a 4xx naming the field: never a 500. Every
string is checked for characters the database cannot store (NUL, lone surrogates), so one
request can never poison the prediction log's write batch. Every answer, error and
``/ws`` frame is a model of :mod:`driftloop.serving.schemas`, the contract the OpenAPI
document and the dashboard's types are generated from.

Admin endpoints need ``Authorization: Bearer <admin token>``; without a token they are
disabled unless ``insecure_no_admin_auth`` is set (:mod:`driftloop.serving.auth`). A
database that cannot be reached gives 503 with Retry-After, never a 500. Every middleware
is plain ASGI (:mod:`~driftloop.serving.auth`, :mod:`~driftloop.serving.limits`,
:mod:`~driftloop.serving.errors`, :mod:`~driftloop.serving.request_metrics`). Only
driftloop's own client-facing errors become a 4xx; anything else a route lets escape is a
500 with the error envelope (:mod:`driftloop.serving.errors`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, StrictBool, create_model
from sqlalchemy import exc as sa_exc
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Mount
from starlette.types import Scope

from driftloop.config import Settings
from driftloop.data.predictions import (
    FeedbackBatchResult,
    FeedbackConflictError,
    PredictionInputError,
    PredictionRecord,
    UnknownRequestError,
)
from driftloop.data.retention import Retention
from driftloop.errors import DriftloopError
from driftloop.registry import ModelNotFoundError, PromotionConflictError
from driftloop.serving import auth, schemas
from driftloop.serving.batching import QueueFullError
from driftloop.serving.compose import build_service
from driftloop.serving.errors import ErrorGuard, error_response
from driftloop.serving.json_route import DirectRoutes, JsonBodyRoute, json_body_routes
from driftloop.serving.limits import BodyGuard
from driftloop.serving.log_health import LogMetrics, log_state
from driftloop.serving.reference import FeatureSpec
from driftloop.serving.request_metrics import Mounted, RequestMetrics, note_answers
from driftloop.serving.router import MODES, Traffic
from driftloop.serving.schemas import (
    AdminAction,
    FeedbackBatchRequest,
    FeedbackRequest,
    Number,
    RetrainRequest,
    Text,
    TrafficRequest,
    errors,
)
from driftloop.serving.service import ModelService
from driftloop.serving.view import state_of

logger = logging.getLogger(__name__)

#: The /predict feature types by FeatureSpec kind.
FIELD_TYPES: dict[str, Any] = {"number": Number, "string": Text, "boolean": StrictBool}
#: Database errors that say the database, not the request, is at fault: 503, retry.
UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.DisconnectionError,
               sa_exc.TimeoutError)


class ApiError(DriftloopError):
    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers


def request_models(features: list[FeatureSpec], max_rows: int) -> tuple[type[BaseModel],
                                                                        type[BaseModel]]:
    """The /predict and /predict/batch bodies for this feature schema."""
    # null is accepted only where the training data had missing values: a model trained
    # without them would fail on one, which is the client's error, not the server's.
    fields: dict[str, Any] = {
        f.name: (FIELD_TYPES[f.kind] | None if f.nullable else FIELD_TYPES[f.kind], ...)
        for f in features}
    feature_model = create_model("Features", __config__=ConfigDict(extra="forbid"), **fields)
    predict = create_model(
        "PredictRequest", __config__=ConfigDict(extra="forbid"),
        features=(feature_model, ...),
        request_id=(Text | None, Field(None, min_length=1, max_length=64)),
        routing_key=(Text | None, Field(None, min_length=1, max_length=200)),
    )
    batch = create_model("PredictBatchRequest", __config__=ConfigDict(extra="forbid"),
                         rows=(list[predict], Field(..., min_length=1,  # type: ignore[valid-type]
                                                    max_length=max_rows)))
    return predict, batch


def create_app(settings: Settings, service: ModelService | None = None) -> FastAPI:
    """The driftloop server for ``settings``; the models load when the app starts."""
    service = service or build_service(settings)
    token = auth.configured_token(settings.admin_token, settings.admin_token_file)
    if not token:
        logger.warning("no admin token is configured: the admin routes are %s",
                       "OPEN to anyone who can reach this server"
                       if settings.insecure_no_admin_auth else "disabled (403)")
    if settings.trusted_types:
        from driftloop.models.sklearn import trust_types  # noqa: PLC0415 - loads skops

        trust_types(settings.trusted_types)
    retention = Retention(service.log, max_age_days=settings.retention_days,
                          max_rows=settings.retention_rows,
                          interval=settings.retention_interval)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        _add_predict_routes(app, service, settings, direct)
        _add_dashboard(app)
        if settings.log_predictions:
            retention.start()
        yield
        await asyncio.to_thread(retention.stop)
        await service.stop()

    app = FastAPI(title="driftloop", version="0.1.0", lifespan=lifespan,
                  description="Model server with drift detection, shadow evaluation and "
                              "zero-downtime promotion.")
    app.state.service = service
    app.state.retention = retention
    _add_error_handlers(app)
    # Plain ASGI middleware; the last added runs first: the metrics (which see every
    # answer), the Origin check, the body, the guard that answers escaped errors, then
    # the prediction routes' way past the router (filled once the routes exist).
    direct: dict[str, JsonBodyRoute] = {}
    app.add_middleware(DirectRoutes, routes=direct, exception_handlers=app.exception_handlers)
    app.add_middleware(ErrorGuard)
    app.add_middleware(BodyGuard, max_bytes=settings.max_body_bytes,
                       timeout=settings.body_timeout)
    app.add_middleware(auth.OriginGuard, allowed=settings.allowed_origins)
    app.add_middleware(RequestMetrics, metrics=lambda: service.publisher.metrics)
    require_admin = auth.admin_guard(token, insecure=settings.insecure_no_admin_auth,
                                     error=lambda status, message, headers: ApiError(
                                         status, message, "Authorization", headers=headers))
    log_metrics = LogMetrics(service, retention)

    @app.get("/healthz", response_model=schemas.Health)
    async def healthz() -> dict[str, Any]:
        champion = service.router.champion
        return {"status": "ok" if champion else "starting",
                "champion": champion.version if champion else None}

    @app.get("/readyz", response_model=schemas.Ready,
             responses={503: {"model": schemas.NotReady,
                              "description": "not ready: no champion loaded yet"}})
    async def readyz() -> JSONResponse:
        """Readiness, for load balancers and Kubernetes: 200 only once the champion is
        loaded (sha256-verified) and warmed, which is when it takes its slot; 503 before.
        /healthz stays liveness (the process answers)."""
        champion = service.router.champion
        if champion is None:
            return JSONResponse({"status": "not ready", "reason": "no champion loaded yet"},
                                status_code=503)
        return JSONResponse({"status": "ready", "champion": champion.version})

    @app.post("/feedback", response_model=schemas.FeedbackAnswer,
              responses=errors(403, 404, 408, 409, 413, 422, 503))
    async def feedback(body: FeedbackRequest) -> dict[str, Any]:
        def label() -> Any:
            return service.log.feedback(body.request_id, body.label, overwrite=body.overwrite)

        try:
            try:
                result = await _in_thread(label)
            except UnknownRequestError:  # answered, perhaps, but not logged yet
                await service.settle()
                result = await _in_thread(label)
        except UnknownRequestError as exc:
            raise ApiError(404, str(exc), "request_id") from exc
        except FeedbackConflictError as exc:
            raise ApiError(409, f"{exc} (send overwrite=true to replace it)", "label") from exc
        except PredictionInputError as exc:
            raise ApiError(422, str(exc), "label") from exc
        return {"request_id": body.request_id, "labelled_at": result.labelled_at.isoformat(),
                "previous_label": result.previous_label}

    @app.post("/feedback/batch", response_model=schemas.FeedbackBatchAnswer,
              responses=errors(403, 408, 413, 422, 503))
    async def feedback_batch(body: FeedbackBatchRequest) -> dict[str, Any]:
        """Many labels at once; unknown and already-labelled ids are reported, not failed.
        Ids not logged yet get one more try once the observation path has caught up."""
        items = [(item.request_id, item.label) for item in body.items]
        try:
            result = await _in_thread(service.log.feedback_many, items)
            if result.unknown:  # answered, perhaps, but not logged yet
                await service.settle()
                unknown = set(result.unknown)
                again = await _in_thread(service.log.feedback_many,
                                         [i for i in items if i[0] in unknown])
                result = FeedbackBatchResult(result.applied + again.applied, again.unknown,
                                             result.conflicts + again.conflicts)
        except PredictionInputError as exc:
            raise ApiError(422, str(exc), "items") from exc
        return {"applied": len(result.applied), "unknown": list(result.unknown),
                "conflicts": list(result.conflicts)}

    @app.websocket("/ws")
    async def live(websocket: WebSocket) -> None:
        """The dashboard's feed: a snapshot, then typed deltas (dashboard/PROTOCOL.md)."""
        await service.hub.serve(websocket)

    @app.get("/metrics", include_in_schema=False)
    async def metrics(request: Request) -> Response:
        log_metrics.update()
        body, content_type = service.render_metrics(request.headers.get("accept"))
        return Response(body, media_type=content_type)

    @app.get("/api/state", response_model=schemas.ServerState, response_model_exclude_unset=True,
             responses=errors(503))
    async def state() -> dict[str, Any]:
        """The state the dashboard's feed shows (the same view as its state frames) and
        what only the process that answers knows: its queues, counters, prediction log
        and worker."""
        router, observer = service.router, service.monitor.observer
        return {
            **await state_of(service.hub.view),
            "queues": {name: s.queue.depth for name, s in (("champion", router.champion),
                                                          ("candidate", router.candidate)) if s},
            "observations": {"queued": observer.queue.qsize() if observer else 0,
                             **service.hub.view.observations()},
            "router": dict(vars(router.counters)),
            "prediction_log": log_state(service, retention),
            "worker": {"pid": os.getpid(), "instance": service.monitor.instance,
                       "drives_loop": service.leads()},
        }

    @app.get("/api/drift", response_model=schemas.DriftView, response_model_exclude_unset=True,
             responses=errors(503))
    async def drift() -> dict[str, Any]:
        return {"report": await _in_thread(service.drift_report),
                "alarms": [e.to_dict() for e in service.alarms.open[-20:]]}

    @app.get("/api/models", response_model=schemas.Lineage, responses=errors(503))
    async def models() -> dict[str, Any]:
        return await asyncio.to_thread(service.hub.view.lineage)

    @app.get("/api/runs", response_model=schemas.Runs, response_model_exclude_unset=True,
             responses=errors(422, 503))
    async def runs(request: Request,
                   limit: Annotated[int, Query(ge=1, le=200)] = 20) -> dict[str, Any]:
        """The latest retraining runs. Without the admin token, training logs are left out
        and paths and tracebacks are cut from the messages: they describe the server."""
        listed = await _in_thread(service.orchestrator.runs.list, limit)
        full = auth.is_admin(request.headers.get("authorization"), token)
        return {"model": service.name,
                "runs": [r.to_dict() if full else auth.public_run(r.to_dict())
                         for r in listed]}

    @app.post("/api/retrain", status_code=202, dependencies=[Depends(require_admin)],
              response_model=schemas.RetrainAnswer,
              responses=errors(401, 403, 408, 413, 422, 503))
    async def retrain(body: RetrainRequest | None = None) -> dict[str, Any]:
        reason = body.reason if body else "requested by an admin"
        result = await _in_thread(service.orchestrator.trigger, "manual", reason)
        return {"run_id": result.run.id if result.run else None, "attached": result.attached,
                "ignored": result.ignored}

    @app.post("/api/models/{version}/promote", dependencies=[Depends(require_admin)],
              response_model=schemas.ChampionAnswer,
              responses=errors(401, 403, 404, 408, 409, 413, 422, 503))
    async def promote(version: Annotated[int, PathParam(ge=1, le=2**31 - 1)],
                      body: AdminAction | None = None) -> dict[str, Any]:
        try:
            promoted = await _in_thread(service.registry.promote_candidate, service.name,
                                        version, actor="admin", reason=body and body.reason)
        except ModelNotFoundError as exc:
            raise ApiError(404, str(exc), "version") from exc
        except PromotionConflictError as exc:
            raise ApiError(409, str(exc), "version") from exc
        await service.refresh()
        return {"champion": promoted.to_dict()}

    @app.post("/api/rollback", dependencies=[Depends(require_admin)],
              response_model=schemas.ChampionAnswer,
              responses=errors(401, 403, 408, 409, 413, 422, 503))
    async def rollback(body: AdminAction | None = None) -> dict[str, Any]:
        try:
            champion = await _in_thread(service.registry.rollback, service.name, actor="admin",
                                        reason=body and body.reason)
        except PromotionConflictError as exc:
            raise ApiError(409, str(exc)) from exc
        await service.refresh()
        return {"champion": champion.to_dict()}

    @app.put("/api/traffic", dependencies=[Depends(require_admin)],
             response_model=schemas.TrafficAnswer,
             responses=errors(401, 403, 408, 413, 422, 503))
    async def traffic(body: TrafficRequest) -> dict[str, Any]:
        split = Traffic(body.mode, body.weight, body.shadow_fraction)
        await _in_thread(service.registry.set_traffic, service.name,
                         {"mode": split.mode, "weight": split.weight,
                          "shadow_fraction": split.shadow_fraction},
                         actor="admin", reason=body.reason)
        await service.refresh()
        return {"traffic": vars(service.router.traffic), "modes": list(MODES)}

    return app


STATIC = Path(__file__).parent / "static"


class _Dashboard(Mount):
    """The dashboard's files, for GET and HEAD only. Mounted at ``/`` it matches every
    path, so a wrong method on an API route (``DELETE /predict``) got the static files'
    405 "allow: GET, HEAD" instead of the route's own "allow: POST"."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] == "http" and scope["method"] not in ("GET", "HEAD"):
            return Match.NONE, {}
        return super().matches(scope)


def _add_dashboard(app: FastAPI) -> None:
    """The built dashboard at ``/``, mounted last so it never shadows an API route. Without
    a build (``make run`` builds it) ``/`` says how to get one."""
    if any(getattr(r, "name", None) == "dashboard" for r in app.router.routes):
        return
    if (STATIC / "index.html").is_file():
        app.router.routes.append(_Dashboard(
            "/", app=Mounted(StaticFiles(directory=STATIC, html=True), "/"), name="dashboard"))
        return

    @app.get("/", include_in_schema=False, name="dashboard")
    async def no_dashboard() -> dict[str, str]:
        return {"message": "the dashboard is not built: run `make run` (or `npm ci && npm run "
                           "build` in dashboard/); the API is at /docs"}


def _add_predict_routes(app: FastAPI, service: ModelService, settings: Settings,
                        direct: dict[str, JsonBodyRoute]) -> None:
    """Routes whose bodies depend on the champion's schema, added once it is known (and
    put in ``direct``, :class:`DirectRoutes`' table)."""
    if any(getattr(r, "path", None) == "/predict" for r in app.router.routes):
        return
    predict_model, batch_model = request_models(service.reference.features,
                                               settings.max_batch_rows)

    async def predict(body: Any, request: Request) -> dict[str, Any]:
        features = body.features.model_dump()
        answer = await _predict_one(service, body, features)
        await _journal(service, [(features, answer)])
        note_answers(request.scope, [answer])
        return answer

    async def predict_batch(body: Any, request: Request) -> dict[str, Any]:
        # All rows at once: admitted whole or refused whole (a refused batch leaves no
        # trace), they queue together and the BatchingQueue runs them as one batch.
        champion = service.router.champion
        if champion is None:
            raise ApiError(503, "no champion is loaded")
        rows = [(row, row.features.model_dump()) for row in body.rows]
        try:
            with champion.queue.admission(len(rows)):
                answers = list(await asyncio.gather(
                    *(_predict_one(service, row, features) for row, features in rows)))
        except QueueFullError as exc:
            service.requests.failed()
            raise ApiError(503, f"overloaded: {exc}; retry shortly") from exc
        await _journal(service, [(features, answer) for (_, features), answer
                                 in zip(rows, answers, strict=True)])
        note_answers(request.scope, answers)
        return {"predictions": answers}

    # The body types exist only now; FastAPI reads them from the (resolved) annotations.
    predict.__annotations__["body"] = predict_model
    predict_batch.__annotations__["body"] = batch_model

    answers = errors(403, 408, 413, 422, 503)
    others = list(app.router.routes)
    for path, endpoint, answer in (("/predict", predict, schemas.Prediction),
                                   ("/predict/batch", predict_batch, schemas.Predictions)):
        app.router.add_api_route(path, endpoint, methods=["POST"], response_model=answer,
                                 responses=answers, route_class_override=JsonBodyRoute)
    # First in the routing table: Starlette tries every route in turn, and matching the
    # twenty before them cost /predict ~20 us per request. (/openapi.json lists them first.)
    app.router.routes[:] = [*app.router.routes[len(others):], *others]
    direct.update(json_body_routes(app.router.routes))
    app.openapi_schema = None  # rebuild /openapi.json with the real fields


async def _predict_one(service: ModelService, body: Any, features: dict[str, Any]
                       ) -> dict[str, Any]:
    """One row (``body``, its ``features`` dumped once by the caller) through the router."""
    started = time.perf_counter()
    try:
        request_id, routed = await service.predict(features, body.request_id,
                                                   body.routing_key)
        service.requests.answered(time.perf_counter() - started)
    except QueueFullError as exc:
        service.requests.failed()
        raise ApiError(503, f"overloaded: {exc}; retry shortly") from exc
    except LookupError as exc:
        service.requests.failed()
        raise ApiError(503, str(exc)) from exc
    except (ValueError, TypeError) as exc:  # the model refused this row's values
        raise ApiError(422, f"the model cannot score these feature values: {exc}",
                       "features") from exc
    except Exception as exc:  # the model itself failed: not the client's fault, not a crash
        service.requests.failed()
        logger.exception("prediction failed")
        raise ApiError(503, f"the model failed to predict: {type(exc).__name__}") from exc
    return {"request_id": request_id, "model_version": routed.version, "slot": routed.slot,
            "output": routed.output}


async def _journal(service: ModelService,
                   answered: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """In a durable mode, journal the answered predictions (features, answer) before the
    answer goes out."""
    journal = service.monitor.journal
    if journal is None:
        return
    now = datetime.now(UTC)
    records = [PredictionRecord(a["request_id"], now, service.name, a["model_version"],
                                a["slot"], features, a["output"])
               for features, a in answered]
    try:
        await journal.commit(records)
    except OSError as exc:  # a full or read-only disk: the answer could not be made durable
        logger.error("journalling predictions failed: %s", exc)
        raise ApiError(503, "the prediction could not be journalled; retry shortly") from exc


async def _in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    return await asyncio.to_thread(fn, *args, **kwargs)


def _detail(err: Any) -> dict[str, Any]:
    """One validation error as ``{field, message}``; a body that is not JSON at all is
    the body's fault, at a position, not a field named by that position."""
    if err.get("type") == "json_invalid":
        position = err.get("loc", ("body", "?"))[-1]
        reason = err.get("ctx", {}).get("error", "JSON decode error")
        return {"field": "body", "message": f"not valid JSON ({reason} at character "
                                            f"{position})"}
    location = [str(p) for p in err.get("loc", ()) if p != "body"]
    return {"field": ".".join(location) or "body", "message": err.get("msg")}


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(_: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.field, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        details = [_detail(err) for err in exc.errors()]
        first = details[0] if details else {"field": "body", "message": "invalid body"}
        return error_response(422, f"{first['field']}: {first['message']}", first["field"],
                              details)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        """Starlette's own errors (no such route, method not allowed) in the envelope."""
        return error_response(exc.status_code, str(exc.detail), headers=dict(exc.headers or {}))

    async def unavailable(_: Request, exc: Exception) -> JSONResponse:
        logger.warning("database unavailable: %s", str(exc).splitlines()[0][:300])
        return error_response(503, "the database is unavailable; retry shortly")

    for kind in UNAVAILABLE:
        app.add_exception_handler(kind, unavailable)
