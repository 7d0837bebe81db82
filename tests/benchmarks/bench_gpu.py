"""GPU reference, for a machine with a CUDA GPU (never run in CI; no TensorRT needed).

Times the three models in PyTorch CUDA, FP32 and FP16 (batch 1, CUDA events, median of 200 runs after
warm-up), and the same models exported to ONNX in ONNX Runtime CPU on that machine for comparison.
Writes bench/gpu.json (card, date, commit); `make bench` puts it in docs/benchmarks.md's table, marked with the
card. Models come from conversion's builders at the sizes our artifacts use, with random weights
(latency does not depend on the weight values): SSDLite320-MobileNetV3 (the exported graph: boxes +
softmax scores), U-Net depth 4 / base 16 at 256x256, DeepLabv3-MobileNetV3 at 240x320 with 12 classes.

Run: `python tests/benchmarks/bench_gpu.py` (needs torch with CUDA; torchvision for SSD and DeepLab;
onnx + onnxruntime for the CPU column, which is skipped with its reason otherwise).
`--device cpu` rehearses the whole script on a machine without a GPU and writes nothing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

# name -> (builder name, build kwargs, input (H, W))
MODELS = {
    "ssdlite320-mobilenetv3": ("ssd", {"num_classes": 4}, (320, 320)),
    "unet-d4-b16": ("unet", {"num_classes": 2, "depth": 4, "base": 16}, (256, 256)),
    "deeplabv3-mobilenetv3": ("deeplabv3", {"num_classes": 12}, (240, 320)),
}


def build(name: str):
    import torch

    from conversion.models import build_model
    kind, kwargs, size = MODELS[name]
    model = build_model(kind, **kwargs)
    if kind == "ssd":
        from conversion.models.ssd import SSDExport
        model = SSDExport(model)
    return model.eval(), torch.zeros(1, 3, *size)


def time_torch(model, x, device: str, half: bool, runs: int) -> dict:
    import torch

    model = model.to(device)
    x = x.to(device)
    if half:
        model, x = model.half(), x.half()
    times = []
    with torch.inference_mode():
        for _ in range(30):
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()
            for _ in range(runs):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                model(x)
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
        else:
            for _ in range(runs):
                t0 = time.perf_counter()
                model(x)
                times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))]}


def time_onnxruntime(model, x, runs: int) -> dict:
    """Export (opset 17) and time in ONNX Runtime CPU with as many threads as the machine has."""
    try:
        import onnxruntime as ort
        import torch
    except ImportError as exc:
        return {"skipped": f"{exc.name} is not installed"}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.onnx"
        try:
            import warnings
            warnings.filterwarnings("ignore", category=DeprecationWarning)  # the TorchScript exporter, on purpose
            torch.onnx.export(model.float().cpu(), (x.float().cpu(),), str(path), opset_version=17,
                              input_names=["input"], dynamo=False)
        except Exception as exc:  # onnx missing or an export failure: say which
            return {"skipped": f"export failed: {str(exc).splitlines()[0][:200]}"}
        opts = ort.SessionOptions()
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        feed = {"input": x.float().cpu().numpy()}
        for _ in range(5):
            sess.run(None, feed)
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - t0) * 1e3)
    times.sort()
    return {"median_ms": statistics.median(times), "p90_ms": times[int(0.9 * (len(times) - 1))],
            "threads": os.cpu_count()}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    p.add_argument("--runs", type=int, default=200)
    p.add_argument("--out", type=Path, default=None, help="default bench/gpu.json with cuda, nothing with cpu")
    a = p.parse_args()
    try:
        import torch
    except ImportError:
        print("bench_gpu: needs torch (pip install -e '.[train]')", file=sys.stderr)
        return 2
    if a.device == "cuda" and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device here: nothing measured, nothing written", file=sys.stderr)
        return 2
    card = torch.cuda.get_device_name(0) if a.device == "cuda" else f"CPU rehearsal ({platform.machine()})"
    out = a.out if a.out is not None else (ROOT / "bench" / "gpu.json" if a.device == "cuda" else None)
    rows = []
    for name in MODELS:
        row: dict = {"model": name, "input": list(MODELS[name][2])}
        try:
            model, x = build(name)
        except Exception as exc:  # e.g. torchvision missing on that machine
            row["skipped"] = f"{type(exc).__name__}: {exc}"
            rows.append(row)
            print(f"{name}: skipped ({row['skipped']})", flush=True)
            continue
        row["onnxruntime_cpu"] = time_onnxruntime(model, x, max(20, a.runs // 4))
        row["torch_fp32"] = time_torch(model, x, a.device, False, a.runs)
        if a.device == "cuda":
            row["torch_fp16"] = time_torch(model, x, a.device, True, a.runs)
        rows.append(row)
        parts = [f"{k} {v['median_ms']:.2f} ms" for k, v in row.items() if isinstance(v, dict) and "median_ms" in v]
        print(f"{name}: " + ", ".join(parts), flush=True)
    result = {"benchmark": "gpu_reference", "card": card, "device": a.device, "torch": torch.__version__,
              "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d"), "cpu_count": os.cpu_count(),
              "commit": subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                       text=True).stdout.strip(), "rows": rows}
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(result, indent=1) + "\n")
        os.replace(tmp, out)
        print(f"wrote {out}")
    fp16 = "; ".join(f"{r['model']} fp16 {r['torch_fp16']['median_ms']:.2f} ms" for r in rows if "torch_fp16" in r)
    print(f"SUMMARY gpu: {card}: {fp16 or 'rehearsal, no GPU numbers'}")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
