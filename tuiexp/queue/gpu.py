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


_last_cpu: tuple[int, int] | None = None  # (busy, total) jiffies at the previous call


def cpu_percent_and_mem() -> tuple[float, int, int]:
    """CPU use since the previous call (all cores, in percent) and used / total RAM in MB,
    from /proc; the first call reports the load average instead."""
    global _last_cpu
    try:
        with open("/proc/stat") as f:
            ticks = [int(x) for x in f.readline().split()[1:]]
        busy, total = sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0), sum(ticks)
        prev, _last_cpu = _last_cpu, (busy, total)
        if prev and total > prev[1]:
            cpu = 100.0 * (busy - prev[0]) / (total - prev[1])
        else:
            cpu = min(100.0, os.getloadavg()[0] / (os.cpu_count() or 1) * 100)
    except (OSError, ValueError, IndexError):
        cpu = 0.0
    total_mb = avail = 0
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    total_mb = int(line.split()[1]) >> 10
                elif line.startswith("MemAvailable:"):
                    avail = int(line.split()[1]) >> 10
    except OSError:
        pass
    return cpu, total_mb - avail, total_mb
