"""The repository's default DVC remote: where it is, pushing to it, fetching from it.

A version's outputs (the model, the training split monitor compares with, the data
``.dvc`` pointers name) live in the DVC cache; with a default remote (``core.remote``,
docs/remote.md) they are pushed there before apply commits and tags, and another clone
fetches just the objects a command needs, by the md5 its records give. DVC does the
transfer, in a child process (DVC's imports stay out of mllc's process); mllc checks
what arrives by hashing it, as for any cache object.

An ``s3://`` remote needs DVC's S3 plugin (``dvc-s3``): without it every use says which
extra to install. Credentials come from the usual AWS sources (environment, profile,
instance role) and appear in no message.
"""

from __future__ import annotations

import configparser
import importlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from mllc.dvcrepo import cache_object
from mllc.errors import MllcError
from mllc.hashing import file_md5
from mllc.procs import preexec_die_with_parent
from mllc.saferead import RefusedRead, read_text

Progress = Callable[[str], None]

S3_EXTRA = "mllc[s3]"
# The modules each URL scheme needs, for DVC's remote and for fsspec (publishing).
_S3_MODULES = ("dvc_s3", "s3fs")
# DVC's transfers give up on an unreachable endpoint after botocore's retries; this
# bounds a remote that accepts connections and never answers.
TIMEOUT = 600.0

_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|(^|_)KEY($|_)|KEY_ID", re.I)
_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s:]+:[^/@\s]*@")


class RemoteError(MllcError):
    message = "DVC remote"


@dataclass(frozen=True)
class Remote:
    name: str
    url: str


def _config(root: Path) -> configparser.ConfigParser:
    """.dvc/config, then .dvc/config.local over it (DVC's precedence), read bounded."""
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    for name in ("config", "config.local"):
        try:
            text = read_text(root / ".dvc" / name, root)
        except (OSError, RefusedRead):
            continue
        if text:
            try:
                parser.read_string(text)
            except configparser.Error:
                continue
    return parser


def default_remote(root: Path) -> Remote | None:
    """``core.remote`` and its URL; None when no default remote is configured."""
    config = _config(root)
    name = config.get("core", "remote", fallback="").strip().strip("'\"")
    if not name:
        return None
    for section in config.sections():
        if section.strip().strip("'") in (f'remote "{name}"', f"remote '{name}'"):
            url = config.get(section, "url", fallback="").strip().strip("'\"")
            return Remote(name, url) if url else None
    return None


def scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def require_extra(
    url: str, what: str = "the DVC remote", modules: Sequence[str] = _S3_MODULES
) -> None:
    """RemoteError naming ``mllc[s3]`` when ``url`` is on S3 and one of ``modules`` (DVC's
    S3 plugin and s3fs for a DVC remote) cannot be imported."""
    if scheme(url) not in ("s3", "s3a"):
        return
    for module in modules:
        try:
            importlib.import_module(module)
        except ImportError:
            raise RemoteError(
                f"{what} {redact(url)} is on S3, which needs mllc's S3 support "
                f"(the {module} package): pip install '{S3_EXTRA}'"
            ) from None


def redact(text: str) -> str:
    """``text`` without what could be a credential: ``user:pass@`` in URLs, the values of
    secret-looking environment variables (AWS_SECRET_ACCESS_KEY, AWS_ACCESS_KEY_ID, …)."""
    text = _URL_CREDENTIALS.sub(r"\1***@", text)
    for name, value in os.environ.items():
        if len(value) >= 6 and _SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "***")
    return text


_HINTS = (  # (what DVC or botocore says, what it means)
    ("Unable to locate credentials", "no AWS credentials found (AWS_ACCESS_KEY_ID, a profile)"),
    ("InvalidAccessKeyId", "the AWS credentials were refused"),
    ("SignatureDoesNotMatch", "the AWS credentials were refused"),
    ("InvalidClientTokenId", "the AWS credentials were refused"),
    ("ExpiredToken", "the AWS credentials have expired"),
    ("AccessDenied", "the credentials may not use this bucket (access denied)"),
    ("Forbidden", "the credentials may not use this bucket (access denied)"),
    ("Could not connect to the endpoint", "the storage endpoint does not answer"),
    ("Connect timeout", "the storage endpoint does not answer"),
    ("NoSuchBucket", "the bucket does not exist"),
)
_NOISE = (
    "unexpected error - ",
    "failed to push data to the cloud - ",
    "failed to pull data from the cloud - ",
)


def remote_failure(output: str) -> bool:
    """Whether DVC's ``output`` says the remote failed (unreachable, credentials refused,
    no bucket), as opposed to a stage or the workspace."""
    return any(needle in output for needle, _hint in _HINTS)


