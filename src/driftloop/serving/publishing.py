"""Metrics publishing: what this process tells Prometheus, kept apart from what it does.

The gauges are built once the detector exists (one histogram per reference feature);
until then every call is a no-op, so the parts that publish need not know about start-up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from driftloop.drift import DriftDetector, DriftReport
from driftloop.models.served import monitored_output
from driftloop.serving.metrics import ServerMetrics
from driftloop.serving.observer import Observation, Observer
from driftloop.serving.router import TrafficRouter


class MetricsPublisher:
    """Sets this process's Prometheus metrics from the router, the observer and the loop."""

    def __init__(self, router: TrafficRouter, model_name: str) -> None:
        self.router, self.model_name = router, model_name
        self.metrics: ServerMetrics | None = None
        self._dropped_published = 0

    def attach(self, detector: DriftDetector) -> None:
        """Build the metrics on ``detector``'s reference profiles (start-up)."""
        self.metrics = ServerMetrics(detector.profiles, model_name=self.model_name)

    def publish_state(self, generation: int) -> None:
        """The champion, the registry generation and the traffic split (after a swap)."""
        if self.metrics is None:
            return
        router = self.router
        if router.champion is not None:
            self.metrics.set_champion(router.champion.version, generation)
        self.metrics.set_traffic(router.traffic.mode,
                                 router.traffic.shares(router.candidate is not None))

    def set_loop_state(self, state: str) -> None:
        if self.metrics is not None:
            self.metrics.set_loop_state(state)

    def set_newer_format_workers(self, count: int) -> None:
        if self.metrics is not None:
            self.metrics.set_newer_format_workers(count)

    def set_drift(self, report: DriftReport) -> None:
        if self.metrics is not None:
            self.metrics.set_drift(report)

    def observe(self, batch: Sequence[Observation], detector: DriftDetector) -> None:
        """Feature histograms and shadow agreement of one observed batch (observer thread)."""
        metrics = self.metrics
        if metrics is None:
            return
        outputs = [monitored_output(o.output) for o in batch]
        has_output = len(detector.profiles) > len(detector.feature_names)
        metrics.observe_features([o.features for o in batch],
                                 outputs if has_output else None)
        for o in batch:
            if o.mirror is not None and o.mirror.done() and not o.mirror.cancelled():
                shadow = o.mirror.result()
                metrics.observe_shadow(agreed=_label(shadow) == _label(o.output),
                                       failed=shadow is None)

    def render(self, accept: str | None, observer: Observer | None) -> tuple[bytes, str]:
        """The /metrics body, with the queue depths and drop counts of this moment."""
        assert self.metrics is not None
        for slot in (self.router.champion, self.router.candidate):
            if slot is not None:
                self.metrics.set_queue_depth(slot.name, slot.queue.depth)
        if observer is not None:
            self.metrics.set_queue_depth("observations", observer.queue.qsize())
            new = observer.dropped - self._dropped_published
            if new > 0:
                self.metrics.count_dropped("observation", new)
                self._dropped_published += new
        return self.metrics.render(accept)


def _label(output: Any) -> Any:
    return output.get("prediction") if isinstance(output, Mapping) else output
