"""What the accelerators look like right now (nvidia-ml-py), with a CPU fallback."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuState:
    index: int
    name: str
    util: int  # percent
    mem_used_mb: int
    mem_total_mb: int

    @property
    def mem_free_mb(self) -> int:
        return self.mem_total_mb - self.mem_used_mb


_nvml: bool | None = None  # initialised once per process; False where it cannot be


def _init() -> bool:
    global _nvml
    if _nvml is None:
        try:
            import pynvml

            pynvml.nvmlInit()
            _nvml = True
        except Exception:  # no package, no driver, no device: a CPU machine
            _nvml = False
    return _nvml


def gpus() -> list[GpuState]:
    """Every NVIDIA GPU nvml can read; empty where there is none (or no driver)."""
    if not _init():
        return []
    import pynvml

    out = []
    try:
        for i in range(pynvml.nvmlDeviceGetCount()):
            h = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(h)
            try:
                util = pynvml.nvmlDeviceGetUtilizationRates(h).gpu
            except Exception:
                util = 0
            name = pynvml.nvmlDeviceGetName(h)
            out.append(GpuState(i, name.decode() if isinstance(name, bytes) else name, int(util),
                                int(mem.used) >> 20, int(mem.total) >> 20))
    except Exception:
        return out
    return out


def cpu_percent_and_mem() -> tuple[float, int, int]:
    """Load average as a share of the cores, and used / total RAM in MB (from /proc)."""
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1) * 100
    except OSError:
        load = 0.0
    total = avail = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    total = int(line.split()[1]) >> 10
                elif line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) >> 10
    except OSError:
        pass
    return load, total - avail, total
