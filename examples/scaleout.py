"""``make demo-scaleout``: one lifecycle beyond one machine, end to end, on 127.0.0.1.

What a team would have, and what stands in for it here:

- an S3 bucket (Amazon S3, MinIO, ...): moto's S3 server (``python -m moto.server``);
- a Dask cluster (on Kubernetes, YARN, HPC ...): ``dask scheduler`` and two
  ``dask worker`` processes;
- a Kubernetes cluster with Argo CD and KServe: none. The environment syncs the GitOps
  way, so apply needs no cluster: it commits the manifests and the Argo CD Application,
  and plan and status say "committed, awaiting sync" until a cluster answers.
- a second machine: a second ``git clone`` with an empty DVC cache.

It needs the ``dask`` and ``s3`` extras and moto (``make demo-scaleout`` installs them),
starts everything in a new temporary folder (or ``$MLLC_DEMO_DIR``) and stops what it
started at the end. Credentials are the fake ones moto accepts, passed in the
environment as a team would pass its own; nothing is written into the repository.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pandas as pd
from distributed import Client
from sklearn.datasets import load_iris

BASE = Path(os.environ.get("MLLC_DEMO_DIR") or tempfile.mkdtemp(prefix="mllc-scaleout-"))
MACHINE_A = BASE / "machine-a"
MACHINE_B = BASE / "machine-b"
BUCKET = "mllc-demo"
STARTUP = 60.0  # seconds a service may take to answer before the demo gives up

SPEC = """\
apiVersion: mllc/v1
kind: Lifecycle
metadata:
  name: iris
  description: Classify iris species from flower measurements
problem: {task: classification, target: target, metric: f1_macro}
data:
  source: {sklearn: iris}
  split: {test: 0.2, stratify: true, seed: 42}
compute:                        # where searches and cross-validation run
  backend: dask
  scheduler: env:MLLC_DASK_SCHEDULER
models:
  logreg:
    estimator: sklearn.linear_model.LogisticRegression
    params: {max_iter: 1000}
  forest:
    estimator: sklearn.ensemble.RandomForestClassifier
    params: {n_estimators: 50, random_state: 0}
    search: {method: grid, cv: 5, space: {max_depth: [2, 3, 5, null]}}
gates: [accuracy >= 0.9]
environments:
  production:
    target: kubernetes
    kubernetes:
      namespace: ml
      storage_uri: "s3://BUCKET/kserve"
      sync: gitops
      argocd: {repo_url: "https://git.example.com/team/models.git"}
"""


def _say(text: str) -> None:
    print(f"\n\x1b[1m# {text}\x1b[0m", flush=True)


def _run(title: str, args: list[str], cwd: Path, env: dict[str, str], expect: int = 0) -> str:
    shown = " ".join(args)
    print(f"\n\x1b[1m[{cwd.name}] $ {shown}\x1b[0m   # {title}", flush=True)
    argv = [sys.executable, "-m", "mllc", *args[1:]] if args[0] == "mllc" else args
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    out = (proc.stdout + proc.stderr).rstrip()
    print(out)
    if proc.returncode != expect:
        raise SystemExit(f"demo: '{shown}' exited {proc.returncode}, not {expect}")
    return out


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until(ready: Callable[[], bool], what: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll ``ready()`` until it is true; fail when ``proc`` ends or STARTUP passes."""
    deadline = time.monotonic() + STARTUP
    while not ready():
        if proc.poll() is not None:
            raise SystemExit(f"demo: {what} ended before it was ready (see {BASE}/*.log)")
        if time.monotonic() > deadline:
            raise SystemExit(f"demo: {what} was not ready within {STARTUP:.0f} s")
        time.sleep(0.1)


