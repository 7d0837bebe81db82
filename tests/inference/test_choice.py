"""precision = "auto" per CPU: calibrate's recommendation where it was measured on this kind of CPU; on
another kind the candidates that passed the gate are timed again (or, listing none, FP32 is run: no
guessing); explicit choices as configured. The timer is passed in where a test decides which candidate
is fastest (timing is for benchmarks); one test runs the real timer."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from edge_app.backends import installed
from edge_app.backends.cpu import cpu_info, read_cpuinfo
from edge_app.core.artifact import read_meta
from edge_app.inference.choice import resolve, time_candidates

DEMO = Path(__file__).resolve().parents[2] / "edge_app" / "demo"
OTHER_CPU = read_cpuinfo("model name\t: Intel(R) Xeon(R) Platinum 8480+\nflags\t\t: avx2 avx512f avx512_vnni "
                         "avx512_bf16 amx_tile amx_bf16 amx_int8\n", 2)
AVX2_ONLY = read_cpuinfo("model name\t: AMD EPYC 7B12\nflags\t\t: avx avx2 fma\n", 2)


def _cand(backend, precision, ms, ok=True):
    return {"backend": backend, "precision": precision, "median_ms": ms, "within_tolerance": ok,
            "delta_points": 0.0 if ok else -4.0}


@pytest.fixture()
def seg(tmp_path):
    for name in ("segmenter.onnx", "segmenter.json", "segmenter.int8.onnx", "segmenter.int8.json"):
        shutil.copy(DEMO / name, tmp_path / name)
    return tmp_path / "segmenter.onnx"


def _recommend(fp32: Path, backend: str, precision: str, cpu, candidates) -> None:
    fp32.with_name("segmenter.precision.json").write_text(json.dumps({
        "backend": backend, "precision": precision, "checked": True, "onnx_sha256": read_meta(fp32).onnx_sha256,
        "machine": cpu.describe(), "cpu": cpu.signature(), "table": candidates}))


CANDS = [_cand("onnxruntime", "fp32", 90), _cand("onnxruntime", "int8", 45), _cand("openvino", "fp32", 95),
         _cand("openvino", "bf16", 46), _cand("openvino", "int8", 30), _cand("openvino", "int8-qdq", 10, ok=False)]


def test_same_cpu_runs_the_recommendation(seg):
    here = cpu_info()
    _recommend(seg, "openvino", "int8", here, CANDS)
    sha = read_meta(seg).onnx_sha256
    got = resolve("auto", "auto", seg, sha, cpu=here, timer=_no_timer)
    assert (got.backend, got.precision) == (("openvino", "int8") if installed("openvino") else ("onnxruntime", "int8"))
    # the config fixes the backend: the fastest candidate that passed on it (its measured latency holds here)
    got = resolve("onnxruntime", "auto", seg, sha, cpu=here, timer=_no_timer)
    assert (got.backend, got.precision) == ("onnxruntime", "int8")
    # an explicit precision with backend auto: the backend calibrate measured fastest for it on this CPU
    got = resolve("auto", "fp32", seg, sha, cpu=here, timer=_no_timer)
    assert (got.backend, got.precision) == ("onnxruntime", "fp32")


def _no_timer(*_a, **_k):
    raise AssertionError("nothing is re-measured on the CPU the recommendation was made on")


def test_another_cpu_re_measures_what_passed_the_gate(seg):
    _recommend(seg, "openvino", "int8", OTHER_CPU, CANDS)
    asked: list = []

    def timer(fp32, keys, shape, threads):
        asked.extend(keys)
        return {("onnxruntime", "fp32"): 90.0, ("onnxruntime", "int8"): 40.0, ("openvino", "fp32"): 92.0,
                ("openvino", "bf16"): 50.0, ("openvino", "int8"): 60.0}

    got = resolve("auto", "auto", seg, read_meta(seg).onnx_sha256, cpu=cpu_info(), timer=timer,
                  input_shape=(1, 3, 192, 256))
    assert asked[0] == ("onnxruntime", "fp32")                       # the reference first
    assert ("openvino", "int8-qdq") not in asked                      # failed the gate: never re-timed
    assert ("openvino", "bf16") in asked or not cpu_info().has("BF16") or not installed("openvino")
    assert (got.backend, got.precision) == ("onnxruntime", "int8") and "re-measured" in got.why


def test_another_cpu_without_bf16_never_times_bf16(seg):
    _recommend(seg, "openvino", "bf16", OTHER_CPU, CANDS)
    asked: list = []

    def timer(fp32, keys, shape, threads):
        asked.extend(keys)
        return {k: 50.0 for k in keys}

    got = resolve("auto", "auto", seg, read_meta(seg).onnx_sha256, cpu=AVX2_ONLY, timer=timer)
    assert ("openvino", "bf16") not in asked
    assert (got.backend, got.precision) == ("onnxruntime", "fp32")  # all equal: nothing beats the reference


def test_another_cpu_and_no_candidates_refuses_to_guess(seg, caplog):
    fp32 = seg
    fp32.with_name("segmenter.precision.json").write_text(json.dumps({
        "backend": "onnxruntime", "precision": "int8", "checked": True, "onnx_sha256": read_meta(fp32).onnx_sha256,
        "machine": OTHER_CPU.describe(), "cpu": OTHER_CPU.signature()}))
    got = resolve("auto", "auto", fp32, read_meta(fp32).onnx_sha256, cpu=cpu_info(), timer=_no_timer)
    assert (got.backend, got.precision) == ("onnxruntime", "fp32") and "not guessed" in got.why
    assert "Xeon" in caplog.text and "calibrate --apply" in caplog.text


@pytest.mark.skipif(not installed("openvino"), reason="OpenVINO is in the dev extra ([openvino])")
def test_real_timer_times_each_candidate(seg):
    ms = time_candidates(seg, [("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8")],
                         (1, 3, 192, 256), threads=2, rounds=1, runs=2)
    assert set(ms) == {("onnxruntime", "fp32"), ("openvino", "fp32"), ("openvino", "int8")}
    assert all(v > 0 for v in ms.values())
