"""Every exception driftloop raises on purpose, under one root.

Catch :class:`DriftloopError` for all of them, or a kind below it. Each concrete class
stays importable from the module that raises it (``driftloop.registry``,
``driftloop.data.predictions``, ...); here are the kinds, and which classes are of which
kind. Classes that were a ``ValueError``, ``LookupError``, ``TypeError`` or
``RuntimeError`` before this tree still are, so older ``except`` clauses hold::

    DriftloopError
    ├── InputError (ValueError)           the caller's input is wrong: HTTP 422, naming the field
    │   ├── DriftInputError, DriftFormatError (── DriftFormatVersionError),
    │   │   IncompatibleDetectorError                       driftloop.drift
    │   ├── PredictionInputError, DuplicateRequestError     driftloop.data.predictions
    │   ├── SnapshotInputError                              driftloop.data.snapshots
    │   ├── TableReadError                                  driftloop.tables
    │   ├── PushError                                       driftloop.models.push
    │   ├── BodyTooLargeError                               driftloop.serving.limits
    │   └── UnsupportedModelError (TypeError)               driftloop.models.base
    ├── NotFoundError (LookupError)       no such thing: HTTP 404
    │   ├── ModelNotFoundError                              driftloop.registry
    │   ├── UnknownRequestError                             driftloop.data.predictions
    │   ├── SnapshotNotFoundError                           driftloop.data.snapshots
    │   └── ObjectMissingError                              driftloop.objectstore
    ├── ConflictError                     the state is not the one the action needs: HTTP 409
    │   ├── PromotionConflictError                          driftloop.registry
    │   ├── FeedbackConflictError                           driftloop.data.predictions
    │   ├── RunStateError (RuntimeError)                    driftloop.training.runs
    │   └── LeadershipLostError (RuntimeError)              driftloop.serving.drift_sync
    ├── UnavailableError                  not now, retry shortly: HTTP 503 with Retry-After
    │   ├── ServiceUnavailableError (RuntimeError)          driftloop.serving.reference
    │   └── QueueFullError (RuntimeError)                   driftloop.serving.batching
    ├── IntegrityError                    stored bytes are not what was written, or not
    │   │                                 trusted; nothing was loaded
    │   ├── ArtifactIntegrityError                          driftloop.registry
    │   ├── SnapshotIntegrityError                          driftloop.data.snapshots
    │   ├── CorruptObjectError (ValueError)                 driftloop.objectstore
    │   └── UntrustedArtifactError (ValueError)             driftloop.models.base
    ├── ConfigError                       a setting or the environment is wrong
    │   ├── SettingsError (ValueError)                      driftloop.config
    │   ├── SchemaTooNewError (RuntimeError)                driftloop.db.migrations
    │   ├── UnsupportedLocationError (ValueError)           driftloop.objectstore
    │   └── AdminAuthError (RuntimeError)                   driftloop.serving.auth
    ├── ModelError (RuntimeError)         a model or a trainer failed, not the caller
    │   ├── TrainerError ── TrainingTimeoutError            driftloop.training
    │   └── GeminiError ── GeminiCredentialsError, GeminiRequestError, GeminiAnswerError
    │                                                       driftloop.models.gemini
    └── ApiError                          an HTTP answer with its own status   driftloop.serving.app

Two bases group errors by where they come from rather than by kind, and sit beside the
kinds: ``RegistryError`` (every registry error) and ``PredictionLogError`` (every
prediction log error).

Only the server maps kinds to HTTP statuses (:mod:`driftloop.serving.errors`): an
:class:`InputError` is the client's fault and gets a 4xx; anything else that escapes a
route, a bare ``ValueError`` or ``KeyError`` from a bug included, is a 500.

The root and :class:`InputError` are defined in :mod:`driftloop.drift.errors`, because
the drift package imports nothing from the rest of driftloop and its errors must still be
real subclasses (an ``except`` clause ignores virtual ones); that module says more.
"""

from __future__ import annotations

from driftloop.drift.errors import DriftloopError, InputError

__all__ = [
    "ConfigError",
    "ConflictError",
    "DriftloopError",
    "InputError",
    "IntegrityError",
    "ModelError",
    "NotFoundError",
    "UnavailableError",
]


class NotFoundError(DriftloopError, LookupError):
    """No such model, version, request, snapshot or object."""


class ConflictError(DriftloopError):
    """The state is not the one the action needs (lost a race, already labelled, ...)."""


class UnavailableError(DriftloopError):
    """The service cannot do it now (no champion yet, a full queue): retry shortly."""


class IntegrityError(DriftloopError):
    """Stored bytes do not match what was written, or hold what will not be trusted."""


class ConfigError(DriftloopError):
    """A setting or the environment is wrong; the message names it and what to do."""


class ModelError(DriftloopError, RuntimeError):
    """A model or a trainer failed for a reason that is not the caller's input."""
