"""Metrics against hand-computed values (docs/design.md "Accuracy metrics"), and the comparison of
two dumps when the dumps themselves are wrong (missing, unreadable, mismatched)."""

import json
import math

import numpy as np
import pytest

from npu_adapt import metrics
from npu_adapt.compare import compare_dumps
from npu_adapt.metrics import (
    ascend_verdict,
    compare_output,
    float_metrics,
    streamed_stats,
    token_agreement,
    topk_agreement,
)

CRITERIA = {
    "rel_l2_max": 0.01,
    "rel_l2_fail": 0.05,
    "cosine_min": 0.999,
    "cosine_floor": 0.99,
    "atol": 0.0,
    "rtol": 0.1,
}


def test_every_float_metric_matches_hand_computation():
    r = np.array([1, 2, 3, 4], dtype=np.float32)
    t = np.array([1, 2, 3, 5], dtype=np.float32)
    m = float_metrics(t, r, atol=0.0, rtol=0.1)
    assert m["max_abs_diff"] == 1.0
    assert m["mean_abs_diff"] == 0.25
    assert m["rmse"] == 0.5  # sqrt(1 / 4)
    assert m["rel_l2"] == pytest.approx(1 / math.sqrt(30), rel=1e-15)
    assert m["cosine"] == pytest.approx(34 / math.sqrt(30 * 39), rel=1e-15)  # <t,r> = 1+4+9+20
    assert m["max_rel_diff"] == pytest.approx(1 / (4 + 4e-6), rel=1e-12)  # eps = 1e-6 * max|r|
    assert m["within_rtol_frac"] == 0.75  # 1 > 0.1 * 4 for the last element only


def test_three_levels_pass_warn_fail_at_the_band_and_the_fail_limit():
    at_limit = compare_output(
        np.array([0.0, 8.125]), np.array([0.0, 8.0]), "hidden", {**CRITERIA, "rel_l2_max": 0.015625}
    )
    assert at_limit["rel_l2"] == 0.015625  # 0.125 / 8, exact in binary: the band's edge still passes
    assert at_limit["status"] == "pass" and at_limit["reason"] is None
    r = np.array([3.0, 4.0])  # ||r|| = 5
    inside = compare_output(np.array([3.0, 4.04]), r, "hidden", CRITERIA)
    assert inside["status"] == "pass" and inside["reason"] is None and inside["ascend_verdict"] == "Yes"
    above_band = compare_output(np.array([3.0, 4.1]), r, "hidden", CRITERIA)  # rel_l2 0.02, cosine 0.99988
    assert above_band["status"] == "warn" and above_band["reason"] == "rel_l2 0.02 > rel_l2_max 0.01"
    beyond = compare_output(np.array([3.0, 4.5]), r, "hidden", CRITERIA)  # rel_l2 0.1, cosine 27 / (5 * sqrt(29.25))
    assert beyond["status"] == "fail"
    assert beyond["reason"] == "rel_l2 0.1 > rel_l2_fail 0.05; cosine 0.99846 < cosine_min 0.999"
    looser = compare_output(np.array([3.0, 4.1]), r, "hidden", {**CRITERIA, "rel_l2_max": 0.05})
    assert looser["status"] == "pass"
    orthogonal = compare_output(
        np.array([0.0, 1.0]), np.array([1.0, 0.0]), "hidden", {**CRITERIA, "rel_l2_max": 2, "rel_l2_fail": 2}
    )
    assert (
        orthogonal["cosine"] == 0.0
        and orthogonal["status"] == "fail"
        and orthogonal["reason"] == "cosine 0 < cosine_floor 0.99"
    )


