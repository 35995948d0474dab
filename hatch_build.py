"""Build hook: the wheel carries the built dashboard.

The dashboard's build output (``src/driftloop/serving/static/``) is not in git, so a plain
``pip install .`` would ship a server whose ``/`` says "not built". When a (non-editable)
wheel is built, this hook builds the dashboard with npm if its output is missing or older
than its sources, and adds the output to the wheel. Editable installs skip it: ``make``
builds the dashboard for a development checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

STATIC = Path("src/driftloop/serving/static")
DASHBOARD = Path("dashboard")
SKIP = "DRIFTLOOP_BUILD_WITHOUT_DASHBOARD"


class DashboardHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return
        root = Path(self.root)
        if _stale(root) and not os.environ.get(SKIP):
            _build(root)
        if (root / STATIC / "index.html").is_file():
            build_data["artifacts"].append(f"/{STATIC.as_posix()}/**")


def _stale(root: Path) -> bool:
    index = root / STATIC / "index.html"
    sources = root / DASHBOARD / "src"
    if not index.is_file():
        return True
    if not sources.is_dir():  # an sdist without the sources: use what was built
        return False
    built = index.stat().st_mtime
    return any(p.stat().st_mtime > built for p in sources.rglob("*") if p.is_file())


def _build(root: Path) -> None:
    npm = shutil.which("npm")
    if npm is None:
        sys.exit(f"driftloop: building the dashboard needs Node.js 20+ and npm on the PATH; "
                 f"install them, or set {SKIP}=1 to install without the dashboard")
    folder = root / DASHBOARD
    for step in (["ci", "--no-audit", "--no-fund"], ["run", "build"]):
        print(f"driftloop: npm {' '.join(step)} (the dashboard)", file=sys.stderr, flush=True)
        subprocess.run([npm, *step], cwd=folder, check=True)
