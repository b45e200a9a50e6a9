"""The pure comparisons of ``mllc verify`` (mllc.verify.compare): one failing example per
rule, whole lists of findings compared."""

from __future__ import annotations

import copy
import json
from typing import Any

from mllc.verify.compare import (
    check_model,
    check_payload,
    check_tag,
    compare_stages,
    outputs,
    value_changes,
)
from mllc.verify.model import Finding, StageCheck

A, B, C = "a" * 32, "b" * 32, "c" * 32


def lock() -> dict[str, Any]:
    return {
        "schema": "2.0",
        "stages": {
            "split": {
                "cmd": "mllc stage split iris",
                "deps": [{"path": "clean.parquet", "hash": "md5", "md5": A, "size": 10}],
                "params": {"params.yaml": {"data.split": {"seed": 42}}},
                "outs": [{"path": "train.parquet", "hash": "md5", "md5": B, "size": 20}],
            },
            "select": {
                "cmd": "mllc stage select iris",
                "deps": [{"path": "train.parquet", "hash": "md5", "md5": B, "size": 20}],
                "outs": [
                    {"path": "metrics.json", "hash": "md5", "md5": C, "size": 30},
                    {"path": "model.joblib", "hash": "md5", "md5": A, "size": 40},
                ],
            },
        },
    }


def test_identical_locks_give_identical_stages_in_pipeline_order() -> None:
    assert compare_stages(lock(), lock(), {}) == (
        StageCheck(stage="split", status="identical", outputs=1),
        StageCheck(stage="select", status="identical", outputs=2),
    )


def test_a_differing_output_names_both_hashes_and_sizes() -> None:
    rebuilt = lock()
    rebuilt["stages"]["split"]["outs"][0].update(md5=C, size=21)
    checks = compare_stages(lock(), rebuilt, {})
    assert checks[0].status == "differs" and checks[1].status == "identical"
    assert checks[0].findings == (
        Finding(
            check="stage",
            subject="split: train.parquet",
            detail=f"dvc.lock records md5 {B}, 20 bytes; the rebuild gives md5 {C}, 21 bytes",
        ),
    )


def test_a_differing_json_output_lists_the_values() -> None:
    rebuilt = lock()
    rebuilt["stages"]["select"]["outs"][0]["md5"] = B
    texts = {
        "metrics.json": (
            json.dumps({"test": {"accuracy": 0.9, "f1": 0.8}}).encode(),
            json.dumps({"test": {"accuracy": 0.95, "f1": 0.8}}).encode(),
        )
    }
    (finding,) = compare_stages(lock(), rebuilt, texts)[1].findings
    assert finding.detail.endswith("(committed file → rebuilt: test.accuracy: 0.9 → 0.95)")


def test_a_differing_csv_output_counts_the_lines() -> None:
    rebuilt = lock()
    rebuilt["stages"]["split"]["outs"][0]["md5"] = C
    texts = {"train.parquet": (b"a,b\n1,2\n3,4\n", b"a,b\n1,2\n3,5\n5,6\n")}
    (finding,) = compare_stages(lock(), rebuilt, texts)[0].findings
    assert finding.detail.endswith("(2 of 4 lines differ)")


def test_edited_params_deps_and_cmd_are_lock_findings() -> None:
    recorded = lock()
    split = recorded["stages"]["split"]
    split["params"]["params.yaml"]["data.split"]["seed"] = 7
    split["deps"][0]["md5"] = C
    split["cmd"] = "mllc stage split other"
    (check, _) = compare_stages(recorded, lock(), {})
    assert [(f.check, f.subject) for f in check.findings] == [
        ("lock", "split: cmd"),
        ("lock", "split: params"),
        ("lock", "split: clean.parquet"),
    ]
    assert "params.yaml.data.split.seed: 7 → 42" in check.findings[1].detail
    assert check.findings[2].detail == (
        f"dvc.lock records the input as md5 {C}, 10 bytes; at the commit it is md5 {A}, 10 bytes"
    )


