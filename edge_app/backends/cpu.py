"""The CPU a model runs on, and the instruction-set features that decide which backend x precision is
fastest on it: AVX2, AVX-512 VNNI / AVX-VNNI (INT8 dot products), AMX (Intel's tile units: INT8 and BF16
matrices) and BF16 (AVX-512 BF16 or AMX-BF16 on x86, the BF16 extension on Arm).

Read from ``/proc/cpuinfo`` (Linux; ``flags`` on x86, ``Features`` on Arm). A precision recommendation
records ``signature()``; a different signature means the measurement was made on another kind of CPU.
"""
from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# Feature -> the cpuinfo flags any one of which provides it.
FEATURES: dict[str, tuple[str, ...]] = {
    "AVX2": ("avx2",),
    "AVX-512": ("avx512f",),
    "AVX-512 VNNI": ("avx512_vnni",),
    "AVX-VNNI": ("avx_vnni",),
    "AMX": ("amx_tile",),
    "BF16": ("avx512_bf16", "amx_bf16", "bf16"),
    "Arm dot product": ("asimddp",),
}
# Flags a recommendation's signature keeps: those that change which precision or backend wins.
SIGNATURE_FLAGS = tuple(sorted({f for flags in FEATURES.values() for f in flags} | {"amx_int8", "avx512_fp16"}))


@dataclass(frozen=True)
class CpuInfo:
    """model: the CPU's name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8480+"); cores: usable by this
    process; flags: every cpuinfo flag."""

    model: str
    cores: int
    flags: frozenset[str]

    def has(self, feature: str) -> bool:
        """Whether the CPU has a feature of FEATURES (KeyError for a name not there)."""
        return any(f in self.flags for f in FEATURES[feature])

    def features(self) -> dict[str, bool]:
        return {name: self.has(name) for name in FEATURES}

    def signature(self) -> dict[str, object]:
        """What a precision recommendation records: the model and the flags that matter."""
        return {"model": self.model, "flags": sorted(f for f in SIGNATURE_FLAGS if f in self.flags)}

    def same_kind(self, signature: object) -> bool:
        """True when ``signature`` (a recorded ``signature()``) describes a CPU of this kind."""
        if not isinstance(signature, dict):
            return False
        return signature.get("model") == self.model and sorted(signature.get("flags") or []) == \
            self.signature()["flags"]

    def describe(self) -> str:
        """One line for tables and logs: "AMD EPYC, 2 cores, AVX2 AVX-512 VNNI BF16"."""
        have = [name for name, ok in self.features().items() if ok and name != "AVX-512"]
        return f"{self.model}, {self.cores} cores" + (f", {' '.join(have)}" if have else "")


def read_cpuinfo(text: str, cores: int | None = None) -> CpuInfo:
    """CpuInfo from the text of /proc/cpuinfo (x86 "model name"/"flags", Arm "Features"/"CPU part")."""
    model, flags = "", set[str]()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and not model:
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return CpuInfo(model or platform.processor() or platform.machine(), cores or os.cpu_count() or 1,
                   frozenset(flags))


@lru_cache(maxsize=1)
def cpu_info(path: str = "/proc/cpuinfo") -> CpuInfo:
    """This machine's CPU (cached: it does not change while the process runs)."""
    try:
        text = Path(path).read_text()
    except OSError:
        text = ""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return read_cpuinfo(text, cores)
