"""Which registered version each environment should run, and why. Pure: no I/O.

``resolve`` turns an environment's ``model`` (``latest`` or a pinned ``vX.Y.Z``)
into a registered version, or says what blocks it: the gates on the version's
held-out metrics, then the environment's promotion rules (``after``,
``require: [beats_champion, wins_on_replay]``) read from the registry's assignment
history; ``wins_on_replay`` asks the caller's :data:`mllc.policy.replay.ReplayCheck`
(apply and promote replay, plan reads a recorded replay).
:func:`resolve_environment` is the one entry plan, apply, promote and status use.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mllc.policy.gates import GateResult, evaluate
from mllc.policy.replay import GATE as REPLAY_GATE
from mllc.policy.replay import ReplayCheck, ReplayVerdict
from mllc.policy.rollout import rolled_back
from mllc.semver import sort_key
from mllc.spec.deployment import Environment
from mllc.spec.vocab import higher_is_better
from mllc.types import Assignment, RegisteredVersion

History = Mapping[str, Sequence[Assignment]]  # environment -> its assignments, oldest first


@dataclass(frozen=True)
class Resolution:
    """The version an environment should run, or why none can."""

    environment: str
    version: RegisteredVersion | None
    reason: str
    blocked: str | None = None  # set when the spec asks for something that cannot run
    gates: tuple[GateResult, ...] = ()
    # newer versions that ``latest`` passed over because they fail the gates or rules
    skipped: tuple[str, ...] = ()
    replay: ReplayVerdict | None = None  # wins_on_replay's verdict on ``version``


def held_out_metrics(version: RegisteredVersion) -> dict[str, Any]:
    """The version's held-out (test) metrics; empty when the registry has none."""
    test = version.metrics.get("test") if isinstance(version.metrics, dict) else None
    return test if isinstance(test, dict) else {}


@dataclass(frozen=True)
class Promotion:
    """What an environment's promotion rules need: ``after`` and ``require``."""

    after: str | None = None
    ran_after: frozenset[str] = frozenset()  # versions that have run in ``after``
    beats_champion: bool = False
    champion: RegisteredVersion | None = None  # the version the environment runs now
    metric: str = ""
    higher_is_better: bool = True
    wins_on_replay: bool = False
    # the replay's verdict on (candidate, champion); None: unknown until apply replays
    replay: ReplayCheck | None = field(default=None, compare=False)
    # versions rolled back in this environment -> "rolled back in <env>: <why>"
    rolled_back: tuple[tuple[str, str], ...] = ()


def replay_verdict(version: RegisteredVersion, rules: Promotion) -> ReplayVerdict | None:
    """wins_on_replay's verdict on ``version`` (None when the environment does not ask):
    no champion, or the champion itself, has nothing to replay against."""
    if not rules.wins_on_replay:
        return None
    champ = rules.champion
    if champ is None or champ.version == version.version:
        return None
    if rules.replay is None:
        return ReplayVerdict("pending", "wins_on_replay: known after apply")
    return rules.replay(version, champ)


def _rules_block(version: RegisteredVersion, rules: Promotion) -> str | None:
    """Why the promotion rules keep ``version`` out, or None."""
    back = dict(rules.rolled_back).get(version.version)
    if back is not None:
        return f"{version.version} was {back}"
    if rules.after and version.version not in rules.ran_after:
        return f"{version.version} has not run in {rules.after} yet (after: {rules.after})"
    blocked = _beats_block(version, rules)
    if blocked is not None:
        return blocked
    verdict = replay_verdict(version, rules)
    return verdict.text if verdict is not None and verdict.failed else None


def _beats_block(version: RegisteredVersion, rules: Promotion) -> str | None:
    champ = rules.champion
    if rules.beats_champion and champ is not None and champ.version != version.version:
        mine = held_out_metrics(version).get(rules.metric)
        theirs = held_out_metrics(champ).get(rules.metric)
        if not isinstance(mine, int | float) or not isinstance(theirs, int | float):
            unknown = f"{version.version} or {champ.version}"
            return f"beats_champion: {rules.metric} is unknown for {unknown}"
        worse = mine < theirs if rules.higher_is_better else mine > theirs
        if worse:
            return (
                f"beats_champion: {version.version} {rules.metric} {mine:.4g} does not beat "
                f"{champ.version}'s {theirs:.4g}"
            )
    return None


