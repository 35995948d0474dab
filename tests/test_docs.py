"""The documentation works as written: every ```python and ```bash block of README.md and
docs/ runs (a page's blocks in order, in one temporary folder), no link leaves the
repository, and the generated reference pages match the code."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from tests.docs import ROOT, RUN, blocks, run_script, script
from tests.e2e.quickstart import QUICKSTART

from driftloop.config import Settings

PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Pages run by an end-to-end test of their own (tests/e2e/test_quickstart.py), which
#: checks more afterwards.
RUN_ELSEWHERE = {QUICKSTART.name}
#: Languages that are shown, never run: output, command synopses, file formats.
SHOWN = ("text", "toml")
_LINK = re.compile(r"\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)|href=\"(?P<href>[^\"]+)\"")


def runnable(page: Path) -> bool:
    return page.name not in RUN_ELSEWHERE and any(b.lang in RUN for b in blocks(page))


#: A pipe into a reader that stops early: under ``set -o pipefail`` the writer's SIGPIPE
#: fails the script whenever its output outgrows one write (the quickstart's
#: ``curl /api/runs | head -c 600`` did, by chance, once the answer got long).
_EARLY_EXIT = re.compile(r"\|\s*(head\b|grep\s+-\w*[qm])")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_bash_block_pipes_into_a_reader_that_stops_early(page: Path) -> None:
    for block in blocks(page):
        if block.lang != "bash":
            continue
        for number, line in enumerate(block.code.splitlines()):
            assert not _EARLY_EXIT.search(line), (
                f"{page.name}:{block.line + number + 1}: {line.strip()!r} pipes into a "
                "reader that stops early; under set -o pipefail that fails by chance: "
                "write to a file first, or use bash's own matching")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_block_says_whether_it_runs(page: Path) -> None:
    """A block in a language the runner does not know (```sh, ```shell, ```py) would be
    skipped silently: only the runnable languages and the shown ones are allowed."""
    for block in blocks(page):
        assert block.lang in (*RUN, *SHOWN), (
            f"{page.name}:{block.line}: ```{block.lang} is neither run ({RUN}) nor shown "
            f"({SHOWN})")


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if runnable(p)],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_code_blocks_run(page: Path, tmp_path: Path) -> None:
    result = run_script(script(blocks(page)), tmp_path, timeout=420)
    assert result.returncode == 0, f"{page.name}:\n{result.stdout[-6000:]}"


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_link_leaves_the_repository(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for match in _LINK.finditer(text):
        target = (match["target"] or match["href"]).split("#", 1)[0]
        if not target:
            continue  # an anchor on the same page
        assert "://" not in target and not target.startswith(("mailto:", "//")), (
            f"{page.name}: {target} points outside the repository")
        resolved = (page.parent / target).resolve()
        assert resolved.is_relative_to(ROOT), f"{page.name}: {target} leaves the repository"
        assert resolved.exists(), f"{page.name}: {target} does not exist"


@pytest.mark.slow
def test_the_generated_reference_pages_are_current() -> None:
    """docs/configuration.md and examples/driftloop.toml (from the settings' schema) and
    docs/api.md (from the server's OpenAPI document) are regenerated and compared."""
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "docs_reference.py"),
                             "--check"], check=False, capture_output=True, text=True,
                            timeout=300,
                            env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_example_configuration_loads_and_names_every_setting(tmp_path: Path) -> None:
    example = (ROOT / "examples" / "driftloop.toml").read_text()
    names = set(re.findall(r"^# (\w+) = ", example, re.MULTILINE))
    assert names == set(Settings.__dataclass_fields__) if hasattr(
        Settings, "__dataclass_fields__") else set(Settings.model_fields)
    uncommented = re.sub(r"^# (\w+ = (?!\(unset\)).*)$", r"\1", example, flags=re.MULTILINE)
    (tmp_path / "driftloop.toml").write_text(uncommented)
    assert Settings.load(tmp_path / "driftloop.toml", env={}) == Settings()
