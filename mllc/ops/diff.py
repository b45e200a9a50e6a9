"""``mllc diff BASE HEAD``: what a change to the specs means, between two Git refs.

For reviewers: not a text diff but, per lifecycle, which category of change it is
and which leaves moved. Specs are read from Git (one ``git ls-tree`` and one
``git cat-file --batch`` per ref, no checkout), validated and compiled (pure);
the compiled documents are compared:

- ``params.yaml`` (``problem``, ``data``, ``features``, ``models``: what the stages
  read) -> **retrain**;
- gates -> **re-evaluate**; environments -> **redeploy**;
- metadata and monitoring -> **metadata**.

An invalid spec at either ref is reported as such, with its diagnostics count.
Nothing here touches the working tree, the registry or a deployment.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from mllc import gitcmd
from mllc.compile import compile_spec
from mllc.compile.dvc import pipeline_dir
from mllc.errors import MllcError
from mllc.plan.model import Category
from mllc.plan.values import change_text, leaf_diff
from mllc.spec.load import SPEC_SUFFIXES, find_config, load_estimators, load_text_as_spec
from mllc.spec.models import Lifecycle

Status = Literal["added", "removed", "changed", "unchanged", "invalid"]
_ORDER: tuple[Category, ...] = ("retrain", "re-evaluate", "redeploy", "metadata")
_SYMBOLS = {"added": "+", "removed": "-", "changed": "~", "unchanged": " ", "invalid": "!"}


@dataclass(frozen=True)
class SpecAt:
    """One spec file at one ref: valid (``spec``) or not (``problems`` diagnostics)."""

    file: str
    name: str
    spec: Lifecycle | None
    problems: int = 0


@dataclass(frozen=True)
class Item:
    """One semantic change: its category, the leaf path (if any) and both values."""

    category: Category
    text: str
    path: str | None = None
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class LifecycleDiff:
    name: str
    status: Status
    base_file: str | None = None
    head_file: str | None = None
    items: tuple[Item, ...] = ()
    invalid: Mapping[str, int] = field(default_factory=dict)  # "base"/"head" -> diagnostics

    @property
    def categories(self) -> tuple[Category, ...]:
        present = {i.category for i in self.items}
        return tuple(c for c in _ORDER if c in present)


@dataclass(frozen=True)
class SemanticDiff:
    base: str
    head: str
    lifecycles: tuple[LifecycleDiff, ...]

    def count(self, status: Status) -> int:
        return sum(lc.status == status for lc in self.lifecycles)

    def to_dict(self) -> dict[str, Any]:
        return {
            "base": self.base,
            "head": self.head,
            "lifecycles": [
                {
                    "name": lc.name,
                    "status": lc.status,
                    "files": {"base": lc.base_file, "head": lc.head_file},
                    "categories": list(lc.categories),
                    "changes": [
                        {
                            "category": i.category,
                            "text": i.text,
                            "path": i.path,
                            "before": i.before,
                            "after": i.after,
                        }
                        for i in lc.items
                    ],
                    "invalid": dict(lc.invalid),
                }
                for lc in self.lifecycles
            ],
            "summary": {
                s: self.count(s) for s in ("added", "removed", "changed", "invalid", "unchanged")
            },
        }


# --------------------------------------------------------------------------- Git


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes:
    """A read: no identity; a failure reads ``git ARG failed: LAST LINE OF ITS STDERR``."""
    return gitcmd.output(
        root, *args, stdin=stdin, identity=False, missing=MllcError, last_line=True
    )


def _commit(root: Path, ref: str) -> str:
    if ref.startswith("-"):
        raise MllcError(f"not a Git ref: {ref!r}")
    try:
        return _git(root, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except MllcError:
        raise MllcError(f"not a Git commit: {ref!r}") from None


def read_specs(root: Path, ref: str, paths: Sequence[str]) -> dict[str, str | None]:
    """``path -> text`` of every spec file (``*.yaml``/``*.yml``) under ``paths`` at ``ref``;
    ``None`` for a file that is not UTF-8."""
    commit = _commit(root, ref)
    listing = _git(root, "ls-tree", "-r", "-z", "--full-tree", commit, "--", *paths)
    blobs: list[tuple[str, str]] = []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _, path = entry.decode("utf-8", "surrogateescape").partition("\t")
        _, kind, sha = meta.split()
        if kind == "blob" and path.endswith(SPEC_SUFFIXES):
            blobs.append((path, sha))
    if not blobs:
        return {}
    out = _git(root, "cat-file", "--batch", stdin="".join(f"{s}\n" for _, s in blobs).encode())
    texts: dict[str, str | None] = {}
    for (path, _sha), data in zip(blobs, gitcmd.split_batch(out, len(blobs)), strict=True):
        try:
            texts[path] = data.decode("utf-8") if data is not None else None
        except UnicodeDecodeError:
            texts[path] = None
    return dict(sorted(texts.items()))


# --------------------------------------------------------------------------- compare


def _guess_name(file: str, text: str | None) -> str:
    """The lifecycle name of an invalid spec: its metadata.name if readable, else the stem."""
    try:
        data: Any = yaml.safe_load(text) if text is not None else None
        name = data["metadata"]["name"]
        if isinstance(name, str) and name:
            return name
    except (yaml.YAMLError, TypeError, KeyError):
        pass
    return Path(file).stem


def load_ref(texts: Mapping[str, str | None], estimators: dict[str, str]) -> dict[str, SpecAt]:
    """Validate every spec text; key them by lifecycle name (duplicates count as invalid)."""
    specs: dict[str, SpecAt] = {}
    for file, text in texts.items():
        if text is None:
            at = SpecAt(file, _guess_name(file, None), None, 1)
        else:
            res = load_text_as_spec(file, text, estimators)
            if res.ok and res.spec is not None:
                at = SpecAt(file, res.spec.metadata.name, res.spec)
            else:
                at = SpecAt(file, _guess_name(file, text), None, max(1, len(res.diagnostics)))
        if at.name in specs:  # the second definition of a name: invalid, as validate says
            at = SpecAt(file, f"{at.name} ({file})", None, 1)
        specs[at.name] = at
    return specs


def _documents(spec: Lifecycle, file: str) -> tuple[Any, Any, str]:
    bundle = compile_spec(spec, file)
    root = pipeline_dir(spec.metadata.name)
    return (
        yaml.safe_load(bundle[f"{root}/params.yaml"]),
        yaml.safe_load(bundle[f"{root}/lifecycle.yaml"]),
        bundle[f"{root}/dvc.yaml"].split("\n", 1)[1],  # without the header naming the file
    )


def _leaves(category: Category, old: Any, new: Any, prefix: str) -> Iterator[Item]:
    for path, before, after in leaf_diff(old, new, prefix):
        yield Item(category, change_text(path, before, after), path, before, after)


def compare_specs(old: SpecAt, new: SpecAt) -> tuple[Item, ...]:
    """The semantic changes from one valid spec to another, by category."""
    assert old.spec is not None and new.spec is not None
    old_params, old_record, old_dvc = _documents(old.spec, old.file)
    new_params, new_record, new_dvc = _documents(new.spec, new.file)
    items = [
        item
        for key in dict.fromkeys([*old_params, *new_params])
        for item in _leaves("retrain", old_params.get(key), new_params.get(key), key)
    ]
    if not items and old_dvc != new_dvc:
        items.append(Item("retrain", "the generated dvc.yaml changed"))
    before, after = list(old_record.get("gates") or []), list(new_record.get("gates") or [])
    gates = [
        Item("re-evaluate", f"gate removed: {g}", "gates", g) for g in before if g not in after
    ]
    gates += [
        Item("re-evaluate", f"gate added: {g}", "gates", None, g) for g in after if g not in before
    ]
    if not gates and before != after:
        gates.append(Item("re-evaluate", "gates reordered", "gates", before, after))
    items += gates
    env_old, env_new = old_record.get("environments"), new_record.get("environments")
    items += _leaves("redeploy", env_old, env_new, "environments")
    for section in ("metadata", "monitoring"):
        items += _leaves("metadata", old_record.get(section), new_record.get(section), section)
    if old.file != new.file:
        items.append(
            Item("metadata", f"spec moved: {old.file} → {new.file}", None, old.file, new.file)
        )
    order = {c: i for i, c in enumerate(_ORDER)}
    return tuple(sorted(items, key=lambda i: order[i.category]))


def diff_refs(
    base: Mapping[str, SpecAt], head: Mapping[str, SpecAt], base_ref: str, head_ref: str
) -> SemanticDiff:
    """Pure: the per-lifecycle semantic diff of two validated sets of specs."""
    out: list[LifecycleDiff] = []
    for name in sorted({*base, *head}):
        old, new = base.get(name), head.get(name)
        bf, hf = (old.file if old else None), (new.file if new else None)
        if (old is not None and old.spec is None) or (new is not None and new.spec is None):
            invalid = {
                side: at.problems
                for side, at in (("base", old), ("head", new))
                if at is not None and at.spec is None
            }
            out.append(LifecycleDiff(name, "invalid", bf, hf, invalid=invalid))
        elif old is None:
            out.append(LifecycleDiff(name, "added", bf, hf))
        elif new is None:
            out.append(LifecycleDiff(name, "removed", bf, hf))
        else:
            items = compare_specs(old, new)
            out.append(LifecycleDiff(name, "changed" if items else "unchanged", bf, hf, items))
    return SemanticDiff(base_ref, head_ref, tuple(out))


def semantic_diff(
    root: Path, base_ref: str, head_ref: str, paths: Sequence[str] = ("specs",)
) -> SemanticDiff:
    """Read, validate and compare the specs under ``paths`` at two refs of the repo at ``root``."""
    estimators, _ = load_estimators(find_config(root.resolve()))
    base = load_ref(read_specs(root, base_ref, paths), estimators)
    head = load_ref(read_specs(root, head_ref, paths), estimators)
    return diff_refs(base, head, base_ref, head_ref)


# --------------------------------------------------------------------------- render


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def render(diff: SemanticDiff) -> str:
    """For people: one block per lifecycle that moved, then the counts."""
    lines = [f"Specs from {diff.base} to {diff.head}:", ""]
    width = max((len(c) for c in _ORDER), default=0)
    for lc in diff.lifecycles:
        if lc.status == "unchanged":
            continue
        head = f"  {_SYMBOLS[lc.status]} {lc.name}"
        if lc.status == "added":
            lines.append(f"{head}  (added: {lc.head_file})")
        elif lc.status == "removed":
            lines.append(f"{head}  (removed: was {lc.base_file})")
        elif lc.status == "invalid":
            where = "; ".join(
                f"{_plural(n, 'diagnostic')} at {diff.base if side == 'base' else diff.head}"
                for side, n in lc.invalid.items()
            )
            file = lc.head_file if "head" in lc.invalid else lc.base_file
            lines.append(f"{head}  (invalid {file}: {where})")
        else:
            lines.append(f"{head}  ({', '.join(lc.categories)})")
            lines += [f"      {i.category.ljust(width)}  {i.text}" for i in lc.items]
    if len(lines) == 2:
        lines.append("  No semantic changes.")
    counts = [
        f"{diff.count(s)} {s}"
        for s in ("added", "removed", "changed", "invalid", "unchanged")
        if diff.count(s) or s == "changed"
    ]
    lines += ["", ", ".join(counts) + "."]
    return "\n".join(lines) + "\n"


def to_json(diff: SemanticDiff) -> str:
    return json.dumps(diff.to_dict(), indent=2) + "\n"
