"""The preview's evidence for require: [wins_on_replay]: the previewed version replayed
against what each environment runs, its verdict in the comparison and in the text and
Markdown renderers (in memory: the replay itself is tests/test_replay.py's)."""

from __future__ import annotations

import dataclasses

from mllc.policy.replay import ReplayVerdict
from mllc.preview.compare import lifecycle_preview
from mllc.preview.model import Preview, Running
from mllc.preview.render import markdown, text
from mllc.spec.deployment import Environment
from mllc.types import RegisteredVersion
from tests.test_preview_render import _context, _lifecycle, _produced

FAIL = ReplayVerdict(
    "failed", "wins_on_replay: v1.1.0 vs v1.0.0 fails: disagreement 40.0% > 5% (...)"
)
OK = ReplayVerdict("passed", "wins_on_replay: disagreement 1.0% ≤ 5% on 60 requests (...)")


def _envs() -> dict[str, Environment]:
    return {
        "staging": Environment(target="local", model="latest", port=8081),
        "production": Environment(
            target="local", model="latest", port=8082, require=["wins_on_replay"]
        ),
    }


def _replaying(verdict: ReplayVerdict, calls: list[tuple[str, str, str]]):  # type: ignore[no-untyped-def]
    def for_env(env: str):  # type: ignore[no-untyped-def]
        if env != "production":
            return None

        def check(candidate: RegisteredVersion, running: RegisteredVersion) -> ReplayVerdict:
            calls.append((env, candidate.version, running.version))
            return verdict

        return check

    return for_env


def test_the_previewed_version_is_replayed_against_what_the_environment_runs() -> None:
    calls: list[tuple[str, str, str]] = []
    ctx = dataclasses.replace(_context(_envs(), []), replay=_replaying(FAIL, calls))
    p = lifecycle_preview(ctx, _produced(0.97, 0.96))
    by_env = {r.environment: r for r in p.environments}
    assert by_env["production"] == Running(
        environment="production",
        version="v1.0.0",
        deltas=by_env["production"].deltas,
        deploy=False,
        reason=FAIL.text,  # why the previewed version is held out
        replay=FAIL.text,
        replay_passed=False,
    )
    assert by_env["staging"].replay is None and by_env["staging"].deploy
    assert set(calls) == {("production", "v1.1.0", "v1.0.0")}

    ok = dataclasses.replace(_context(_envs(), []), replay=_replaying(OK, []))
    passed = {r.environment: r for r in lifecycle_preview(ok, _produced(0.97, 0.96)).environments}
    assert passed["production"].deploy
    assert passed["production"].reason == f"v1.1.0: latest version passing the gates; {OK.text}"
    assert (passed["production"].replay, passed["production"].replay_passed) == (OK.text, True)


def test_the_verdict_shows_in_the_text_and_the_markdown() -> None:
    base = _lifecycle("iris")
    envs = tuple(
        r.model_copy(update={"replay": FAIL.text, "replay_passed": False})
        if r.environment == "production"
        else r
        for r in base.environments
    )
    preview = Preview(
        mllc_version="0",
        commit="c" * 40,
        lifecycles=(base.model_copy(update={"environments": envs}),),
    )
    shown = text(preview).splitlines()
    at = shown.index("  production (runs v1.0.0):")
    assert shown[at + 1 + len(envs[1].deltas) + 1] == f"    FAIL  {FAIL.text}"
    replay = [line for line in markdown(preview).splitlines() if "wins" in line]
    assert replay == [
        "- ❌ wins_on_replay: v1.1.0 vs v1.0.0 fails: disagreement 40.0% &gt; 5% (...)"
    ]
    assert "staging (runs v1.0.0):" in text(preview) and text(preview).count("FAIL  wins") == 1
