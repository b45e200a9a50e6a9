"""The ``local`` target: one real V2 inference server process per environment.

Servers are started detached (their own session: they outlive the apply), write a
state file when ready, and are observed through the server itself — its V2
metadata says which version and model hash it serves. Switching versions starts
the new server on the same port (SO_REUSEPORT) and stops the old one only once
the new one answers ready, so the endpoint never goes dark.

Files, under the repository: ``.mllc/serve/<name>/<env>/server-<id>.json`` (state,
written by the server) and ``.log``; captured requests in
``.mllc/capture/<name>/<env>/``. The token is passed by the name of its
environment variable; its value is never written anywhere.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from mllc import procs
from mllc.errors import MllcError
from mllc.saferead import RefusedRead, read_json
from mllc.serve.limits import (
    BODY_TIMEOUT,
    HEADER_TIMEOUT,
    IDLE_TIMEOUT,
    MAX_BATCH_SIZE,
    MIB,
    WORKERS,
)
from mllc.spec.models import Lifecycle
from mllc.targets import local_rollout
from mllc.targets.base import Progress, model_file
from mllc.targets.local_net import check_port_free
from mllc.targets.local_net import request as request  # ops.predict asks through it
from mllc.types import DeploymentState, RegisteredVersion, RolloutStep

READY_TIMEOUT = 60.0
STOP_TIMEOUT = 10.0


IDENTITY = ("lifecycle", "environment")  # which server; every other Settings field is a setting
_LABELS = {"token_env": "token", "capture_dir": "capture"}  # as the spec and plan call them
_UNKNOWN = object()


@dataclass(frozen=True)
class Settings:
    """What one local environment's server must run with (the spec, then mllc's defaults).

    Every field after the identity is the ``mllc serve`` option of the same name
    (``token_env`` is ``--token-env``): deploy passes each, the server records each in its
    state file, and observe compares each — a field added here is deployed and compared
    with no other change. No secret values: the token is named by its variable.
    """

    lifecycle: str
    environment: str
    host: str
    port: int
    token_env: str | None  # the variable's name, from ``token: env:NAME``
    capture_dir: str | None = None  # relative to the repository, the server's working dir
    capture_max_bytes: int = 5 * MIB
    capture_files: int = 5
    max_body_bytes: int = MIB
    max_connections: int = 256
    header_timeout: float = HEADER_TIMEOUT
    body_timeout: float = BODY_TIMEOUT
    idle_timeout: float = IDLE_TIMEOUT
    workers: int = WORKERS
    max_batch_size: int = MAX_BATCH_SIZE  # concurrent requests predicted together

    @classmethod
    def from_record(cls, lifecycle: str, environment: str, env: dict[str, Any]) -> Settings:
        token = env.get("token")
        return cls(
            lifecycle=lifecycle,
            environment=environment,
            host=str(env.get("host") or "127.0.0.1"),
            port=int(env["port"]),
            token_env=token.split(":", 1)[1] if isinstance(token, str) else None,
            capture_dir=capture_path(lifecycle, environment),
        )

    def options(self) -> dict[str, Any]:
        """The server's settings by ``mllc serve`` option (dest) name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in IDENTITY}

    def arguments(self) -> list[str]:
        """The options as ``mllc serve`` arguments (None: the option is not given)."""
        args = []
        for name, value in self.options().items():
            if value is not None:
                args += [f"--{name.replace('_', '-')}", str(value)]
        return args


def _show(name: str, value: Any) -> str:
    if value is _UNKNOWN:
        return "not recorded"
    if value is None:
        return "none"
    return f"env:{value}" if name == "token_env" else str(value)


def settings_drift(settings: Settings, server: Server) -> list[str]:
    """Each setting the server runs with that differs from ``settings``: 'name: old → new'."""
    if server.settings is None:
        return [
            f"the server (pid {server.pid}) does not record its settings (started by an "
            "older mllc): restart it with the spec's"
        ]
    out = []
    for name, want in settings.options().items():
        have = server.settings.get(name, _UNKNOWN)
        if have != want:
            out.append(f"{_LABELS.get(name, name)}: {_show(name, have)} → {_show(name, want)}")
    return out