def test_stages_missing_on_either_side() -> None:
    recorded, rebuilt = lock(), lock()
    del rebuilt["stages"]["select"]
    rebuilt["stages"]["extra"] = copy.deepcopy(recorded["stages"]["split"])
    checks = compare_stages(recorded, rebuilt, {})
    assert [(c.stage, c.status) for c in checks] == [
        ("split", "identical"),
        ("select", "not rebuilt"),
        ("extra", "not recorded"),
    ]
    assert [f.check for c in checks for f in c.findings] == ["stage", "lock"]


def test_an_output_only_on_one_side() -> None:
    rebuilt = lock()
    rebuilt["stages"]["select"]["outs"].pop(0)
    (finding,) = compare_stages(lock(), rebuilt, {})[1].findings
    assert (finding.subject, finding.detail) == (
        "select: metrics.json",
        "not an output in the rebuild",
    )


def test_tolerated_outputs_are_not_findings() -> None:
    rebuilt = lock()
    rebuilt["stages"]["select"]["outs"][0]["md5"] = B
    checks = compare_stages(lock(), rebuilt, {}, tolerated=frozenset({"metrics.json"}))
    assert checks[1].status == "identical"


def test_outputs_index_every_stage() -> None:
    assert {p: s for p, (s, _) in outputs(lock()).items()} == {
        "train.parquet": "split",
        "metrics.json": "select",
        "model.joblib": "select",
    }


def test_value_changes_name_absent_keys() -> None:
    assert value_changes({"a": 1, "b": {"c": 2}}, {"b": {"c": 3}, "d": [1]}) == [
        "a: 1 → absent",
        "b.c: 2 → 3",
        "d: absent → [1]",
    ]


def test_payload_metrics_and_lineage_differences_are_findings() -> None:
    payload = {
        "metrics": {"test": {"accuracy": 0.9}},
        "lineage": {"data_sha256": "x", "versions": {"sklearn": "1.5"}},
    }
    findings, notes = check_payload(
        payload,
        {"test": {"accuracy": 0.9}},
        {"data_sha256": "y", "versions": {"sklearn": "1.5"}},
    )
    assert [(f.check, f.subject) for f in findings] == [("registry", "lineage")]
    assert 'data_sha256: "x" → "y"' in findings[0].detail
    assert notes == []


def test_library_versions_alone_are_a_note() -> None:
    payload = {"lineage": {"data_sha256": "x", "versions": {"sklearn": "1.5"}}}
    findings, notes = check_payload(
        payload, None, {"data_sha256": "x", "versions": {"sklearn": "1.6"}}
    )
    assert findings == []
    assert notes == [
        'built with other library versions than this machine\'s: versions.sklearn: "1.5" → "1.6"'
    ]


def test_model_hashes_must_all_agree() -> None:
    assert check_model(A, A, A) == []
    assert check_model(A, A, None) == []  # not rebuilt: the outcome says so, not a finding
    assert [f.check for f in check_model(A, B, A)] == ["lock"]
    assert [f.check for f in check_model(A, A, B)] == ["model"]
    assert [f.check for f in check_model(A, None, B)] == ["lock", "model"]


def test_a_moved_tag_by_its_message_or_by_its_assignments() -> None:
    here, there = "1" * 40, "2" * 40
    assert check_tag("iris@v1.0.0", here, {"commit": here}, []) == []
    assert check_tag("iris@v1.0.0", here, {}, []) == []  # an older mllc wrote no commit
    (moved,) = check_tag("iris@v1.0.0", there, {"commit": here}, [])
    assert moved.detail == (
        f"the tag was moved: its message records commit {here[:12]}, it points at {there[:12]}"
    )
    (stray,) = check_tag("iris@v1.0.0", there, {}, [("iris#staging#1", here)])
    assert stray.detail == (
        f"iris#staging#1 assigns this version at commit {here[:12]}, but the version's tag "
        f"points at {there[:12]}: one of the tags was moved"
    )


# ---------------------------------------------------------------- every message, whole


