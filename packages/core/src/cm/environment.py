"""Where cm runs: the versions that matter for reproducing a result, and the device's name.
One source for the crash report, the tracker's tags, a sweep's parent run and the bench."""

import platform
import re
import sys
from importlib import metadata
from pathlib import Path

VERSIONED = ("torch", "transformers", "mlflow", "optuna", "click", "numpy")


def versions() -> dict[str, str]:
    """Python, the platform, each of ``VERSIONED`` ("absent" when not installed) and every
    installed ``cm-*`` distribution, by name."""
    found = {"python": platform.python_version(), "platform": platform.platform()}
    for name in VERSIONED:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "absent"
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower()
        if name.startswith("cm-"):
            found[name] = dist.version
    return dict(sorted(found.items()))


def device_name(device: str) -> str:
    """The GPU's name for a CUDA device (``"cuda"`` or ``"cuda:1"``), else the CPU's model
    name (``/proc/cpuinfo``, then what ``platform`` knows)."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8")
    except OSError:
        cpuinfo = ""
    found = re.search(r"^model name\s*:\s*(.+)$", cpuinfo, re.M)
    if found:
        return found.group(1).strip()
    return platform.processor() or platform.machine() or sys.platform