def test_default_criteria_come_from_the_schema_per_compute_dtype():
    import yaml

    table = yaml.safe_load(metrics.SCHEMA.read_text())["$defs"]["dtype_criteria"]
    assert metrics.criteria_classes() == ["float32", "float32_tf32", "float16", "bfloat16"]
    for klass, entry in table.items():
        assert metrics.dtype_criteria(klass) == entry["criteria"] and set(entry["criteria"]) == set(
            metrics.CRITERIA_KEYS
        )
        assert entry["rationale"]
    # tighter where the format keeps more bits: float32 < float32_tf32 <= float16 < bfloat16
    limits = [table[k]["criteria"]["rel_l2_max"] for k in ("float32", "float32_tf32", "float16", "bfloat16")]
    assert limits == sorted(limits) and limits[0] < limits[1] < limits[3]
    assert metrics.criteria_class("float32", reduced_float32=True) == "float32_tf32"
    assert metrics.criteria_class("bfloat16", reduced_float32=True) == "bfloat16"
    criteria, sources = metrics.resolve_criteria("bfloat16", {"cosine_min": 0.9}, "m", {"top5": True})
    assert criteria == {**table["bfloat16"]["criteria"], "cosine_min": 0.9, "top5": True}
    assert sources["rel_l2_max"] == "dtype default (bfloat16)"
    assert sources["cosine_min"] == "config (accuracy.cosine_min)"
    assert sources["top5"] == "model override (models.m.accuracy.top5)"
    with pytest.raises(ValueError, match="no default accuracy criteria for 'int8'"):
        metrics.dtype_criteria("int8")


def test_zeros_in_the_reference_do_not_cause_a_false_failure():
    # The element-wise relative error explodes where the reference is ~0; rel_l2 does not.
    r = np.array([0.0, 0.0, 1.0, -2.0])
    t = np.array([1e-7, 0.0, 1.0, -2.0])
    m = compare_output(t, r, "hidden", CRITERIA)
    assert m["max_rel_diff"] == pytest.approx(1e-7 / (2e-6 + metrics.TINY))  # eps = 1e-6 * 2
    assert m["max_rel_diff"] > 0.04
    assert m["rel_l2"] == pytest.approx(1e-7 / math.sqrt(5))
    assert m["within_rtol_frac"] == 0.75  # 1e-7 > 0 + 0.1 * 0: only the near-zero element is out
    assert m["status"] == "pass"
    judged = compare_output(t, r, "hidden", {**CRITERIA, "within_min": 0.99})
    assert judged["status"] == "warn" and judged["reason"] == "within_rtol_frac 0.75 < within_min 0.99"


def test_all_zero_reference():
    zero = np.zeros(3)
    same = compare_output(zero, zero, "hidden", CRITERIA)
    assert same["rel_l2"] == 0.0 and same["cosine"] == 1.0 and same["status"] == "pass"
    nonzero = compare_output(np.array([0.0, 1e-3, 0.0]), zero, "hidden", CRITERIA)
    assert nonzero["rel_l2"] == math.inf and nonzero["cosine"] == 0.0
    assert nonzero["status"] == "fail" and "rel_l2 inf > rel_l2_fail 0.05" in nonzero["reason"]


def test_identical_outputs_have_cosine_exactly_one():
    # A self-check's outputs are identical: its cosine is 1, never 0.9999999999999998.
    rng = np.random.default_rng(0)
    for size in (3, 1000, 100_003):
        x = rng.standard_normal(size).astype(np.float32) * 10.0 ** rng.integers(-20, 20)
        assert compare_output(x, x.copy(), "hidden", CRITERIA)["cosine"] == 1.0


def test_nan_in_target_where_reference_is_finite_fails_even_with_good_metrics_elsewhere():
    r = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    t = np.array([1.0, np.nan, 3.0], dtype=np.float16)
    m = compare_output(t, r, "hidden", CRITERIA)
    assert m["nan_target"] == 1 and m["inf_target"] == 0 and m["nonfinite_where_ref_finite"] == 1
    assert m["rel_l2"] == 0.0 and m["cosine"] == pytest.approx(1.0, abs=1e-15)  # over the elements finite in both
    assert m["within_rtol_frac"] == pytest.approx(2 / 3)
    assert m["status"] == "fail" and m["reason"] == "1 NaN/Inf in target where reference is finite"
    assert m["ascend_verdict"] == "No"


def test_inf_in_target_fails_and_is_counted():
    m = compare_output(np.array([np.inf, -np.inf, 1.0]), np.array([1.0, 1.0, 1.0]), "hidden", CRITERIA)
    assert m["inf_target"] == 2 and m["nan_target"] == 0
    assert m["status"] == "fail" and m["reason"].startswith("2 NaN/Inf in target")


