"""Running the quickstart page as a user would, and reading what it left behind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from tests.docs import ROOT, Block, blocks, run_script, script
from tests.e2e.processes import free_port

from driftloop import db
from driftloop.registry import ModelRegistry, ModelVersion

QUICKSTART = ROOT / "docs" / "quickstart.md"
OWN_MODEL = ROOT / "docs" / "own-model.md"
#: The quickstart's blocks another format's own-model blocks stand in for.
REPLACED = {"train.py": "train-{fmt}.py", "push": "push-{fmt}"}
#: Generous: on a loaded 2-core machine the whole page took ~2 minutes.
TIMEOUT = 480.0


@dataclass(frozen=True)
class Outcome:
    output: str
    champion: ModelVersion
    first: Any  # v1's model
    promoted: Any  # the champion's model
    run_log: list[str]


def quickstart_blocks(fmt: str | None = None) -> list[Block]:
    """The quickstart's blocks, with the training and push steps of ``fmt``'s section of
    the own-model page in place of the scikit-learn ones when ``fmt`` is given."""
    page = blocks(QUICKSTART)
    if fmt is None:
        return page
    own = {b.title: b for b in blocks(OWN_MODEL)}
    return [own[REPLACED[b.title].format(fmt=fmt)] if b.title in REPLACED else b
            for b in page]


def run_quickstart(folder: Path, fmt: str | None = None) -> Outcome:
    result = run_script(script(quickstart_blocks(fmt)), folder, timeout=TIMEOUT,
                        env={"PORT": str(free_port())})
    log = (folder / "server.log").read_text() if (folder / "server.log").exists() else ""
    assert result.returncode == 0, f"{result.stdout}\n--- server.log ---\n{log[-4000:]}"
    data = folder / "artifacts"
    registry = ModelRegistry.open(f"sqlite:///{data / 'driftloop.db'}", artifacts=data)
    champion = registry.get_champion("digits")
    assert champion is not None
    with registry.engine.connect() as conn:
        lines = list(conn.execute(sa.select(db.run_events.c.message).where(
            db.run_events.c.kind == "log").order_by(db.run_events.c.id)).scalars())
    outcome = Outcome(result.stdout, champion, registry.load("digits", 1),
                      registry.load("digits", champion.version), [str(x) for x in lines])
    registry.engine.dispose()
    return outcome
