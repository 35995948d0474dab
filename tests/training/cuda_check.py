"""Does TorchTrainer train on the GPU when there is one? A standalone check for a GPU box.

Run from the repository root (not collected by pytest: no ``test_`` prefix)::

    PYTHONPATH=src python3 tests/training/cuda_check.py

It needs only torch, numpy, pandas, scipy and scikit-learn — no database, skops, river or
fastapi — so the data comes from ``sklearn.datasets.make_classification`` instead of the
demo's river stream, and the trainer is called on frames (``TorchTrainer.fit``), not on a
snapshot. It trains with ``device="auto"``, then prints one JSON object (the device, the
GPU's name, seconds, holdout accuracy, and the largest gap between the numpy forward
pass's probabilities and torch's on the training device) and exits 1 when a check fails:
CUDA available but not used, accuracy below the floor, or the two forward passes apart.
"""

from __future__ import annotations

import json
import logging
import sys
import time

ROWS = 20_000
ACCURACY_FLOOR = 0.8
#: GPU kernels sum in another order than numpy does; a wrong weight layout is off by ~0.1.
MAX_GAP = 1e-4


def main() -> int:
    import numpy as np  # noqa: PLC0415 - imports stay out of pytest's doctest collection
    import pandas as pd  # noqa: PLC0415
    import torch  # noqa: PLC0415
    from sklearn.datasets import make_classification  # noqa: PLC0415

    from driftloop.training.torch_mlp import TorchTrainer  # noqa: PLC0415

    logging.basicConfig(level=logging.INFO, stream=sys.stderr)  # the trainer's device line
    x, y = make_classification(n_samples=ROWS, n_features=6, n_informative=5, n_redundant=1,
                               n_classes=3, n_clusters_per_class=2, class_sep=1.5,
                               random_state=7)
    features = pd.DataFrame(x, columns=[f"x{i}" for i in range(6)])
    labels = pd.Series(y, name="label")
    split = int(ROWS * 0.8)
    started = time.perf_counter()
    fitted = TorchTrainer(device="auto").fit(features.iloc[:split], labels.iloc[:split])
    seconds = time.perf_counter() - started

    holdout = features.iloc[split:]
    proba = fitted.model.predict_proba(holdout)
    inputs = torch.from_numpy(fitted.model.encoder.transform(holdout)).to(fitted.device)
    with torch.no_grad():
        expected = torch.softmax(fitted.module(inputs), dim=1).cpu().numpy()
    gap = float(np.abs(proba - expected).max())
    accuracy = float((proba.argmax(axis=1) == labels.iloc[split:].to_numpy()).mean())

    failures = []
    if torch.cuda.is_available() and not fitted.device.startswith("cuda"):
        failures.append(f"CUDA is available but training ran on {fitted.device}")
    if accuracy < ACCURACY_FLOOR:
        failures.append(f"holdout accuracy {accuracy:.4f} is below {ACCURACY_FLOOR}")
    if gap > MAX_GAP:
        failures.append(f"numpy and torch probabilities differ by up to {gap:.2e}")
    print(json.dumps({
        "ok": not failures, "failures": failures, "device": fitted.device,
        "gpu": fitted.model.provenance["gpu"], "cuda_available": torch.cuda.is_available(),
        "torch": torch.__version__, "rows": split, "epochs": len(fitted.losses),
        "seconds": round(seconds, 3), "holdout_accuracy": round(accuracy, 4),
        "max_abs_p_numpy_minus_p_torch": gap,
    }, indent=2))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