@dataclass(frozen=True)
class Server:
    """One running (or dead) server, from its state file."""

    state_file: Path
    pid: int
    version: str
    model_md5: str
    host: str
    port: int
    settings: dict[str, Any] | None = None  # the options it runs with, as it recorded them
    rollout: Any = None  # its state file's ``rollout``: the canary it runs (local_rollout)


def serve_dir(root: Path, lifecycle: str, environment: str) -> Path:
    return root / ".mllc" / "serve" / lifecycle / environment


def capture_path(lifecycle: str, environment: str) -> str:
    """Where the server captures requests, relative to the repository (its working dir)."""
    return f".mllc/capture/{lifecycle}/{environment}"


def capture_dir(root: Path, lifecycle: str, environment: str) -> Path:
    return root / capture_path(lifecycle, environment)


def alive(pid: int) -> bool:
    """Whether the server process ``pid`` runs; a zombie (exited, not yet reaped) is not serving."""
    return procs.running(pid)


def servers(root: Path, lifecycle: str, environment: str) -> list[Server]:
    found = []
    for path in sorted(serve_dir(root, lifecycle, environment).glob("server-*.json")):
        try:
            data = read_json(path, root)  # bounded, regular, inside: a checkout holds anything
            recorded = data.get("settings")
            found.append(
                Server(
                    path,
                    int(data["pid"]),
                    str(data["version"]),
                    str(data["model_md5"]),
                    str(data["host"]),
                    int(data["port"]),
                    recorded if isinstance(recorded, dict) else None,
                    data.get("rollout"),
                )
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError, RefusedRead):
            continue  # a state file being written, or foreign: not a server we can talk to
    return found


def _token(settings: Settings) -> str | None:
    """The token's value from its variable, stripped as the server strips it; None if unset."""
    value = os.environ.get(settings.token_env, "").strip() if settings.token_env else ""
    return value or None


def observe(root: Path, settings: Settings) -> DeploymentState:
    """Ask the running server(s) what they serve; dead ones are reported as such.

    ``drift`` lists every way the live servers differ from ``settings``: a setting they
    run with (from the state file each server writes), a token value that no longer
    opens them, more than one server sharing the port.
    """
    running = servers(root, settings.lifecycle, settings.environment)

    def state(version: str | None, healthy: bool, detail: str, **extra: Any) -> DeploymentState:
        return DeploymentState(
            lifecycle=settings.lifecycle,
            environment=settings.environment,
            target="local",
            version=version,
            healthy=healthy,
            detail=detail,
            **extra,
        )

    if not running:
        return state(None, False, "no server running")
    live = [s for s in running if alive(s.pid)]
    if not live:
        s = running[-1]
        return state(
            s.version,
            False,
            f"server for {s.version} (pid {s.pid}) is not running",
            port=s.port,
        )
    drift: list[str] = []
    if len(live) > 1:  # an interrupted switch: both answer on the shared port
        drift.append(
            f"{len(live)} servers share the port (pid {', '.join(str(s.pid) for s in live)}): "
            "one is kept"
        )
    for server in live:
        drift += [line for line in settings_drift(settings, server) if line not in drift]
    s = live[-1]
    where = f"{s.host}:{s.port}"
    token = _token(settings)
    try:
        status, meta = request(
            s.host, s.port, "GET", f"/v2/models/{settings.lifecycle}", token=token
        )
    except OSError as exc:
        return state(
            s.version,
            False,
            f"server pid {s.pid} not answering on {where}: {exc.strerror or exc}",
            port=s.port,
        )
    split = local_rollout.observation(root, s.rollout, s.version)
    if status == 401:
        if token is not None and not any(line.startswith("token:") for line in drift):
            drift.append(f"token: env:{settings.token_env} holds another value than the server's")
        ready, _ = request(s.host, s.port, "GET", "/v2/health/ready")
        ask = f"set {settings.token_env} to ask it" if settings.token_env else "it wants a token"
        return state(
            s.version,
            ready == 200,
            f"on {where} (version from its state file: {ask})",
            port=s.port,
            host=s.host,
            drift=tuple(drift),
            rollout=split,
        )
    if status != 200 or not isinstance(meta, dict):
        return state(
            s.version,
            False,
            f"{where} answered {status}",
            port=s.port,
        )
    versions = meta.get("versions") or [None]
    md5 = (meta.get("parameters") or {}).get("model_md5")
    return state(
        str(versions[0]),
        True,
        f"serving on {where}" + (f" ({len(live)} servers)" if len(live) > 1 else ""),
        port=s.port,
        host=s.host,
        model_md5=md5 if isinstance(md5, str) else None,
        drift=tuple(drift),
        rollout=split,
    )


