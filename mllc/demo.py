"""``make demo``: the lifecycle end to end on the embedded default, in a scratch workspace.

Runs the real CLI, step by step, in a new temporary folder (or ``$MLLC_DEMO_DIR``):
init a repository, validate its spec, show it with defaults, explain a field,
compile, plan, apply (real DVC, real training, a registered version, a local V2
inference server), edit the spec so one candidate retrains, preview the edit in an
isolated worktree, apply it as a canary (the new version answers a share of real
requests; the next applies read the numbers and advance it until it takes over), status,
predictions over HTTP, monitoring (an unchanged batch, then a drifted labelled one
that the next plan retrains on, through the gates), verify every version (a rebuild
from its tag), the newest version's model card and lineage, and what a mistake
looks like.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from mllc.layout import Layout

WORKSPACE = Path(os.environ.get("MLLC_DEMO_DIR") or tempfile.mkdtemp(prefix="mllc-demo-"))


def _step(title: str, *args: str, expect: int = 0, cwd: Path = WORKSPACE) -> str:
    print(f"\n\x1b[1m$ mllc {' '.join(args)}\x1b[0m   # {title}", flush=True)
    proc = subprocess.run(
        [sys.executable, "-m", "mllc", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
        check=False,
    )
    out = (proc.stdout + proc.stderr).rstrip()
    print(out)
    if proc.returncode != expect:
        raise SystemExit(f"demo: 'mllc {' '.join(args)}' exited {proc.returncode}, not {expect}")
    return out


def _free_port(preferred: int) -> int:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", preferred))
            return preferred
        except OSError:
            probe.bind(("127.0.0.1", 0))
            return int(probe.getsockname()[1])


# staging replaces a running version step by step: the new one answers 25% of the
# requests, then all of them, each step judged on the traffic it answered
ROLLOUT = """    rollout:                    # a new version replaces the running one step by step
      strategy: canary
      steps: [25, 100]
      analysis: {min_requests: 40, max_error_rate: 0.01, max_p99_ms: 500, max_disagreement: 0.2}
