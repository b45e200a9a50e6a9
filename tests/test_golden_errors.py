"""`mllc validate` output, byte for byte, against reviewed golden files.

Each folder under tests/golden/errors/ holds a spec.yaml, the text output
(expected.txt, stdout only) and the JSON output (expected.json) of
``mllc validate spec.yaml`` run inside that folder. ``pytest --regen-golden``
(``make golden``) rewrites them; review the diff before committing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

GOLDEN = Path(__file__).parent / "golden" / "errors"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "spec.yaml").is_file())


def validate(case_dir: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mllc", "validate", "spec.yaml", *extra],
        cwd=case_dir,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_enough_cases() -> None:
    assert len(CASES) >= 8, CASES


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str, regen_golden: bool) -> None:
    case_dir = GOLDEN / case
    text = validate(case_dir)
    as_json = validate(case_dir, "--format", "json")
    for proc in (text, as_json):
        assert proc.returncode in (0, 1), proc.stderr
        assert "Traceback" not in proc.stdout + proc.stderr
    if regen_golden:
        (case_dir / "expected.txt").write_text(text.stdout, encoding="utf-8")
        (case_dir / "expected.json").write_text(as_json.stdout, encoding="utf-8")
        pytest.skip(f"regenerated golden files of {case}: review them before committing")

    expected_txt = (case_dir / "expected.txt").read_text(encoding="utf-8")
    expected_json = (case_dir / "expected.json").read_text(encoding="utf-8")
    assert text.stdout == expected_txt, f"{case}: run `make golden` if the change is intended"
    assert as_json.stdout == expected_json, f"{case}: run `make golden` if the change is intended"

    report = json.loads(expected_json)
    want = 0 if report["valid"] else 1
    assert (text.returncode, as_json.returncode) == (want, want)
    # The text lines are the JSON diagnostics rendered, in the same order.
    assert len(expected_txt.splitlines()) == len(report["diagnostics"])
    # The summary goes to stderr, never into the diagnostics on stdout.
    assert text.stderr.strip().endswith(("valid", "spec"))