def _reason(output: str) -> str:
    """What DVC's output says went wrong, on one line, without query strings or secrets."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")] or lines or ["no output"]
    line = errors[-1].removeprefix("ERROR:").strip()
    for noise in _NOISE:
        line = line.replace(noise, "")
    line = re.sub(r"\?[^\s\"']*", "", line)  # a request's query string says nothing useful
    found = next(((n, h) for n, h in _HINTS if any(n in ln for ln in lines)), None)
    if found is not None:
        needle, hint = found
        line = f"{hint} ({line if needle.startswith('Could not') else needle})"
    if len(line) > 300:
        line = line[:297] + "..."
    return redact(line)


def _child(root: Path, argv: Sequence[str], timed_out: int) -> subprocess.CompletedProcess[str]:
    """``python ARGV`` in ``root``, bounded by TIMEOUT (then exit status ``timed_out``)."""
    try:
        return subprocess.run(
            [sys.executable, *argv],
            cwd=root,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            check=False,
            timeout=TIMEOUT,
            preexec_fn=preexec_die_with_parent(),
        )
    except subprocess.TimeoutExpired:
        message = f"ERROR: no answer in {TIMEOUT:g} s"
        return subprocess.CompletedProcess(argv, timed_out, "", message)


def _dvc(root: Path, args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return _child(root, ["-m", "dvc", *args], 1)


def failure(root: Path, output: str, doing: str = "pull from") -> RemoteError:
    """The one-line error for DVC ``output`` that :func:`remote_failure` recognised."""
    remote = default_remote(root)
    where = f" {remote.name!r} ({redact(remote.url)})" if remote else ""
    return RemoteError(f"cannot {doing} the DVC remote{where}: {_reason(output)}")


def push(root: Path, targets: Sequence[str], progress: Progress) -> Remote | None:
    """``dvc push TARGETS`` to the default remote (None: there is none, nothing done).

    RemoteError, one line, when the extra is missing or the push fails."""
    remote = default_remote(root)
    if remote is None or not targets:
        return remote
    require_extra(remote.url)
    proc = _dvc(root, ["push", *targets])
    if proc.returncode != 0:
        raise RemoteError(
            f"cannot push to the DVC remote {remote.name!r} ({redact(remote.url)}): "
            f"{_reason(proc.stderr + proc.stdout)}"
        )
    progress(f"    pushed {', '.join(targets)} to the DVC remote {remote.name!r}")
    return remote


# DVC's own transfer (dvc/data_cloud.py ``DataCloud.pull``): the objects by hash into
# the repository's cache. Exit 1: some object is not on the remote; 2: the remote failed.
_FETCH = """
import sys
try:
    from dvc.repo import Repo
    from dvc_data.hashfile.hash_info import HashInfo
    result = Repo(sys.argv[1]).cloud.pull([HashInfo("md5", m) for m in sys.argv[2:]])
except Exception as exc:
    print(f"ERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
    sys.exit(2)
sys.exit(1 if result.failed else 0)
"""


def fetch(root: Path, md5s: Iterable[str], what: str = "") -> list[str]:
    """Fetch the objects ``md5s`` that the local cache lacks from the default remote into
    it, through DVC; the md5s fetched. Nothing when there is no remote or none is
    missing. RemoteError when the remote cannot be read; an object the remote lacks is
    left absent (the caller says what is missing). Fetched bytes are hashed by the
    caller before any use, as every cache read is."""
    missing = [m for m in dict.fromkeys(md5s) if not cache_object(root, m).is_file()]
    remote = default_remote(root)
    if not missing or remote is None:
        return []
    require_extra(remote.url)
    proc = _child(root, ["-c", _FETCH, str(root), *missing], 2)
    got = [m for m in missing if cache_object(root, m).is_file()]
    if proc.returncode not in (0, 1):  # 1: not on the remote, the caller says so
        raise RemoteError(
            f"cannot fetch {what or 'from'} the DVC remote {remote.name!r} "
            f"({redact(remote.url)}): {_reason(proc.stderr + proc.stdout)}"
        )
    return got


def restore(root: Path, rel: str, md5: str, what: str = "") -> bool:
    """Put the file DVC recorded for output ``rel`` (with ``md5``) into the workspace, from
    the local cache or else fetched from the default remote, its bytes hashed on the way
    (a temporary file, renamed once it hashes to ``md5``). False when neither has it;
    RemoteError when the copy does not hash to ``md5``."""
    source = cache_object(root, md5)
    if not source.is_file():
        fetch(root, [md5], what=what or f"{rel} from")
    if not source.is_file():
        return False
    target = root / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.fetch.tmp")
    shutil.copyfile(source, tmp)
    os.chmod(tmp, 0o644)
    if file_md5(tmp) != md5:
        tmp.unlink(missing_ok=True)
        raise RemoteError(f"{rel}: the DVC cache's copy does not hash to {md5} as dvc.lock says")
    os.replace(tmp, target)
    return True
