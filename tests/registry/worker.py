"""A separate process that works the registry, for the multi-process and SIGKILL tests.

    python worker.py URL ARTIFACTS push N       push N candidates, print their versions
    python worker.py URL ARTIFACTS promote V G  promote V if the generation is still G
    python worker.py URL ARTIFACTS churn        push / promote / rollback until killed
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests.registry.helpers import small_model

from driftloop.registry import ModelRegistry, PromotionConflictError


def main(url: str, artifacts: str, mode: str, *args: str) -> None:
    reg = ModelRegistry.open(url, artifacts=artifacts)
    if mode == "push":
        for i in range(int(args[0])):
            print(reg.push_candidate("m", small_model(i)).version, flush=True)
    elif mode == "promote":
        try:
            reg.promote_candidate("m", int(args[0]), expected_generation=int(args[1]))
            print("won", flush=True)
        except PromotionConflictError:
            print("lost", flush=True)
    elif mode == "churn":
        step = 0
        while True:
            v = reg.push_candidate("m", small_model(step))
            reg.promote_candidate("m", v.version)
            if step % 3 == 2:
                reg.rollback("m")
            if step == 0:
                print("ready", flush=True)
            step += 1


if __name__ == "__main__":
    main(*sys.argv[1:])