def _wait_ready(
    proc: subprocess.Popen[bytes], state: Path, log: Path, settings: Settings, version: str
) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(encoding="utf-8", errors="replace").strip().splitlines()[-3:]
            raise MllcError(
                f"the {settings.environment} server exited ({proc.returncode}) before it was "
                f"ready: {' / '.join(tail) or 'no output'} (log: {log})"
            )
        if state.is_file():
            try:
                status, _ = request(
                    settings.host, settings.port, "GET", "/v2/health/ready", timeout=1.0
                )
            except OSError:
                status = 0
            if status == 200:
                return
        time.sleep(0.05)
    proc.kill()
    raise MllcError(f"the {settings.environment} server for {version} was not ready in time")


def stop(root: Path, settings: Settings, keep: Path | None = None) -> list[int]:
    """SIGTERM every server of the environment but ``keep``; SIGKILL after a grace period."""
    stopped = []
    targets = [
        s for s in servers(root, settings.lifecycle, settings.environment) if s.state_file != keep
    ]
    for s in targets:
        if alive(s.pid):
            os.kill(s.pid, signal.SIGTERM)
            stopped.append(s.pid)
    deadline = time.monotonic() + STOP_TIMEOUT
    for s in targets:
        while alive(s.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(s.pid):
            os.kill(s.pid, signal.SIGKILL)
        s.state_file.unlink(missing_ok=True)
        s.state_file.with_suffix(".log").unlink(missing_ok=True)
    return stopped


def deploy(
    root: Path,
    settings: Settings,
    version: RegisteredVersion,
    progress: Callable[[str], None],
    step: RolloutStep | None = None,
) -> None:
    """Start ``version``'s server (with ``step``: and its candidate), wait until it is
    ready, then stop the previous ones."""
    if settings.token_env and _token(settings) is None:
        raise MllcError(
            f"{settings.lifecycle}/{settings.environment} requires a token: set the "
            f"environment variable {settings.token_env}"
        )
    model = model_file(root, version.model_md5)
    ours = [s for s in servers(root, settings.lifecycle, settings.environment) if alive(s.pid)]
    if not any(s.port == settings.port for s in ours):
        check_port_free(settings.lifecycle, settings.environment, settings.host, settings.port)
    folder = serve_dir(root, settings.lifecycle, settings.environment)
    folder.mkdir(parents=True, exist_ok=True)
    ident = secrets.token_hex(4)
    state = folder / f"server-{ident}.json"
    log = folder / f"server-{ident}.log"
    args = [
        sys.executable, "-m", "mllc.serve",
        "--name", settings.lifecycle,
        "--env", settings.environment,
        "--version", version.version,
        "--model-md5", version.model_md5,
        "--model-file", str(model),
        "--state-file", str(state),
        *settings.arguments(),  # every setting: host, port, token variable, capture, limits
    ]  # fmt: skip
    if step is not None:  # the candidate beside it
        args += local_rollout.arguments(step, model_file(root, step.candidate.model_md5), folder)
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            args,
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the apply, and a Ctrl-C in its terminal
        )
    _wait_ready(proc, state, log, settings, version.version)
    previous = stop(root, settings, keep=state)
    where = f"{settings.host}:{settings.port}"
    note = f", stopped pid {', '.join(map(str, previous))}" if previous else ""
    also = f" + {step.strategy} {step.candidate.version} at {step.weight}%" if step else ""
    progress(
        f"    {settings.environment}: serving {version.version}{also} on {where} "
        f"(pid {proc.pid}{note})"
    )