def _answers(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _services(env: dict[str, str]) -> Iterator[dict[str, str]]:
    """moto's S3 server and a Dask scheduler with two workers, all on 127.0.0.1."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str]) -> subprocess.Popen[bytes]:
        log = open(BASE / f"{name}.log", "wb")  # noqa: SIM115 (closed with the process)
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        procs.append(proc)
        return proc

    try:
        s3_port = _free_port()
        moto = start(
            "s3", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(s3_port)]
        )
        _wait_until(lambda: _answers(s3_port), "the S3 server", moto)
        endpoint = f"http://127.0.0.1:{s3_port}"
        bin_dir = Path(sys.executable).parent
        scheduler_file = BASE / "scheduler.json"
        scheduler = start(
            "dask-scheduler",
            [
                str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                "--no-dashboard", "--scheduler-file", str(scheduler_file),
            ],
        )  # fmt: skip
        _wait_until(scheduler_file.exists, "the Dask scheduler", scheduler)
        for i in range(2):
            start(
                f"dask-worker-{i}",
                [
                    str(bin_dir / "dask"), "worker", "--scheduler-file", str(scheduler_file),
                    "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1",
                ],
            )  # fmt: skip
        address = json.loads(scheduler_file.read_text(encoding="utf-8"))["address"]
        with Client(address, timeout=STARTUP) as client:
            client.wait_for_workers(2, timeout=STARTUP)
        print(f"S3-protocol server: {endpoint}   Dask scheduler: {address}, 2 workers")
        yield {"endpoint": endpoint, "scheduler": address}
    finally:
        for proc in reversed(procs):
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def _bucket(endpoint: str) -> None:
    boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1").create_bucket(Bucket=BUCKET)


def _objects(endpoint: str, prefix: str) -> list[str]:
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return [item["Key"] for page in pages for item in page.get("Contents", [])]


def _batch(path: Path) -> None:
    frame = load_iris(as_frame=True).frame.drop(columns=["target"])
    pd.concat([frame] * 200, ignore_index=True).to_csv(path, index=False)


def main() -> int:
    if BASE.exists():
        shutil.rmtree(BASE)
    BASE.mkdir(parents=True)
    env = {
        **os.environ,
        "NO_COLOR": "1",
        # the team's credentials, from its usual place (here: the fake ones moto accepts)
        "AWS_ACCESS_KEY_ID": "demo",
        "AWS_SECRET_ACCESS_KEY": "demo-secret",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    env.pop("AWS_PROFILE", None)
    os.environ.update({k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")})
    os.environ["AWS_DEFAULT_REGION"] = "us-east-1"
    with _services(env) as svc:
        endpoint = svc["endpoint"]
        env["MLLC_DASK_SCHEDULER"] = svc["scheduler"]
        env["AWS_ENDPOINT_URL"] = endpoint  # for the KServe storage_uri (s3fs, botocore)
        _bucket(endpoint)
        MACHINE_A.mkdir()
        _say("machine A: a repository whose data and models live in the bucket")
        _run(
            "a DVC remote on S3 (the endpoint: a store that is not AWS)",
            ["mllc", "init", ".", "--remote", f"s3://{BUCKET}/dvc", "--endpoint-url", endpoint],
            MACHINE_A,
            env,
        )
        (MACHINE_A / "specs" / "iris.yaml").write_text(
            SPEC.replace("BUCKET", BUCKET), encoding="utf-8"
        )
        _run("the spec is valid", ["mllc", "validate"], MACHINE_A, env)
        _run(
            "the plan says where training runs and that production syncs through Argo CD",
            ["mllc", "plan"],
            MACHINE_A,
            env,
        )
        _run(
            "apply: the forest's grid search runs on the Dask workers; every output is "
            "pushed to the bucket before the commit and the tag; production's manifests "
            "and Argo CD Application are committed (no cluster, no kubectl)",
            ["mllc", "apply", "--auto-approve"],
            MACHINE_A,
            env,
        )
        _run("status: where v1.0.0 was trained, production awaiting sync", ["mllc", "status"],
             MACHINE_A, env)  # fmt: skip
        _run("what Argo CD will deploy", ["git", "show", "--stat", "HEAD"], MACHINE_A, env)
        keys = _objects(endpoint, "")
        print(f"\nthe bucket holds {len(keys)} objects:")
        for key in sorted(k for k in keys if not k.startswith("dvc/"))[:5]:
            print(f"  s3://{BUCKET}/{key}")
        print(f"  ... and {sum(k.startswith('dvc/') for k in keys)} DVC objects under dvc/")

        _say("machine B: another clone, an empty DVC cache, the same bucket")
        _run("clone", ["git", "clone", "-q", str(MACHINE_A), str(MACHINE_B)], BASE, env)
        _run("status reads Git only", ["mllc", "status"], MACHINE_B, env)
        batch = BASE / "batch.csv"
        _batch(batch)
        _run(
            "bulk scoring on the Dask workers: the model is fetched from the bucket by the "
            "md5 its tag records, checked, then sent to the workers",
            [
                "mllc", "score", "iris", "--version", "v1.0.0", "--data", str(batch),
                "--out", str(BASE / "scored.parquet"), "--backend", "dask",
            ],
            MACHINE_B,
            env,
        )  # fmt: skip
        _run(
            "proof on another machine: rebuild v1.0.0 from its tag, inputs fetched from the "
            "bucket, and compare every output",
            ["mllc", "verify", "iris@v1.0.0"],
            MACHINE_B,
            env,
        )
    print(f"\ndemo finished: the workspace is {BASE} (the services are stopped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