"""
ROW = {
    "sepal length (cm)": 5.9,
    "sepal width (cm)": 3.0,
    "petal length (cm)": 5.1,
    "petal width (cm)": 1.8,
}


def _traffic(port: int, requests: int, want: int) -> None:
    """Real V2 requests to the staging server, one row each; then wait until the rollout
    file says the candidate answered ``want`` of them and they were compared with the
    running version. Which version answered is in each answer."""
    body = json.dumps(
        {"inputs": [{"name": k, "shape": [1], "datatype": "FP64", "data": [v]}
                    for k, v in ROW.items()]}
    )  # fmt: skip
    answered: Counter[str] = Counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    for _ in range(requests):
        conn.request("POST", "/v2/models/iris/infer", body, {"Content-Type": "application/json"})
        answered[json.loads(conn.getresponse().read())["model_version"]] += 1
    conn.close()
    shown = ", ".join(f"{version} {n}" for version, n in sorted(answered.items()))
    print(f"\n\x1b[1m# {requests} requests to staging\x1b[0m, answered by: {shown}")
    # the running server's state file names its rollout file (earlier steps' files stay)
    states = (WORKSPACE / ".mllc" / "serve" / "iris" / "staging").glob("server-*.json")
    files = []
    for state in states:
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            files.append(WORKSPACE / json.loads(state.read_text())["rollout"]["file"])
    deadline = time.monotonic() + 30  # the server writes its numbers at least every second
    while time.monotonic() < deadline:
        seen = 0  # requests the candidate answered and that were compared (off the path)
        for path in files:
            with contextlib.suppress(OSError, ValueError, KeyError):
                numbers = json.loads(path.read_text())
                seen = max(seen, min(numbers["candidate_stats"]["requests"], numbers["compared"]))
        if seen >= want:
            return
        time.sleep(0.1)


def _canary(port: int) -> None:
    _step(
        "apply the change: v1.1.0 is registered, and staging, which runs v1.0.0, starts a "
        "canary (the stages the preview ran are reused, not run again)",
        "apply",
        "--auto-approve",
    )
    _step("the rollout in progress, and what it waits for", "status")
    _traffic(port, 200, 40)
    _step(
        "the plan reads the step's numbers from the server and decides: advance",
        "plan",
        "--detailed-exitcode",
        expect=2,
    )
    _step("apply moves one step: v1.1.0 answers every request", "apply", "--auto-approve")
    _traffic(port, 60, 40)
    _step("the last step passed: v1.1.0 takes over", "apply", "--auto-approve")


def _batches() -> tuple[Path, Path]:
    """Two labelled batches of 1,000 rows drawn from the training split: one unchanged,
    one whose petal length grew by 1.5 cm (what a new supplier's flowers might do)."""
    import pandas as pd

    train = pd.read_parquet(WORKSPACE / Layout("iris").split("train"))
    same = train.sample(1000, replace=True, random_state=1)
    drifted = train.sample(1000, replace=True, random_state=2)
    drifted["petal length (cm)"] += 1.5
    paths = (
        WORKSPACE.parent / f"{WORKSPACE.name}-same.csv",
        WORKSPACE.parent / f"{WORKSPACE.name}-drifted.csv",
    )
    same.to_csv(paths[0], index=False)
    drifted.to_csv(paths[1], index=False)
    return paths


def _monitoring_loop() -> None:
    same, drifted = _batches()
    _step(
        "monitoring: an unchanged batch (labelled): no breach, exit 0",
        "monitor", "iris", "--env", "staging", "--data", str(same),
    )  # fmt: skip
    _step(
        "monitoring: a drifted labelled batch: a breach, exit 2 (reports in monitoring/)",
        "monitor", "iris", "--env", "staging", "--data", str(drifted),
        expect=2,
    )  # fmt: skip
    _step(
        "the plan retrains because of the breach, and says so",
        "plan",
        "--detailed-exitcode",
        expect=2,
    )
    _step(
        "apply adds the batch to the training data (DVC-tracked) and retrains; the new "
        "version meets the gates like any other",
        "apply",
        "--auto-approve",
    )
    _step(
        "the breach is answered; staging's canary of the retrained version waits for traffic",
        "plan",
        "--detailed-exitcode",
    )
    _step("the monitoring result, versions and deployments", "status")


def main() -> int:
    if WORKSPACE.exists():
        shutil.rmtree(WORKSPACE)
    WORKSPACE.mkdir()
    _step("scaffold a repository: specs/, Git, DVC", "init", ".")
    spec = WORKSPACE / "specs" / "iris.yaml"
    port = _free_port(8081)
    text = spec.read_text(encoding="utf-8").replace("port: 8081", f"port: {port}")
    spec.write_text(text.replace(f"port: {port}\n", f"port: {port}\n{ROLLOUT}", 1), "utf-8")
    _step("check every spec", "validate")
    _step("the spec as mllc reads it, defaults filled in", "show", "specs/iris.yaml")
    _step("what a field means", "explain", "data.split")
    _step("the DVC pipeline the spec compiles to", "compile")
    _step("what apply would do, and why", "plan")
    _step("train, evaluate, select, commit and register v1.0.0", "apply", "--auto-approve")
    _step("a second plan: nothing left to do", "plan", "--detailed-exitcode")
    text = spec.read_text(encoding="utf-8")
    spec.write_text(
        text.replace("C: 1.0", "C: 0.3").replace("accuracy >= 0.9", "accuracy >= 0.92"),
        encoding="utf-8",
    )
    _step(
        "one candidate's param and one gate edited: only that candidate retrains",
        "plan",
        "--detailed-exitcode",
        expect=2,
    )
    _step(
        "preview the change before it is applied: the edited candidate retrains in an "
        "isolated worktree (the checkout is untouched); metrics against what staging runs, "
        "the gates, where the new version would go; exit 2: a new version would be registered",
        "preview",
        "--detailed-exitcode",
        expect=2,
    )
    _canary(port)
    _step("versions, metrics, gates, and what each environment serves", "status")
    rows = (
        '[{"sepal length (cm)": 5.1, "sepal width (cm)": 3.5, "petal length (cm)": 1.4, '
        '"petal width (cm)": 0.2}, {"sepal length (cm)": 6.7, "sepal width (cm)": 3.0, '
        '"petal length (cm)": 5.2, "petal width (cm)": 2.3}]'
    )
    _step(
        "ask the staging server (Open Inference Protocol V2) for predictions",
        "predict",
        "iris",
        "--env",
        "staging",
        rows,
    )
    _monitoring_loop()
    _step(
        "proof: rebuild every registered version from its tag (runs the training again, "
        "every stage, in an isolated worktree with an empty DVC cache) and compare every "
        "output, the model's bytes, the DVC cache and the registry's records",
        "verify",
        "iris",
    )
    _step(
        "the newest version's model card, from recorded evidence only (Markdown for a pull "
        "request; --format html for a page), its verification included",
        "card",
        "iris",
    )
    _step(
        "and its lineage: data files, stages, the model, the environments that ran it",
        "lineage",
        "iris@v1.2.0",
    )
    broken = (WORKSPACE / "specs" / "iris.yaml").read_text(encoding="utf-8")
    broken = broken.replace("metric: f1_macro", "metric: rmse").replace("split:", "splitt:")
    broken = broken.replace(f"port: {port}", "port: 80")
    (WORKSPACE / "specs" / "broken.yaml").write_text(
        broken.replace("name: iris", "name: iris-broken"), encoding="utf-8"
    )
    _step("a spec with mistakes: all of them at once, exit 1", "validate", expect=1)
    print(f"\ndemo finished: the workspace is {WORKSPACE}")
    print(
        "the staging server keeps running (apply starts servers that outlive it):\n"
        f"  curl -s localhost:{port}/v2/models/iris\n"
        f"  stop it: remove 'staging' from {WORKSPACE}/specs/iris.yaml and run "
        "'mllc apply --auto-approve' there"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