def test_nonfinite_reference():
    r = np.array([1.0, np.nan, np.inf])
    agreeing = compare_output(np.array([1.0, np.nan, np.inf]), r, "hidden", CRITERIA)
    assert agreeing["nan_reference"] == 1 and agreeing["inf_reference"] == 1
    assert agreeing["status"] == "pass" and agreeing["within_rtol_frac"] == 1.0
    differing = compare_output(np.array([1.0, 2.0, -np.inf]), r, "hidden", CRITERIA)
    assert differing["ref_nonfinite_mismatch"] == 2
    assert differing["status"] == "fail" and "2 NaN/Inf in reference where target differs" in differing["reason"]


def test_nothing_finite_to_compare_fails_with_a_reason():
    m = compare_output(np.array([np.nan]), np.array([np.nan]), "hidden", CRITERIA)
    assert m["rel_l2"] is None and m["status"] == "fail"
    assert "undefined (no element finite in both)" in m["reason"]


def test_shape_mismatch_is_a_clear_failure_not_a_crash():
    m = compare_output(np.zeros((1, 4)), np.zeros((1, 5)), "hidden", CRITERIA)
    assert m["status"] == "fail" and m["reason"] == "shape mismatch: target [1, 4] vs reference [1, 5]"
    assert m["rel_l2"] is None and m["ascend_verdict"] == "No"
    assert m["shape_target"] == [1, 4] and m["shape_reference"] == [1, 5]


def test_float_against_integer_is_a_dtype_failure_but_a_lower_precision_float_is_not():
    r = np.arange(4, dtype=np.float32)
    half = compare_output(r.astype(np.float16), r, "hidden", CRITERIA)
    assert half["status"] == "pass" and half["dtype_target"] == "float16"
    m = compare_output(r.astype(np.int64), r, "hidden", CRITERIA)
    assert m["status"] == "fail" and m["reason"] == "dtype mismatch: target int64 vs reference float32"


def test_dtype_target_is_the_compute_dtype_and_the_stored_one_is_kept():
    r = np.arange(4, dtype=np.float32)
    m = compare_output(r, r, "hidden", {}, ("bfloat16", "float32"))  # a bfloat16 output is stored widened
    assert (m["dtype_target"], m["stored_dtype_target"], m["dtype_reference"]) == ("bfloat16", "float32", "float32")
    ids = compare_output(
        np.zeros((1, 3), dtype=np.int64), np.zeros((1, 3), dtype=np.int64), "token_ids", {}, ("bfloat16", "float32")
    )
    assert ids["dtype_target"] == "int64"  # token ids are what they store


def test_token_ids_exact_agreement_and_first_differing_token():
    r = np.array([[0, 5, 8, 9]], dtype=np.int64)
    same = compare_output(r.copy(), r, "token_ids", CRITERIA)
    assert same["exact_match"] is True and same["first_mismatch"] is None and same["status"] == "pass"
    differ = compare_output(np.array([[0, 5, 7, 9]]), r, "token_ids", CRITERIA)
    assert differ["exact_match"] is False and differ["first_mismatch"] == 2 and differ["token_agreement"] == 0.75
    assert differ["status"] == "fail" and differ["reason"] == "generated tokens differ from position 2 (row 0)"
    assert differ["ascend_verdict"] == "No"
    late = compare_output(np.array([[0, 5, 7, 9]]), r, "token_ids", {**CRITERIA, "token_prefix": 2})
    assert (
        late["status"] == "warn"
        and late["reason"] == "generated tokens differ from position 2 (row 0), at or after token_prefix 2"
    )
    early = compare_output(np.array([[0, 5, 7, 9]]), r, "token_ids", {**CRITERIA, "token_prefix": 3})
    assert early["status"] == "fail" and early["reason"].endswith("before token_prefix 3")


def test_token_ids_of_different_lengths_differ_where_the_shorter_ends():
    shorter = token_agreement(np.array([[0, 5, 8]]), np.array([[0, 5, 8, 1, 1]]))
    assert shorter == {
        "exact_match": False,
        "token_agreement": 0.6,
        "first_mismatch": 3,
        "first_mismatch_row": 0,
        "length_target": 3,
        "length_reference": 5,
    }
    batch = compare_output(np.zeros((2, 3), dtype=np.int64), np.zeros((1, 3), dtype=np.int64), "token_ids", CRITERIA)
    assert batch["status"] == "fail" and batch["reason"].startswith("shape mismatch")


