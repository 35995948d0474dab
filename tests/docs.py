"""The fenced code blocks of the Markdown docs, and running them as a user would.

A page's blocks run in order, in one temporary folder, as one bash script: ```bash
blocks verbatim, ```python blocks through ``python -`` (so a server started in one block
is still there for the next). ```text and every other language are not run.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RUN = ("bash", "python")
_FENCE = re.compile(r"^(?P<indent>[ ]*)```(?P<lang>[\w+-]*)(?P<info>[^\n]*)\n(?P<body>.*?)^"
                    r"(?P=indent)```[ ]*$", re.MULTILINE | re.DOTALL)
_TITLE = re.compile(r'title="(?P<title>[^"]*)"')


@dataclass(frozen=True)
class Block:
    lang: str
    title: str | None
    code: str
    line: int


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, with its language, title and first line number."""
    text = path.read_text(encoding="utf-8")
    found = []
    for match in _FENCE.finditer(text):
        indent = len(match["indent"])
        code = "".join(line[indent:] if line.strip() else "\n"
                       for line in match["body"].splitlines(keepends=True))
        title = _TITLE.search(match["info"])
        found.append(Block(match["lang"] or "text", title["title"] if title else None, code,
                           text.count("\n", 0, match.start()) + 1))
    return found


def titled(path: Path, title: str) -> Block:
    """The block of ``path`` whose title is ``title``."""
    matches = [b for b in blocks(path) if b.title == title]
    assert len(matches) == 1, f"{path}: {len(matches)} blocks titled {title!r}"
    return matches[0]


def script(page_blocks: list[Block]) -> str:
    """One bash script running the runnable blocks in order; each block's commands under
    ``set -e``, the Python ones through the test's own interpreter."""
    parts = ["set -euo pipefail"]
    for block in page_blocks:
        if block.lang == "bash":
            parts.append(block.code)
        elif block.lang == "python":
            parts.append(f"python - <<'DRIFTLOOP_DOCS_PYTHON'\n{block.code}"
                         "DRIFTLOOP_DOCS_PYTHON\n")
    return "\n".join(parts)


def run_script(text: str, cwd: Path, *, timeout: float,
               env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``text`` with bash in ``cwd``, with this interpreter's ``bin`` folder first on
    PATH (``python`` and ``driftloop`` are the ones under test). Everything it started is
    killed at the end, whatever happened."""
    bin_dir = str(Path(sys.executable).parent)
    full_env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "PYTHONPATH": str(ROOT / "src"), **(env or {})}
    (cwd / "script.sh").write_text(text, encoding="utf-8")
    proc = subprocess.Popen(["bash", "script.sh"], cwd=cwd, env=full_env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        raise AssertionError(f"the script ran past {timeout:g} s; its output:\n{out}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):  # a server left in the background
            os.killpg(proc.pid, signal.SIGKILL)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, "")
