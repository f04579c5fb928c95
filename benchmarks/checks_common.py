"""Timing helpers shared by the risk-check benchmarks (benchmarks/checks_*.py)."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(v, 2) for v in os.getloadavg()],
    }


def time_runs(fn: Callable[[], Any], runs: int, warmup: int = 2) -> dict[str, float]:
    """Best and median wall-clock (perf_counter) and process CPU time (process_time) of ``runs`` calls, in ms.

    CPU time is the process's (all threads): numpy may use more than one core, and on the
    shared machine the wall-clock time also counts the time spent waiting for a core.
    """
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return {
        "runs": runs,
        "wall_best_ms": round(min(wall) * 1e3, 2),
        "wall_median_ms": round(statistics.median(wall) * 1e3, 2),
        "wall_max_ms": round(max(wall) * 1e3, 2),
        "cpu_best_ms": round(min(cpu) * 1e3, 2),
        "cpu_median_ms": round(statistics.median(cpu) * 1e3, 2),
    }
