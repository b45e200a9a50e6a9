"""The result of validating specs, as values: rendered by the CLI as text or JSON."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mllc.errors import Diagnostic, sort_diagnostics
from mllc.spec.load import LoadResult

REPORT_VERSION = 1


@dataclass(frozen=True)
class ValidationReport:
    results: tuple[LoadResult, ...]
    problems: tuple[Diagnostic, ...] = field(default=())

    @property
    def diagnostics(self) -> list[Diagnostic]:
        return sort_diagnostics([*self.problems, *(d for r in self.results for d in r.diagnostics)])

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.results) and all(r.ok for r in self.results)

    def lines(self) -> list[str]:
        return [d.render() for d in self.diagnostics]

    def summary(self) -> str:
        n = len(self.results)
        if not self.results and not self.problems:
            return "no spec files found"
        bad = sum(not r.ok for r in self.results)
        errors = len(self.diagnostics)
        if not self.results:
            return f"{errors} error{'s' * (errors != 1)}; no spec files found"
        if self.ok:
            return f"{n} spec{'s' * (n != 1)} valid"
        return f"{errors} error{'s' * (errors != 1)} in {bad} of {n} spec{'s' * (n != 1)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "version": REPORT_VERSION,
            "valid": self.ok,
            "specs": [
                {
                    "file": r.file,
                    "name": r.spec.metadata.name if r.spec else None,
                    "valid": r.ok,
                }
                for r in self.results
            ],
            "diagnostics": [d.to_json() for d in self.diagnostics],
        }
