"""The machine line every bench script prints first, so its figures can be compared with others'."""

from __future__ import annotations

import os
import platform
from pathlib import Path


def describe(**versions: str) -> str:
    """CPU model, cores, RAM and Python, then each ``name=version`` given (e.g. ``polars=pl.__version__``)."""
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    extra = "".join(f", {name} {version}" for name, version in versions.items())
    return f"{model}, {os.cpu_count()} CPUs, {ram_gib:.0f} GiB RAM, Python {platform.python_version()}{extra}"
