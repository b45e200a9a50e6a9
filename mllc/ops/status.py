"""``mllc status``: per lifecycle, how fresh the pipeline is, the versions, gates and deployments.

Built from the same observation as a plan; read-only.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from mllc.observe.world import new_hasher, observe_lifecycle
from mllc.ops.plan import desired_lifecycles
from mllc.policy.gates import evaluate
from mllc.policy.promotion import held_out_metrics
from mllc.registry import list_versions

STATUS_VERSION = 1


def collect(root: Path, paths: Sequence[str]) -> dict[str, Any]:
    desired, _ = desired_lifecycles(root, paths)
    versions = list_versions(root)
    hasher = new_hasher(root)
    lifecycles = []
    for want in desired:
        actual = observe_lifecycle(root, want, versions, hasher)
        stale = [s.name for s in actual.stages if s.stale]
        gates = list(want.lifecycle.gates)
        rows = []
        for v in actual.versions:
            test = held_out_metrics(v)
            results = evaluate(gates, test)
            rows.append(
                {
                    "version": v.version,
                    "commit": v.commit,
                    "created": v.created,
                    "model_md5": v.model_md5,
                    "in_cache": v.in_cache,
                    "test": test,
                    "gates_pass": all(r.passed for r in results),
                    "gates": [r.text() for r in results],
                }
            )
        lifecycles.append(
            {
                "name": want.name,
                "spec": want.spec_file,
                "pipeline": {
                    "fresh": not stale and actual.model_md5 is not None,
                    "stale_stages": stale,
                    "built": actual.model_md5 is not None,
                },
                "metric": (actual.metrics or {}).get("metric"),
                "versions": rows,
                "deployments": [
                    {
                        "environment": d.environment,
                        "target": d.target,
                        "version": d.version,
                        "healthy": d.healthy,
                        "detail": d.detail,
                    }
                    for d in actual.deployments
                ]
                or [
                    {
                        "environment": env,
                        "target": cfg.target,
                        "version": None,
                        "healthy": None,
                        "detail": "not observed yet",
                    }
                    for env, cfg in want.lifecycle.environments.items()
                ],
                "monitoring": [
                    {
                        "environment": m.environment,
                        "report": m.report.id,
                        "time": m.report.time,
                        "version": m.report.version,
                        "breach": m.report.breach,
                        "reasons": list(m.report.reasons),
                        "retrained": m.answered,
                    }
                    for m in actual.monitoring
                ],
            }
        )
    hasher.save()
    return {"version": STATUS_VERSION, "lifecycles": lifecycles}


def render(report: dict[str, Any]) -> str:
    out: list[str] = []
    for lc in report["lifecycles"]:
        pipe = lc["pipeline"]
        if pipe["fresh"]:
            freshness = "up to date"
        elif not pipe["built"]:
            freshness = "never built"
        else:
            freshness = f"stale: {', '.join(pipe['stale_stages'])}"
        out.append(f"{lc['name']}  ({lc['spec']})")
        out.append(f"  pipeline: {freshness}")
        if not lc["versions"]:
            out.append("  versions: none registered")
        for v in lc["versions"]:
            metric = lc["metric"]
            value = v["test"].get(metric) if metric else None
            shown = f"{metric} {value:.4g}" if isinstance(value, int | float) else ""
            gates = "gates pass" if v["gates_pass"] else "gates FAIL: " + "; ".join(v["gates"])
            out.append(
                f"  {v['version']:<9} {v['commit'][:10]}  {shown:<18} {gates}"
                + ("" if v["in_cache"] else "  (model not in local DVC cache)")
            )
        for d in lc["deployments"]:
            version = d["version"] or "-"
            out.append(f"  {d['environment']:<12} {d['target'] or '':<11} {version}  {d['detail']}")
        for m in lc.get("monitoring") or []:
            verdict = "breach: " + "; ".join(m["reasons"]) if m["breach"] else "no breach"
            done = " (retrained with its batch)" if m["retrained"] else ""
            out.append(
                f"  monitor {m['environment']}: {m['time']} on {m['version']}: {verdict}{done}"
            )
        out.append("")
    return "\n".join(out) if out else "no lifecycles\n"