def test_entries_describe_hash_size_and_files() -> None:
    recorded, rebuilt = lock(), lock()
    recorded["stages"]["split"]["outs"][0] = {"path": "train.parquet", "md5": ""}
    rebuilt["stages"]["split"]["outs"][0] = {
        "path": "train.parquet",
        "md5": f"{C}.dir",
        "size": 1234567,
        "nfiles": 3,
    }
    (finding,) = compare_stages(recorded, rebuilt, {})[0].findings
    assert finding.detail == (
        f"dvc.lock records no hash; the rebuild gives md5 {C}.dir, 1,234,567 bytes, 3 files"
    )
    recorded["stages"]["split"]["outs"][0] = {"path": "train.parquet", "md5": A}
    (finding,) = compare_stages(recorded, rebuilt, {})[0].findings
    assert finding.detail.startswith(f"dvc.lock records md5 {A}; the rebuild")


def test_a_missing_stage_first_does_not_stop_the_others() -> None:
    recorded, rebuilt = lock(), lock()
    del rebuilt["stages"]["split"]
    rebuilt["stages"]["select"]["outs"][1]["md5"] = B
    assert compare_stages(recorded, rebuilt, {}) == (
        StageCheck(
            stage="split",
            status="not rebuilt",
            outputs=0,
            findings=(
                Finding(
                    check="stage",
                    subject="split",
                    detail="dvc.lock records this stage; the pipeline at the commit has no "
                    "such stage",
                ),
            ),
        ),
        StageCheck(
            stage="select",
            status="differs",
            outputs=2,
            findings=(
                Finding(
                    check="stage",
                    subject="select: model.joblib",
                    detail=f"dvc.lock records md5 {A}, 40 bytes; the rebuild gives md5 {B}, "
                    "40 bytes",
                ),
            ),
        ),
    )


def test_a_stage_the_lock_does_not_record_comes_first_too() -> None:
    recorded, rebuilt = lock(), lock()
    del recorded["stages"]["split"]
    recorded["stages"]["select"]["deps"][0]["md5"] = C
    checks = compare_stages(recorded, rebuilt, {})
    assert [(c.stage, c.status, c.outputs) for c in checks] == [
        ("select", "differs", 2),
        ("split", "not recorded", 0),
    ]
    assert checks[1].findings == (
        Finding(
            check="lock",
            subject="split",
            detail="the pipeline at the commit has this stage; its dvc.lock does not record it",
        ),
    )


def test_cmd_and_one_sided_dependencies_whole() -> None:
    recorded, rebuilt = lock(), lock()
    recorded["stages"]["split"]["cmd"] = "old"
    recorded["stages"]["split"]["deps"].append({"path": "gone.csv", "md5": A, "size": 1})
    rebuilt["stages"]["split"]["deps"].append({"path": "new.csv", "md5": B, "size": 2})
    assert compare_stages(recorded, rebuilt, {})[0].findings == (
        Finding(
            check="lock",
            subject="split: cmd",
            detail="dvc.lock records 'old'; dvc.yaml runs 'mllc stage split iris'",
        ),
        Finding(
            check="lock",
            subject="split: gone.csv",
            detail=f"dvc.lock records the input as md5 {A}, 1 bytes; at the commit it is "
            "not an input",
        ),
        Finding(
            check="lock",
            subject="split: new.csv",
            detail=f"dvc.lock records the input as absent; at the commit it is md5 {B}, 2 bytes",
        ),
    )


def test_an_output_only_in_the_rebuild_after_an_identical_one() -> None:
    rebuilt = lock()
    rebuilt["stages"]["select"]["outs"].append({"path": "plots.csv", "md5": B})
    (finding,) = compare_stages(lock(), rebuilt, {})[1].findings
    assert (finding.subject, finding.detail) == (
        "select: plots.csv",
        "not an output in dvc.lock",
    )