def promotion_rules(
    after: str | None,
    require: Sequence[str],
    env: str,
    versions: Sequence[RegisteredVersion],
    metric: str,
    history: History,
    replay: ReplayCheck | None = None,
) -> Promotion:
    """The environment's ``after``/``require`` facts from the assignment ``history`` (as
    it was when an apply began: a version deployed to the earlier environment by the same
    apply has not *run* there yet)."""
    back = tuple(
        (v, f"rolled back in {env}: {why}") for v, why in rolled_back(history, env).items()
    )
    if not after and "beats_champion" not in require and "wins_on_replay" not in require:
        return Promotion(rolled_back=back)
    by_version = {v.version: v for v in versions}
    ran = (
        frozenset(a.version for a in history.get(after, []) if a.version) if after else frozenset()
    )
    current = running_version(history, env)
    champion = None if current is None else by_version.get(current)
    return Promotion(
        after=after,
        ran_after=ran,
        beats_champion="beats_champion" in require,
        champion=champion,
        metric=metric,
        higher_is_better=higher_is_better(metric),
        wins_on_replay="wins_on_replay" in require,
        replay=replay if "wins_on_replay" in require else None,
        rolled_back=back,
    )


def running_version(history: History, env: str) -> str | None:
    """The version ``env`` runs by the registry: its last assignment of a version (unassign
    events and assignments without a version are passed over); None when it never ran one."""
    current = [a for a in history.get(env, []) if a.version and not a.unassign]
    return current[-1].version if current else None


def needs_history(env_cfg: Environment) -> bool:
    """Whether the environment's rules read the assignment history at all."""
    rollout = env_cfg.rollout is not None  # versions rolled back there are skipped
    rules = {"beats_champion", "wins_on_replay"} & set(env_cfg.require)
    return bool(env_cfg.after) or bool(rules) or rollout


def resolve_environment(
    env: str,
    env_cfg: Environment,
    versions: Sequence[RegisteredVersion],
    gates: Sequence[str],
    metric: str,
    history: Callable[[], History],
    model: str | None = None,
    replay: ReplayCheck | None = None,
) -> tuple[Resolution, Promotion]:
    """The version ``env`` should run (its spec's ``model``, or ``model`` when given):
    the one decision plan, apply, promote and status share. ``history`` is called only
    when the environment's rules need it; ``replay`` (wins_on_replay) only for a
    candidate that passes everything else, against the version ``env`` runs."""
    past: History = history() if needs_history(env_cfg) else {}
    rules = promotion_rules(env_cfg.after, env_cfg.require, env, versions, metric, past, replay)
    wanted = model if model is not None else env_cfg.model
    return resolve(env, wanted, versions, gates, rules), rules


def resolve(
    environment: str,
    model: str,
    versions: Sequence[RegisteredVersion],
    gates: Sequence[str],
    rules: Promotion | None = None,
) -> Resolution:
    """``latest``: the newest version that passes every gate and promotion rule; else the
    pinned version, which must pass them too."""
    rules = rules or Promotion()
    ordered = sorted(versions, key=lambda v: sort_key(v.version))
    if model == "latest":
        if not ordered:
            return Resolution(environment, None, "no version registered yet")
        replayed: list[str] = []  # newer versions the replay kept out, with its numbers
        for version in reversed(ordered):
            results = tuple(evaluate(gates, held_out_metrics(version)))
            if not all(r.passed for r in results):
                continue
            held = _rules_block(version, rules)
            if held is not None:
                replayed += [held] if held.startswith(REPLAY_GATE) else []
                continue
            skipped = [v.version for v in ordered[ordered.index(version) + 1 :]]
            why = "latest version passing the gates"
            back = dict(rules.rolled_back)
            failing = [v for v in skipped if v not in back]
            notes = [f"{', '.join(failing)} fail them"] if failing else []
            notes += [f"{v} was {back[v]}" for v in skipped if v in back]
            if notes:
                why += f" ({'; '.join(notes)})"
            verdict = replay_verdict(version, rules)
            why += "".join(f"; {text}" for text in replayed)
            why += f"; {verdict.text}" if verdict is not None else ""
            return Resolution(
                environment, version, why, gates=results, skipped=tuple(skipped), replay=verdict
            )
        newest = ordered[-1]
        failing = [r.text() for r in evaluate(gates, held_out_metrics(newest)) if not r.passed]
        held = _rules_block(newest, rules)
        return Resolution(
            environment,
            None,
            f"no registered version passes the gates and promotion rules; {newest.version}: "
            + "; ".join([*failing, *([held] if held else [])]),
        )
    pinned = next((v for v in ordered if v.version == model), None)
    if pinned is None:
        known = ", ".join(v.version for v in ordered) or "none"
        return Resolution(
            environment, None, "", blocked=f"{model} is not registered (registered: {known})"
        )
    results = tuple(evaluate(gates, held_out_metrics(pinned)))
    failed = [r.text() for r in results if not r.passed]
    held = _rules_block(pinned, rules)
    if failed or held:
        parts = [f"{model} fails its gates: {'; '.join(failed)}"] if failed else []
        return Resolution(
            environment,
            pinned,
            "",
            blocked="; ".join([*parts, *([held] if held else [])]),
            gates=results,
        )
    verdict = replay_verdict(pinned, rules)
    why = f"pinned to {model}" + (f"; {verdict.text}" if verdict is not None else "")
    return Resolution(environment, pinned, why, gates=results, replay=verdict)
