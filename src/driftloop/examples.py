"""Example data shipped with scikit-learn, so the commands work offline on a fresh machine.

The Wisconsin breast-cancer measurements (569 real patients, 30 numeric features) make a
real covariate shift: the reference is mostly benign cases, the current batch mostly
malignant ones, as when a screening model meets a referral clinic's patients.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.datasets import load_breast_cancer


def breast_cancer_shift(seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference (90 % benign) and current (70 % malignant) samples, plus a ``size``
    category derived from ``mean area`` tertiles, so both feature kinds appear."""
    frame = load_breast_cancer(as_frame=True).frame
    frame["size"] = pd.qcut(frame["mean area"], 3, labels=["small", "medium", "large"]).astype(str)
    rng = np.random.default_rng(seed)
    benign = frame[frame["target"] == 1].drop(columns="target")
    malignant = frame[frame["target"] == 0].drop(columns="target")

    def sample(n_benign: int, n_malignant: int) -> pd.DataFrame:
        rows = [benign.sample(n_benign, replace=True, random_state=rng.integers(2**31)),
                malignant.sample(n_malignant, replace=True, random_state=rng.integers(2**31))]
        shuffled: pd.DataFrame = pd.concat(rows).sample(frac=1.0,
                                                        random_state=rng.integers(2**31))
        return shuffled

    return sample(1800, 200).reset_index(drop=True), sample(300, 700).reset_index(drop=True)