LOOSE = {**CRITERIA, "rel_l2_fail": 10, "cosine_min": -1, "cosine_floor": -1}


def test_top1_and_top5_agreement_per_row():
    reference = np.array(
        [
            [0.0, 1, 2, 3, 4, 5, 6],  # top-1: 6, top-5: {2..6}
            [6.0, 5, 4, 3, 2, 1, 0],  # top-1: 0, top-5: {0..4}; RMS sqrt(13)
            [0.0, 0, 0, 0, 0, 0, 9],
        ]
    )
    target = reference.copy()
    target[1, [0, 1]] = [5, 6]  # row 1: argmax moves to 1 (reference margin 6 - 5 = 1), same top-5 set
    target[2, 0] = 8  # row 2: same argmax
    top1 = topk_agreement(target, reference, 1, band=0.2)  # band 0.2 * sqrt(13) = 0.72 < margin 1
    assert top1["match"] == pytest.approx(2 / 3) and top1["first_mismatch_row"] == 1
    assert (top1["mismatches"], top1["near_ties"], top1["first_hard_row"]) == (1, 0, 1)
    m = compare_output(target, reference, "class_scores", {**LOOSE, "rel_l2_max": 0.1})
    assert m["top1_match"] == pytest.approx(2 / 3) and m["top1_first_mismatch_row"] == 1
    assert m["status"] == "fail" and m["reason"].startswith(
        "top1 disagrees on 1 row(s) beyond the near-tie band (first at row 1)"
    )
    no_top1 = compare_output(target, reference, "class_scores", {**LOOSE, "rel_l2_max": 10, "top1": False})
    assert no_top1["status"] == "pass"


def test_a_near_tied_class_disagreement_is_a_warn_stating_the_margin():
    """Random-init logits are nearly tied: a flip inside the expected error band warns."""
    reference = np.array([[1.0, 0.999, -1.0, 0.5]])  # RMS 0.901; margin between classes 0 and 1: 0.001
    target = np.array([[0.998, 1.0, -1.0, 0.5]])
    m = compare_output(target, reference, "class_scores", {**LOOSE, "rel_l2_max": 0.01})  # band 2 * 0.01 * 0.901
    assert m["status"] == "warn" and m["top1_near_ties"] == 1 and m["top1_max_tie_margin"] == pytest.approx(0.001)
    assert m["reason"] == (
        "top1 disagrees on 1 near-tied row(s): reference margin <= 0.001, "
        "within the band 0.018 (2 x rel_l2_max x the row's RMS)"
    )
    clear = np.array([[1.0, 0.5, -1.0, 0.9]])  # margin 0.5: no tie, a real disagreement
    flipped = np.array([[0.5, 1.0, -1.0, 0.9]])
    assert compare_output(flipped, clear, "class_scores", {**LOOSE, "rel_l2_max": 0.01})["status"] == "fail"


def test_top5_set_disagreement():
    reference = np.array([[10.0, 9, 8, 7, 6, 1, 0]])
    target = np.array([[10.0, 9, 8, 7, 0, 1, 6]])  # class 4 leaves the top-5, class 6 enters: margin 6 - 0
    top5 = topk_agreement(target, reference, 5)
    assert (top5["match"], top5["first_mismatch_row"], top5["mismatches"]) == (0.0, 0, 1)
    assert topk_agreement(target, reference, 1)["match"] == 1.0
    m = compare_output(target, reference, "class_scores", {**LOOSE, "rel_l2_max": 0.01, "top5": True})
    assert (
        m["status"] == "fail" and "top5 disagrees on 1 row(s) beyond the near-tie band (first at row 0)" in m["reason"]
    )
    tied = topk_agreement(target, reference, 5, band=1.0)  # band 1 x RMS 6.52 >= margin 6
    assert (tied["near_ties"], tied["max_tie_margin"]) == (1, 6.0)


@pytest.mark.parametrize(
    ("cosine", "max_abs_diff", "verdict"),
    [
        (0.995, 0.002, "Yes"),
        (0.98, 0.002, "No"),
        (0.98, 0.0005, "Yes"),
        (0.89, 0.0, "No"),
        (0.9999, 1.5, "No"),
        (None, 0.0, "No"),
    ],
)
def test_ascend_verdict_is_cann_precision_compare_rule(cosine, max_abs_diff, verdict):
    assert ascend_verdict(cosine, max_abs_diff) == verdict


