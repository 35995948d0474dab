"""BatchingWriter: the server's path into the prediction log, off the request thread."""

from __future__ import annotations

import itertools
import json
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path

import sqlalchemy as sa

from driftloop.data.predictions import (
    DuplicateRequestError,
    PredictionLog,
    PredictionRecord,
    normalise_record,
)

logger = logging.getLogger(__name__)


class BatchingWriter:
    """Buffer predictions in memory and write them to a :class:`PredictionLog` in batches.

    Design: :meth:`add` only validates the record and appends it to an in-memory deque
    under a condition variable, so a request thread never waits on the database. One
    daemon thread sleeps on that condition and writes a batch with
    :meth:`PredictionLog.append` when ``max_batch`` records are buffered or the oldest
    has waited ``max_delay`` seconds. A record leaves the buffer only after the
    transaction that wrote it committed: when ``append`` fails, the batch stays at the
    front, ``failures`` and ``last_error`` record why, and the thread retries after
    ``retry_delay`` seconds. The buffer is bounded: once it holds ``max_buffer`` records
    :meth:`add` refuses new ones (returns False and counts them in ``dropped``) instead
    of growing without limit while the database is down.

    A record whose request_id is already stored (a retried request, or a batch whose
    commit succeeded but whose acknowledgement was lost) is dropped from the buffer and
    counted in ``duplicates``: it is in the database, so nothing is lost.

    Only a failure that says the *database* is unwell (a lost connection, a full or
    read-only disk: :func:`transient`) is retried. Any other failure may be one record's
    fault, so the batch is then written record by record, and a record that fails alone is
    **quarantined**: appended as one JSON line (with the error) to the ``quarantine``
    file, counted in ``quarantined`` and logged, and never retried; its neighbours are
    written. One bad record therefore can never stop the log. While writes keep failing,
    ``stuck_for`` says for how long (the server shows it in ``/api/state`` and
    ``/metrics``). ``on_done`` is called with the request_ids that left the buffer for good
    (written, already stored, or quarantined), so a journal can forget them.

    :meth:`flush` writes everything buffered on the caller's thread and raises if that
    fails; :meth:`close` stops the thread and flushes. The thread is a daemon, so
    records still buffered when the process exits without :meth:`close` are lost: call
    it (or use the writer as a context manager) on shutdown.
    """

    def __init__(
        self,
        log: PredictionLog,
        *,
        max_batch: int = 500,
        max_delay: float = 1.0,
        max_buffer: int = 100_000,
        retry_delay: float = 1.0,
        quarantine: Path | None = None,
        on_done: Callable[[Sequence[str]], None] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_buffer < max_batch:
            raise ValueError(f"max_buffer ({max_buffer}) must be >= max_batch ({max_batch})")
        if max_delay < 0 or retry_delay < 0:
            raise ValueError("max_delay and retry_delay must be >= 0")
        self._log = log
        self._max_batch = max_batch
        self._max_delay = max_delay
        self._max_buffer = max_buffer
        self._retry_delay = retry_delay
        self._quarantine_path = quarantine
        self._on_done = on_done
        self._cond = threading.Condition()
        self._write_lock = threading.Lock()  # one append in flight, so batches stay in order
        self._buffer: deque[tuple[float, PredictionRecord]] = deque()  # (arrival, record)
        self._ids: set[str] = set()
        self._closed = False
        self._retry_at = 0.0
        self._written = 0
        self._dropped = 0
        self._duplicates = 0
        self._failures = 0
        self._quarantined = 0
        self._stuck_since: float | None = None
        self._last_error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, name="driftloop-prediction-writer", daemon=True
        )
        self._thread.start()

    # ------------------------------------------------------------------ public

    def add(self, record: PredictionRecord) -> bool:
        """Buffer ``record``; False (and ``dropped`` += 1) when the buffer is full.

        Raises :class:`PredictionInputError` for an invalid record and
        :class:`DuplicateRequestError` for a request_id that is already buffered, so a
        bad record is refused here rather than poisoning a batch later.
        """
        clean = normalise_record(record)
        with self._cond:
            if self._closed:
                raise RuntimeError("BatchingWriter is closed")
            if clean.request_id in self._ids:
                raise DuplicateRequestError([clean.request_id], already_stored=False)
            if len(self._buffer) >= self._max_buffer:
                self._dropped += 1
                return False
            self._buffer.append((time.monotonic(), clean))
            self._ids.add(clean.request_id)
            if len(self._buffer) in (1, self._max_batch):
                self._cond.notify_all()
        return True

    def flush(self) -> int:
        """Write every record buffered at the time of the call; return how many it wrote.

        Runs on the caller's thread, ignoring ``retry_delay``. If ``append`` fails the
        error propagates and the unwritten records stay buffered.
        """
        with self._cond:
            remaining = len(self._buffer)
        written = 0
        while remaining > 0:
            done, discarded = self._write_batch(only_if_due=False)
            if done == discarded == 0:
                break
            written += done
            remaining -= done + discarded
        return written

    def close(self) -> None:
        """Stop the background thread, then :meth:`flush` (which raises if it fails).

        After a failed close the records are still buffered and :meth:`flush` may be
        called again; :meth:`add` raises from now on.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join()
        self.flush()

    def __enter__(self) -> BatchingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def pending(self) -> int:
        """Records buffered and not yet written."""
        with self._cond:
            return len(self._buffer)

    @property
    def written(self) -> int:
        return self._written

    @property
    def dropped(self) -> int:
        """Records refused by :meth:`add` because the buffer was full."""
        return self._dropped

    @property
    def duplicates(self) -> int:
        """Buffered records discarded because their request_id was already stored."""
        return self._duplicates

    @property
    def failures(self) -> int:
        """Failed ``append`` calls (each retried later)."""
        return self._failures

    @property
    def last_error(self) -> BaseException | None:
        return self._last_error

    @property
    def quarantined(self) -> int:
        """Records that failed alone and were written to the quarantine file instead."""
        return self._quarantined

    @property
    def stuck_for(self) -> float:
        """Seconds since the first of the failures that have not been followed by a
        successful write (0 while writes succeed)."""
        since = self._stuck_since
        return 0.0 if since is None else max(0.0, time.monotonic() - since)

    def state(self) -> dict[str, object]:
        """The writer's health, as ``/api/state`` shows it."""
        error = self._last_error
        return {"pending": self.pending, "written": self._written, "dropped": self._dropped,
                "duplicates": self._duplicates, "failures": self._failures,
                "quarantined": self._quarantined, "stuck_seconds": round(self.stuck_for, 3),
                "last_error": None if error is None or self._stuck_since is None
                else f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"}

    # ------------------------------------------------------------------ internals

    def _due_in(self) -> float | None:
        """Seconds until the next batch is due (<= 0: now; None: buffer empty). Under lock."""
        if not self._buffer:
            return None
        now = time.monotonic()
        due = now if len(self._buffer) >= self._max_batch else self._buffer[0][0] + self._max_delay
        return max(due, self._retry_at) - now

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._closed:
                        return  # close() flushes on its own thread
                    wait = self._due_in()
                    if wait is not None and wait <= 0:
                        break
                    self._cond.wait(wait)
            try:
                self._write_batch(only_if_due=True)
            except Exception as exc:  # recorded in failures/last_error; retried after retry_delay
                logger.warning("prediction log write failed (%d buffered, failing for %.0f s); "
                               "will retry: %s: %s", self.pending, self.stuck_for,
                               type(exc).__name__, str(exc).splitlines()[0][:200])

    def _write_batch(self, *, only_if_due: bool) -> tuple[int, int]:
        """Append the oldest batch; return (written, discarded: already stored or
        quarantined)."""
        with self._write_lock:
            with self._cond:
                if only_if_due:
                    wait = self._due_in()
                    if self._closed or wait is None or wait > 0:
                        return 0, 0  # someone else wrote it meanwhile
                batch = [record for _, record in itertools.islice(self._buffer, self._max_batch)]
            if not batch:
                return 0, 0
            try:
                self._log.append(batch, normalised=True)
            except DuplicateRequestError as exc:
                if not exc.already_stored or not exc.request_ids:
                    self._record_failure(exc)
                    raise
                return 0, self._discard(set(exc.request_ids))
            except Exception as exc:
                if transient(exc):
                    self._record_failure(exc)
                    raise
                return self._write_singly(batch, exc)
            self._remove(batch)
            with self._cond:
                self._written += len(batch)
            return len(batch), 0

    def _write_singly(self, batch: list[PredictionRecord],
                      cause: BaseException) -> tuple[int, int]:
        """After a batch failed for a reason that may be one record's: write each record
        alone, quarantining those that fail alone. Under the write lock."""
        logger.warning("a prediction log batch of %d failed (%s: %s); writing it record by "
                       "record", len(batch), type(cause).__name__, str(cause).splitlines()[0])
        written = duplicates = quarantined = 0
        done: list[PredictionRecord] = []
        try:
            for record in batch:
                try:
                    self._log.append([record], normalised=True)
                    written += 1
                except DuplicateRequestError:
                    duplicates += 1
                except Exception as exc:
                    if transient(exc):
                        self._record_failure(exc)
                        raise
                    self._quarantine(record, exc)
                    quarantined += 1
                done.append(record)
        finally:
            self._remove(done)
            with self._cond:
                self._written += written
                self._duplicates += duplicates
                self._quarantined += quarantined
        return written, duplicates + quarantined

    def _quarantine(self, record: PredictionRecord, exc: BaseException) -> None:
        error = f"{type(exc).__name__}: {str(exc).splitlines()[0][:500]}"
        logger.error("prediction %r cannot be stored and was quarantined%s: %s",
                     record.request_id,
                     f" to {self._quarantine_path}" if self._quarantine_path else "", error)
        if self._quarantine_path is not None:
            line = json.dumps({"request_id": record.request_id, "ts": record.ts.isoformat(),
                               "model_name": record.model_name,
                               "model_version": record.model_version, "slot": record.slot,
                               "features": record.features, "output": record.output,
                               "shadow": record.shadow, "error": error}, default=repr)
            self._quarantine_path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._quarantine_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                os.write(fd, (line + "\n").encode())
            finally:
                os.close(fd)

    def _remove(self, records: Sequence[PredictionRecord]) -> None:
        """Take ``records`` (the oldest buffered, in order) out of the buffer for good."""
        if not records:
            return
        with self._cond:
            for _ in records:
                _, record = self._buffer.popleft()
                self._ids.discard(record.request_id)
            self._retry_at = 0.0
            self._stuck_since = None
        if self._on_done is not None:
            self._on_done([r.request_id for r in records])

    def _discard(self, ids: set[str]) -> int:
        with self._cond:
            before = len(self._buffer)
            self._buffer = deque(item for item in self._buffer if item[1].request_id not in ids)
            self._ids -= ids
            discarded = before - len(self._buffer)
            self._duplicates += discarded
            self._stuck_since = None
        if self._on_done is not None:
            self._on_done(sorted(ids))
        logger.warning("dropped %d buffered predictions already in the log: %s",
                       discarded, sorted(ids)[:5])
        return discarded

    def _record_failure(self, exc: BaseException) -> None:
        with self._cond:
            self._failures += 1
            self._last_error = exc
            now = time.monotonic()
            self._retry_at = now + self._retry_delay
            if self._stuck_since is None:
                self._stuck_since = now


def transient(exc: BaseException) -> bool:
    """Whether ``exc`` says the database (not the data) is unwell, so a retry may succeed:
    a lost or refused connection, a pool timeout, a full or read-only disk."""
    if isinstance(exc, sa.exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError,
                            sa.exc.DisconnectionError, sa.exc.TimeoutError, OSError))
