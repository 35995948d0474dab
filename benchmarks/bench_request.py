"""The request body every server in ``serve_bench.py`` validates: the served model's
features, as driftloop's generated request model has them. One module, imported by the
bench's own FastAPI apps and by ``bentoml_service.py`` (which runs in BentoML's virtual
environment, so it holds nothing but pydantic)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Features(BaseModel):
    model_config = ConfigDict(extra="forbid")
    mean_radius: float = Field(alias="mean radius", allow_inf_nan=False)
    mean_texture: float = Field(alias="mean texture", allow_inf_nan=False)
    mean_smoothness: float = Field(alias="mean smoothness", allow_inf_nan=False)
    worst_area: float = Field(alias="worst area", allow_inf_nan=False)
    size: str = Field(strict=True)


class PredictRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    features: Features
    request_id: str | None = Field(None, min_length=1, max_length=64)
    routing_key: str | None = Field(None, min_length=1, max_length=200)