def test_streamed_metrics_equal_whole_array_numpy_for_any_layout(tmp_path, monkeypatch):
    """Chunked accumulation (tiny chunks here) of C-order, Fortran-order and memory-mapped
    arrays gives the same numbers as numpy on the whole arrays."""
    monkeypatch.setattr(metrics.chunks, "CHUNK_ELEMENTS", 7)
    rng = np.random.default_rng(0)
    r = rng.standard_normal((5, 4, 3)).astype(np.float32)
    t = (r + 1e-3 * rng.standard_normal(r.shape)).astype(np.float16)
    np.save(tmp_path / "r.npy", np.asfortranarray(r))
    mapped = np.load(tmp_path / "r.npy", mmap_mode="r")
    assert mapped.flags.f_contiguous and not mapped.flags.c_contiguous
    r64, t64 = r.astype(np.float64), t.astype(np.float64)
    diff = np.abs(t64 - r64)
    expected = {
        "max_abs_diff": diff.max(),
        "mean_abs_diff": diff.mean(),
        "rmse": np.sqrt((diff**2).mean()),
        "rel_l2": np.linalg.norm(diff) / np.linalg.norm(r64),
        "max_rel_diff": (diff / (np.abs(r64) + 1e-6 * np.abs(r64).max() + metrics.TINY)).max(),
        "cosine": (t64 * r64).sum() / (np.linalg.norm(t64) * np.linalg.norm(r64)),
        "within_rtol_frac": (diff <= 1e-5 + 1e-3 * np.abs(r64)).mean(),
    }
    strided = np.repeat(r, 2, axis=1)[:, ::2, :]
    assert np.array_equal(strided, r) and not strided.flags.c_contiguous
    for reference in (r, np.asfortranarray(r), mapped, strided):
        for target in (t, np.asfortranarray(t)):
            m = float_metrics(target, reference, 1e-5, 1e-3)
            for key, value in expected.items():
                assert m[key] == pytest.approx(value, rel=1e-12), key
    stats = streamed_stats(mapped)
    assert stats["mean"] == pytest.approx(r64.mean(), abs=1e-12) and stats["std"] == pytest.approx(r64.std(), rel=1e-12)
    assert (stats["min"], stats["max"]) == (r64.min(), r64.max())


def test_topk_streams_rows(monkeypatch):
    monkeypatch.setattr(metrics.chunks, "CHUNK_ELEMENTS", 10)  # 2 rows of 5 classes per block
    rng = np.random.default_rng(1)
    reference = rng.standard_normal((3, 4, 5))
    target = reference.copy()
    target[2, 1] = -target[2, 1]  # flattened row 9: argmax of a negated row moves
    top1 = topk_agreement(target, reference, 1)
    assert (top1["match"], top1["first_mismatch_row"]) == (pytest.approx(11 / 12), 9)


# compare_dumps: two index.json files, written here as the dump jobs write them.


def write_dump(directory, role, tensors: dict, status="ok", reason=None, kinds=None, **header):
    directory.mkdir(parents=True, exist_ok=True)
    entries = []
    for name, array in tensors.items():
        np.save(directory / f"{name}.npy", array)
        entries.append(
            {
                "name": name,
                "file": f"{name}.npy",
                "shape": list(array.shape),
                "dtype": str(array.dtype),
                "kind": (kinds or {}).get(name, "hidden"),
            }
        )
    index = {
        "model": "m",
        "role": role,
        "device": "cpu",
        "device_name": "cpu",
        "dtype": "float32",
        "status": status,
        "reason": reason,
        "tensors": entries,
        **header,
    }
    (directory / "index.json").write_text(json.dumps(index))
    return directory / "index.json"


