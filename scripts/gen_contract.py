"""Write what the dashboard takes from the server's contract (driftloop/serving/schemas.py).

    python scripts/gen_contract.py          # rewrite the schema and fixtures, then the types
    python scripts/gen_contract.py --check  # exit 1 if any is stale (tests/serving/...)

- ``dashboard/src/generated/contract.schema.json``: the JSON Schema of every response, request
  body, error and ``/ws`` frame, from the pydantic models;
- ``dashboard/src/generated/api.ts``: its TypeScript (``npm run gen:types``, which ``npm run
  build`` runs too), stamped with the sha256 of the schema it was made from;
- ``dashboard/tests/fixtures/*.json``: each fixture frame validated by the frame models and
  written back as the server serialises it, so a fixture the server could not have sent
  fails here instead of passing the dashboard's tests.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter
from pydantic.json_schema import GenerateJsonSchema

from driftloop.serving import schemas

ROOT = Path(__file__).resolve().parents[1]
DASHBOARD = ROOT / "dashboard"
SCHEMA = DASHBOARD / "src" / "generated" / "contract.schema.json"
TYPES = DASHBOARD / "src" / "generated" / "api.ts"
FIXTURES = DASHBOARD / "tests" / "fixtures"
#: The top-level shapes; every model they use comes along.
RESPONSES = (schemas.Health, schemas.Ready, schemas.NotReady, schemas.Prediction,
             schemas.Predictions, schemas.FeedbackAnswer, schemas.FeedbackBatchAnswer,
             schemas.ServerState, schemas.DriftView, schemas.Lineage, schemas.Runs,
             schemas.RetrainAnswer, schemas.ChampionAnswer, schemas.TrafficAnswer,
             schemas.ErrorResponse)
REQUESTS = (schemas.FeedbackRequest, schemas.FeedbackBatchRequest, schemas.RetrainRequest,
            schemas.TrafficRequest, schemas.AdminAction)
_STAMP = re.compile(r"contract\.schema\.json sha256 ([0-9a-f]{64})")


class _Untitled(GenerateJsonSchema):
    """No titles on fields: TypeScript generators name a type after every title."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def contract_schema() -> dict[str, Any]:
    """One JSON Schema document: every shape under ``$defs``, ``Frame`` the frame union."""
    entries: list[tuple[str, Any, TypeAdapter[Any]]] = [
        *((m.__name__, "serialization", TypeAdapter(m)) for m in RESPONSES),
        *((m.__name__, "validation", TypeAdapter(m)) for m in REQUESTS),
        ("Frame", "serialization", schemas.FRAME)]
    refs, document = TypeAdapter.json_schemas(entries, ref_template="#/$defs/{model}",
                                              schema_generator=_Untitled)
    defs = document["$defs"]
    defs["Frame"] = {"title": "Frame", **refs[("Frame", "serialization")]}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "driftloop contract",
            "description": "Generated from driftloop/serving/schemas.py by "
                           "scripts/gen_contract.py: do not edit.",
            "$defs": dict(sorted(defs.items()))}


def schema_text() -> str:
    return json.dumps(contract_schema(), indent=2, ensure_ascii=False) + "\n"


def fixture_text(path: Path) -> str:
    """The fixture at ``path`` as the frame models serialise it (ValidationError if it is
    no frame the server could send)."""
    frame = schemas.FRAME.validate_json(path.read_bytes())
    data = schemas.FRAME.dump_python(frame, mode="json", by_alias=True, exclude_unset=True)
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


def types_stamp() -> str | None:
    """The sha256 of the schema api.ts was generated from, as stamped in it."""
    found = _STAMP.search(TYPES.read_text(encoding="utf-8")) if TYPES.exists() else None
    return found.group(1) if found else None


def stale(expected_schema: str) -> list[str]:
    """What is out of date, one line each."""
    problems = []
    if not SCHEMA.exists() or SCHEMA.read_text(encoding="utf-8") != expected_schema:
        problems.append(f"{SCHEMA.relative_to(ROOT)} is stale")
    digest = hashlib.sha256(expected_schema.encode()).hexdigest()
    if types_stamp() != digest:
        problems.append(f"{TYPES.relative_to(ROOT)} was not generated from the current "
                        "schema (npm run gen:types in dashboard/)")
    for path in sorted(FIXTURES.glob("*.json")):
        if path.read_text(encoding="utf-8") != fixture_text(path):
            problems.append(f"{path.relative_to(ROOT)} is not as the server serialises it")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is stale")
    args = parser.parse_args()
    expected = schema_text()
    if args.check:
        problems = stale(expected)
        for problem in problems:
            print(problem)
        if problems:
            print("run: python scripts/gen_contract.py")
        return 1 if problems else 0
    SCHEMA.parent.mkdir(parents=True, exist_ok=True)
    SCHEMA.write_text(expected, encoding="utf-8")
    for path in sorted(FIXTURES.glob("*.json")):
        path.write_text(fixture_text(path), encoding="utf-8")
    return subprocess.run(["npm", "run", "--silent", "gen:types"], cwd=DASHBOARD,
                          check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
