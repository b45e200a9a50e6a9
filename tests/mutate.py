"""``make mutate``: mutation testing of the pure core, with mutmut.

Every mutant of the modules below (an operator swapped, a constant or a message
changed, a call's argument dropped ...) is run against the pure unit tests that reach
its function; a mutant that no test fails on "survives". The report gives, per module,
the mutants, how many were killed and survived, the ratio, and each survivor's diff; the
exit status is non-zero when a module kills fewer than 90% of its mutants.

What counts: every mutant, messages included. A message is what a user reads, so its
text is pinned by a test rather than excluded. Only *equivalent* mutants are left out of
the ratio: a mutant that cannot change any behaviour (say, ``None`` swapped for the
default it already was). Each one is listed in ``EQUIVALENT`` with the reason, matched by
module, function and the mutated line, and still printed. Mutants no test reaches count
as survivors; timeouts count as kills (the mutant changed the behaviour: it hangs).

It works in a copy of the repository (``.mutate/``, ignored by Git), never in the
working tree: mutmut writes its mutants/ there. Only pure, in-memory tests run (no Git,
DVC or training), so a run takes minutes, not hours. Not part of ``make test``.

    python tests/mutate.py [--jobs N] [--keep] [MODULE ...]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / ".mutate"
THRESHOLD = 0.90

# The pure core: spec rules and checks, promotion policy, gates, the plan's diff, the
# order of apply's steps, and verify's comparisons.
MODULES = (
    "mllc/spec/checks.py",
    "mllc/spec/rules.py",
    "mllc/policy/promotion.py",
    "mllc/policy/gates.py",
    "mllc/policy/replay.py",
    "mllc/policy/rollout.py",
    "mllc/policy/labels_psi.py",
    "mllc/plan/diff.py",
    "mllc/plan/environments.py",
    "mllc/plan/values.py",
    "mllc/apply/steps.py",
    "mllc/verify/compare.py",
)
# Pure, fast unit tests only (in memory, or a spec file under tmp_path).
TESTS = (
    "tests/test_rules.py",
    "tests/test_rules_pinned.py",
    "tests/test_resolve.py",
    "tests/test_promotion_pinned.py",
    "tests/test_rollout_policy.py",
    "tests/test_rollout_plan.py",
    "tests/test_gates_pinned.py",
    "tests/test_replay_policy.py",
    "tests/test_checks_pinned.py",
    "tests/test_plan_diff.py",
    "tests/test_plan_diff_pinned.py",
    "tests/test_plan_gitops_pinned.py",
    "tests/test_apply_steps.py",
    "tests/test_verify_compare.py",
)
COPY = ("mllc", "tests", "specs", "schemas", "data", "pyproject.toml")

# (module, function, the mutated line as mutmut shows it after "+") -> why no test can
# tell the mutant from the original. Keep this short: prefer a test.
_DEFAULT_METHOD = "any default other than 'random' reads as grid, which an absent method is"
_SAME_LOADER = "CSafeLoader and SafeLoader read the same documents (the C one is faster)"
EQUIVALENT: dict[tuple[str, str, str], str] = {
    **{
        ("mllc/spec/checks.py", "search", f'if s.get("n_iter") is not None and '
         f's.get("method", {default}) != "random":'): _DEFAULT_METHOD
        for default in ("None", "", '"XXgridXX"', '"GRID"')
    },
    ("mllc/spec/checks.py", "environment", 'if not re.fullmatch(r"[A-Za-z0-9.:-]+", host, ):'):
        "re.ASCII changes nothing in a class of explicit ASCII ranges (no \\w, \\d, IGNORECASE)",
    **{
        ("mllc/spec/rules.py", function, line):
            "only the first close match is shown, and 0.6 is difflib's default cutoff"
        for function, line in (
            ("_unknown_metric",
             "close = difflib.get_close_matches(metric, list(known), cutoff=0.6)"),
            ("_unknown_metric", "close = difflib.get_close_matches(metric, list(known), n=1, )"),
            ("_unknown_metric",
             "close = difflib.get_close_matches(metric, list(known), n=2, cutoff=0.6)"),
            ("environment_order",
             "close = difflib.get_close_matches(prev, [str(e) for e in envs], )"),
            ("environment_order",
             "close = difflib.get_close_matches(prev, [str(e) for e in envs], n=2)"),
        )
    },
    **{
        ("mllc/spec/rules.py", "estimators_fit_task",
         f"f\"{{est.rsplit('.', {split})[-1]}} is a {{allowed[est]}} estimator, \""):
            "the last dotted part is the same whatever the number of splits"
        for split in ("", "2")
    },
    ("mllc/policy/promotion.py", "promotion_rules",
     "frozenset(a.version for a in history.get(after, []) if a.version) if (after) or True "
     "else frozenset()"): "without 'after', history.get(None) is [] (no environment is None)",
    **{
        ("mllc/plan/diff.py", "_hash_and_rows",
         f"text = f\"md5 {{(old or '(none)')[:12]}} → {{(state.md5 or {shown})[:12]}}\""):
            "source_changes skips a missing file (md5 None) before it describes one"
        for shown in ("'XX(none)XX'", "'(NONE)'")
    },
    ("mllc/policy/replay.py", "differing",
     "tolerance = math.sqrt(sum((v - mean) ** 2 for v in values) / max(len(values), 2)) / 10"):
        "one value has no spread whatever it is divided by; two or more divide by their count",
    ("mllc/plan/environments.py", "deployment_changes", "if (res is not None) or True"):
        "a wanted version comes from a resolution: res is never None there",
    **{
        ("mllc/plan/environments.py", "_gitops_change", f"why = res.reason if {test} else {other}"):
            "a wanted version comes from a resolution: res is never None there"
        for test, other in (("(res is not None) or True", '""'), ("res is not None", '"XXXX"'))
    },
    **{
        ("mllc/policy/rollout.py", function, line):
            "a Rollout's fields are JSON values: python and json dumps are equal (pydantic reads "
            "any other mode as python)"
        for mode in ("None", '"XXjsonXX"', '"JSON"')
        for function, line in (
            ("decide",
             f"if now.held is not None and now.held_spec == spec.model_dump(mode={mode}):"),
            ("_fail",
             f'return _with(base, "hold", text, why, analysis, spec=spec.model_dump(mode={mode}))'),
        )
    },
    ("mllc/plan/diff.py", "diff_lifecycle",
     "stages = _with_feedback(None, actual.stages, batches)"): "_with_feedback ignores the name",
    **{
        ("mllc/plan/environments.py", "monitoring_changes",
         f'on_breach = monitoring.on_breach if monitoring is not None else {default}'):
            "only 'retrain' is compared: any other default reads as alert, the default"
        for default in ("None", "", '"XXalertXX"', '"ALERT"')
    },
    **{
        ("mllc/plan/diff.py", "_parse",
         f"return yaml.load(text, Loader=getattr({obj}, {name}{default}))"): _SAME_LOADER
        for obj, name, default in (
            ("None", '"CSafeLoader"', ", yaml.SafeLoader"),
            ("yaml", '"CSafeLoader"', ", None"),
            ("yaml", '"CSafeLoader"', ", "),
            ("yaml", '"XXCSafeLoaderXX"', ", yaml.SafeLoader"),
            ("yaml", '"csafeloader"', ", yaml.SafeLoader"),
            ("yaml", '"CSAFELOADER"', ", yaml.SafeLoader"),
        )
    },
}  # fmt: skip

STATUS = {1: "killed", 3: "killed", 0: "survived", 33: "no tests", 5: "no tests"}
TIMEOUTS = {36, 24, -24, 152, 255}


@dataclass(frozen=True)
class Mutant:
    name: str
    module: str
    function: str
    status: str
    diff: str = ""
    equivalent: str | None = None

    @property
    def line(self) -> str:
        """The mutated line (the first ``+`` line of the diff)."""
        for text in self.diff.splitlines():
            if text.startswith("+") and not text.startswith("+++"):
                return text[1:].strip()
        return ""


def _config(modules: tuple[str, ...]) -> str:
    def toml_list(items: tuple[str, ...] | list[str]) -> str:
        return "[" + ", ".join(json.dumps(i) for i in items) + "]"

    return (
        "\n\n[tool.mutmut]\n"
        f"source_paths = {toml_list(modules)}\n"
        f"pytest_add_cli_args_test_selection = {toml_list(TESTS)}\n"
        'pytest_add_cli_args = ["-p", "no:cacheprovider", "-q", "-x"]\n'
        f"also_copy = {toml_list(['specs', 'schemas', 'data', 'mllc'])}\n"
    )


def prepare(modules: tuple[str, ...], keep: bool) -> None:
    """A copy of the repository's sources and tests, with mutmut's configuration."""
    if WORK.exists() and not keep:
        shutil.rmtree(WORK)
    WORK.mkdir(exist_ok=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis")
    for name in COPY:
        src, dst = ROOT / name, WORK / name
        if src.is_dir():
            shutil.copytree(src, dst, ignore=ignore, dirs_exist_ok=True)
        elif src.exists():
            shutil.copy2(src, dst)
    pyproject = WORK / "pyproject.toml"
    pyproject.write_text(
        (ROOT / "pyproject.toml").read_text(encoding="utf-8") + _config(modules),
        encoding="utf-8",
    )


def run_mutmut(jobs: int) -> float:
    mutmut = Path(sys.executable).parent / "mutmut"
    log = WORK / "mutmut.log"
    started = time.monotonic()
    with log.open("w", encoding="utf-8") as out:
        code = subprocess.call(
            [str(mutmut), "run", "--max-children", str(jobs)], cwd=WORK, stdout=out, stderr=out
        )
    if code != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        sys.exit(f"mutmut failed (exit {code}); the end of {log}:\n{tail}")
    return time.monotonic() - started


def _status(code: int | None) -> str:
    if code in TIMEOUTS:
        return "killed"  # a timeout: the mutant changed what the code does (it hangs)
    return STATUS.get(code, "not checked" if code is None else f"suspicious ({code})")


def _function(name: str) -> str:
    """``mllc.gates.xǁGateResultǁtext__mutmut_2`` -> ``GateResult.text``."""
    short = name.rsplit(".", 1)[-1].split("__mutmut_")[0]
    return short.removeprefix("x_").removeprefix("xǁ").replace("ǁ", ".")


def collect(modules: tuple[str, ...]) -> list[Mutant]:
    os.chdir(WORK)  # mutmut's own helpers read mutants/ relative to here
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    found = []
    for module in modules:
        meta = json.loads((WORK / "mutants" / f"{module}.meta").read_text(encoding="utf-8"))
        for name, code in meta["exit_code_by_key"].items():
            status = _status(code)
            diff = get_diff_for_mutant(name, path=module) if status != "killed" else ""
            m = Mutant(name, module, _function(name), status, diff)
            why = EQUIVALENT.get((module, m.function, m.line))
            found.append(Mutant(name, module, m.function, status, diff, why))
    return found


def report(modules: tuple[str, ...], mutants: list[Mutant], seconds: float) -> bool:
    ok = True
    print(f"\nmutation testing of the pure core ({seconds:.0f} s)\n")
    header = f"{'module':28} {'mutants':>7} {'equiv':>5} {'killed':>6} {'survived':>8} {'ratio':>6}"
    print(header)
    rows = []
    for module in modules:
        mine = [m for m in mutants if m.module == module]
        counted = [m for m in mine if m.equivalent is None]
        killed = sum(m.status == "killed" for m in counted)
        ratio = killed / len(counted) if counted else 1.0
        ok &= ratio >= THRESHOLD
        rows.append((module, mine, counted, killed, ratio))
        print(
            f"{module:28} {len(mine):>7} {len(mine) - len(counted):>5} {killed:>6} "
            f"{len(counted) - killed:>8} {ratio:>6.1%}{'' if ratio >= THRESHOLD else '  < 90%'}"
        )
    for module, mine, _, _, _ in rows:
        left = [m for m in mine if m.status != "killed"]
        if not left:
            continue
        print(f"\n== {module}: {len(left)} not killed")
        for m in left:
            tag = f"equivalent: {m.equivalent}" if m.equivalent else m.status
            print(f"-- {m.name} [{tag}]")
            body = [x for x in m.diff.splitlines() if x[:1] in "+-" and x[:3] not in ("+++", "---")]
            print("\n".join("   " + x for x in body))
    counts = Counter(m.status for m in mutants)
    print(f"\n{len(mutants)} mutants: " + ", ".join(f"{n} {s}" for s, n in counts.most_common()))
    print("OK: every module kills >= 90%" if ok else "FAILED: a module kills < 90% (see above)")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--keep", action="store_true", help="reuse .mutate/ (mutmut's cache)")
    parser.add_argument("modules", nargs="*", help=f"a part of the core (default: {MODULES})")
    args = parser.parse_args()
    modules = tuple(args.modules) or MODULES
    unknown = [m for m in modules if m not in MODULES]
    if unknown:
        sys.exit(f"not in the pure core: {', '.join(unknown)} (it is: {', '.join(MODULES)})")
    prepare(modules, args.keep)
    seconds = run_mutmut(args.jobs)
    sys.exit(0 if report(modules, collect(modules), seconds) else 1)


if __name__ == "__main__":
    main()
