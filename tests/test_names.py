"""Names are checked by full match everywhere: a trailing newline is not a name.

``re.match`` with a pattern ending in ``$`` accepts ``"iris\\n"`` (``$`` matches before
a final newline); such a name would reach ``pipelines/<name>/``, DVC stage names and
Git tags.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mllc.names import is_dns_label


@pytest.mark.parametrize("name", ["iris", "a", "churn-v2", "a" * 63])
def test_dns_labels(name: str) -> None:
    assert is_dns_label(name)


@pytest.mark.parametrize(
    "name", ["iris\n", "iris\r\n", "\niris", "Iris", "-iris", "iris-", "a" * 64, "", "iris x"]
)
def test_not_dns_labels(name: str) -> None:
    assert not is_dns_label(name)


def test_stage_refuses_a_name_with_a_trailing_newline(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "mllc", "stage", "prepare", "iris\n"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1, proc
    assert "is not a lowercase DNS label" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout
    assert list(tmp_path.iterdir()) == []  # nothing created under a bad name