def test_json_detail_whole_and_unreadable_json_gives_none() -> None:
    rebuilt = lock()
    rebuilt["stages"]["select"]["outs"][0]["md5"] = B
    base = f"dvc.lock records md5 {C}, 30 bytes; the rebuild gives md5 {B}, 30 bytes"
    changed = {"metrics.json": (b'{"a": "\xc3\xa9", "b": [{"y": 1, "x": 2}]}', b'{"a": "e"}')}
    (finding,) = compare_stages(lock(), rebuilt, changed)[1].findings
    assert finding.detail == (
        f'{base} (committed file → rebuilt: a: "é" → "e"; b: [{{"x": 2, "y": 1}}] → absent)'
    )
    for broken in ((b"{", b"{}"), (b"{}", b"not json"), (None, b"{}")):
        (finding,) = compare_stages(lock(), rebuilt, {"metrics.json": broken})[1].findings
        assert finding.detail == base, broken


def test_line_detail_needs_both_sides() -> None:
    rebuilt = lock()
    rebuilt["stages"]["split"]["outs"][0]["md5"] = C
    base = f"dvc.lock records md5 {B}, 20 bytes; the rebuild gives md5 {C}, 20 bytes"
    for texts in ((None, b"a\n"), (b"a\n", None), (b"a\nb\n", b"a\nb\n")):
        (finding,) = compare_stages(lock(), rebuilt, {"train.parquet": texts})[0].findings
        assert finding.detail == base, texts
    (finding,) = compare_stages(lock(), rebuilt, {"train.parquet": (b"a\nb\n", b"a\n")})[0].findings
    assert finding.detail == f"{base} (1 of 2 lines differ)"


def test_value_changes_of_whole_values_mixed_keys_and_long_values() -> None:
    assert value_changes(1, 2) == ["(whole value): 1 → 2"]
    assert value_changes({1: "a", "b": 2}, {1: "b", "b": 2}) == ['1: "a" → "b"']
    long = "x" * 100
    assert value_changes({"k": long}, {}) == [f"k: {json.dumps(long)[:80]} → absent"]


def test_listing_stops_after_six() -> None:
    six = {f"k{i}": i for i in range(6)}
    payload = {"metrics": six}
    (finding,), _ = check_payload(payload, {}, None)
    assert finding == Finding(
        check="registry",
        subject="metrics",
        detail="the tag records other metrics than the rebuild: "
        + "; ".join(f"k{i}: {i} → absent" for i in range(6)),
    )
    (finding,), _ = check_payload({"metrics": {**six, "k6": 6}}, {}, None)
    assert finding.detail.endswith("k5: 5 → absent; and 1 more")


def test_payload_parts_missing_on_either_side_are_not_compared() -> None:
    assert check_payload({"metrics": {"a": 1}}, None, None) == ([], [])
    assert check_payload({}, {"a": 1}, {"data_sha256": "x"}) == ([], [])
    assert check_payload({"lineage": "not a mapping"}, None, {"data_sha256": "x"}) == ([], [])
    assert check_payload({"lineage": {"a": 1}}, None, ["not", "a", "mapping"]) == ([], [])


def test_a_lineage_key_only_in_the_rebuild_and_two_library_versions() -> None:
    payload = {"lineage": {"versions": {"numpy": "1", "sklearn": "1.5"}}}
    rebuilt = {"selected": "forest", "versions": {"numpy": "2", "sklearn": "1.6"}}
    findings, notes = check_payload(payload, None, rebuilt)
    assert findings == [
        Finding(
            check="registry",
            subject="lineage",
            detail='the tag\'s lineage no longer matches the rebuild: selected: absent → "forest"',
        )
    ]
    assert notes == [
        "built with other library versions than this machine's: "
        'versions.numpy: "1" → "2"; versions.sklearn: "1.5" → "1.6"'
    ]


def test_model_findings_whole() -> None:
    assert check_model(A, None, B) == [
        Finding(
            check="lock",
            subject="model",
            detail=f"the registry records model md5 {A}; the commit's dvc.lock records no model",
        ),
        Finding(
            check="model",
            subject="model",
            detail=f"the rebuild gives model md5 {B}; the registry records {A}",
        ),
    ]
    assert check_model(A, B, None)[0].detail.endswith(f"dvc.lock records {B}")