class LocalTarget:
    """The ``local`` target as a :class:`mllc.targets.base.Target`."""

    def observe(self, root: Path, spec: Lifecycle, env: str) -> DeploymentState:
        return observe(root, _settings(spec, env))

    def orphans(self, root: Path, name: str, known: Collection[str]) -> tuple[DeploymentState, ...]:
        """Servers of removed environments, observed on the host and port they recorded."""
        found = []
        for env in self.running(root, name):
            if env not in known:
                s = servers(root, name, env)[-1]
                record = {"host": s.host, "port": s.port}
                found.append(observe(root, Settings.from_record(name, env, record)))
        return tuple(found)

    def running(self, root: Path, name: str) -> list[str]:
        folder = root / ".mllc" / "serve" / name
        envs = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
        return [env for env in envs if servers(root, name, env)]

    def render(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        version: RegisteredVersion,
        source: str,
        step: RolloutStep | None = None,
    ) -> dict[str, str]:
        return {}  # a local server needs no file in the repository

    def publish(
        self, root: Path, spec: Lifecycle, env: str, version: RegisteredVersion, progress: Progress
    ) -> None:
        return None  # the server loads the model from this machine's DVC cache

    def deploy(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        version: RegisteredVersion,
        files: Sequence[str],
        progress: Progress,
        step: RolloutStep | None = None,
    ) -> dict[str, Any]:
        """Start ``version``'s server unless one already serves it with every setting; with
        ``step``, the stable version's with the candidate beside it (local_rollout)."""
        if step is not None and step.weight == 0 and step.strategy == "canary":
            version, step = step.stable, None  # rolled back: the stable version alone
        settings = _settings(spec, env)
        now = observe(root, settings)
        main = step.stable if step is not None else version
        split = now.rollout.rollout_id if now.rollout is not None else None
        if (
            now.healthy
            and now.version == main.version
            and now.port == settings.port
            and now.model_md5 in (None, main.model_md5)
            and not now.drift  # every setting (host, token, limits...) as the spec asks
            and split == (step.rollout_id if step is not None else None)
        ):
            progress(f"    {env}: already serving {now.version}" + (f" ({split})" if split else ""))
            return {"version": now.version, "unchanged": True}
        deploy(root, settings, main, progress, step)
        if step is None:
            return {"version": version.version, "port": settings.port}
        pair = {"candidate": step.candidate.version, "weight": step.weight}
        return {"version": main.version, **pair, "rollout_id": step.rollout_id}

    def keep(
        self,
        root: Path,
        spec: Lifecycle,
        env: str,
        versions: Sequence[RegisteredVersion],
        progress: Progress,
    ) -> str | None:
        """Restart what runs if its settings differ from the spec's: a token added or a host
        narrowed must not wait for a version that passes the gates."""
        settings = _settings(spec, env)
        now = observe(root, settings)
        same = [v for v in versions if v.version == now.version]
        if not (now.healthy and now.drift and same):
            return None
        deploy(root, settings, same[-1], progress)
        return same[-1].version

    def stop(self, root: Path, name: str, env: str) -> list[str] | None:
        """Every server of the environment, on the host and port the last one recorded."""
        running = servers(root, name, env)
        if not running:
            return None
        s = running[-1]
        return [str(pid) for pid in stop(root, Settings(name, env, s.host, s.port, None))]


def _settings(spec: Lifecycle, env: str) -> Settings:
    """The spec's settings of ``env``'s server."""
    record = spec.environments[env].model_dump(mode="json")
    return Settings.from_record(spec.metadata.name, env, record)