def test_compare_dumps_reports_every_problem_as_a_failed_output(tmp_path):
    good = np.arange(6, dtype=np.float32).reshape(2, 3)
    reference = write_dump(tmp_path / "reference", "reference", {"a": good, "b": good, "c": good, "d": good})
    target = write_dump(tmp_path / "target", "target", {"a": good, "c": good.reshape(3, 2), "d": good, "extra": good})
    (tmp_path / "target" / "d.npy").write_bytes(b"not a numpy file")
    result = compare_dumps("m", reference, target, {"rel_l2_max": 0.02})
    assert result["status"] == "error"  # an unreadable dump: the evidence itself is bad
    assert result["criteria"] == {**metrics.dtype_criteria("float32"), "rel_l2_max": 0.02}
    assert (
        result["criteria_source"]["rel_l2_max"] == "config (accuracy.rel_l2_max)"
        and result["criteria_class"] == "float32"
    )
    outputs = result["outputs"]
    assert outputs["a"]["status"] == "pass" and outputs["a"]["rel_l2"] == 0.0
    assert outputs["b"]["status"] == "fail" and outputs["b"]["reason"] == "missing from target"
    assert outputs["c"]["reason"] == "shape mismatch: target [3, 2] vs reference [2, 3]"
    assert outputs["d"]["status"] == "error" and outputs["d"]["reason"].startswith("cannot read dump: ValueError")
    assert outputs["extra"]["reason"] == "in target but not in reference"
    for name in ("b", "c", "d", "extra"):
        assert f"{name}: " in result["reason"]
        assert set(outputs[name]) >= {
            "max_abs_diff",
            "rel_l2",
            "cosine",
            "top1_match",
            "nan_target",
            "ascend_verdict",
            "status",
        }


def test_same_placement_is_a_self_check_and_a_failure_stays_a_failure(tmp_path):
    good = np.arange(6, dtype=np.float32).reshape(2, 3)
    modes = {"float32_matmul_precision": "highest", "reduced_float32": False}
    reference = write_dump(
        tmp_path / "reference", "reference", {"a": good}, compute_dtype="float32", precision_modes=modes
    )
    same = write_dump(tmp_path / "same", "target", {"a": good}, compute_dtype="float32", precision_modes=modes)
    result = compare_dumps("m", reference, same)
    assert result["status"] == "self-check" and result["self_check"] is True
    assert "checks determinism, not a port" in result["reason"]
    broken = write_dump(tmp_path / "broken", "target", {"a": good * 2}, compute_dtype="float32", precision_modes=modes)
    assert compare_dumps("m", reference, broken)["status"] == "fail"
    low = write_dump(tmp_path / "low", "target", {"a": good}, compute_dtype="bfloat16", precision_modes=modes)
    result = compare_dumps("m", reference, low)
    assert result["status"] == "pass" and result["self_check"] is False and result["criteria_class"] == "bfloat16"
    tf32 = write_dump(
        tmp_path / "tf32",
        "target",
        {"a": good},
        compute_dtype="float32",
        precision_modes={**modes, "reduced_float32": True},
    )
    result = compare_dumps("m", reference, tf32, None, {"top5": True})
    assert (result["status"], result["criteria_class"]) == ("pass", "float32_tf32")
    assert result["criteria_source"]["top5"] == "model override (models.m.accuracy.top5)"
    assert result["criteria_source"]["rel_l2_max"] == "dtype default (float32_tf32)"


def test_compare_dumps_carries_a_blocked_upstream(tmp_path):
    reference = write_dump(tmp_path / "reference", "reference", {"a": np.zeros(2)})
    target = write_dump(tmp_path / "target", "target", {}, status="blocked", reason="forward: RuntimeError: boom")
    result = compare_dumps("m", reference, target, {})
    assert result["status"] == "blocked" and result["reason"] == "upstream target blocked: forward: RuntimeError: boom"
    assert result["outputs"] == {}


def test_compare_dumps_uses_the_kind_declared_in_the_index(tmp_path):
    ids = np.array([[0, 3, 4, 1]])
    reference = write_dump(
        tmp_path / "reference", "reference", {"generated_ids": ids}, kinds={"generated_ids": "token_ids"}
    )
    target = write_dump(
        tmp_path / "target", "target", {"generated_ids": np.array([[0, 3, 5, 1]])}, kinds={"generated_ids": "token_ids"}
    )
    result = compare_dumps("m", reference, target, {})
    generated = result["outputs"]["generated_ids"]
    assert generated["kind"] == "token_ids" and generated["first_mismatch"] == 2
    assert result["status"] == "fail"
