"""``mllc verify``'s report for people (text) and machines (JSON). Pure."""

from __future__ import annotations

from mllc.verify.model import VerifyReport, VersionCheck

_MARK = {"identical": "ok", "differs": "DIFFERS", "not rebuilt": "MISSING", "not recorded": "EXTRA"}
_INPUT = {
    "cache": "from the local DVC cache, hash checked",
    "remote": "fetched through DVC, hash checked",
    "missing": "NOT AVAILABLE",
    "corrupt": "CORRUPT in the local DVC cache",
}


def _short(md5: str | None) -> str:
    return md5[:12] if md5 else "none"


def version_text(check: VersionCheck) -> str:
    how = (
        "every stage recomputed from the tag in an isolated worktree with an empty DVC cache"
        if check.stages
        else "not rebuilt"
    )
    out = [f"{check.tag}  commit {check.commit[:10]}  ({check.seconds:.1f} s; {how})"]
    for item in check.inputs:
        out.append(f"  input   {item.path}  md5 {_short(item.md5)}  {_INPUT[item.source]}")
    width = max([len(s.stage) for s in check.stages] + [5])
    for stage in check.stages:
        outputs = f"{stage.outputs} output{'s' if stage.outputs != 1 else ''}"
        out.append(f"  stage   {stage.stage.ljust(width)}  {_MARK[stage.status]}  ({outputs})")
    if check.model_identical:
        out.append(
            f"  model   bit-identical: md5 {check.registry_md5} in the registry, dvc.lock "
            "and the rebuild"
        )
    else:
        out.append(
            f"  model   registry {_short(check.registry_md5)}, dvc.lock {_short(check.lock_md5)}, "
            f"rebuild {_short(check.rebuilt_md5)}"
        )
    cache = f"  cache   {check.cache_checked} object(s) hash to their names"
    if check.cache_absent:
        cache += f"; not in the local cache: {', '.join(check.cache_absent)}"
    out.append(cache)
    if not any(f.check == "tag" for f in check.findings):
        out.append("  tag     points at the commit it was made on; its assignments agree")
    if check.rebuilt_md5 is not None and not any(f.check == "registry" for f in check.findings):
        out.append("  record  the tag's metrics and lineage match the rebuild")
    for note in check.notes:
        out.append(f"  note    {note}")
    for finding in check.findings:
        out.append(f"  ✗ {finding.check}: {finding.subject}: {finding.detail}")
    verdict = {
        "verified": f"verified: {check.tag}",
        "failed": f"NOT verified: {check.tag} ({len(check.findings)} finding(s))",
        "unverifiable": f"UNVERIFIABLE: {check.tag} (an input is not available here)",
    }[check.outcome]
    out.append(verdict)
    return "\n".join(out) + "\n"


def text(report: VerifyReport) -> str:
    parts = [version_text(v) for v in report.versions]
    if len(report.versions) > 1:
        ok = sum(v.outcome == "verified" for v in report.versions)
        parts.append(f"{ok} of {len(report.versions)} versions verified\n")
    return "\n".join(parts)


def to_json(report: VerifyReport) -> str:
    return report.model_dump_json(indent=2) + "\n"
