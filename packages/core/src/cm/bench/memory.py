"""Peak memory of one measured configuration, honestly labelled.

On CUDA: ``torch.cuda.max_memory_allocated`` over the block (the counter is reset at its
start), i.e. model, optimizer state, activations and workspace held by tensors. Elsewhere
there is no allocator counter: a thread samples the process's resident set size every few
milliseconds (Linux ``/proc/self/statm``) and the peak growth over the RSS at the block's
start is reported, which misses spikes shorter than the sampling period and counts
allocator caching; without ``/proc`` the figure is not available.
"""

import os
import threading
from pathlib import Path

import torch

STATM = Path("/proc/self/statm")
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def label(device: str) -> str:
    if torch.device(device).type == "cuda":
        return "peak CUDA memory allocated (MiB)"
    return "peak RSS growth (MiB, sampled every 5 ms)"


def _rss() -> int | None:
    try:
        return int(STATM.read_text().split()[1]) * PAGE
    except (OSError, IndexError, ValueError):
        return None


class PeakMemory:
    """``with PeakMemory(device) as peak: ...`` then ``peak.mib`` (None when unknown)."""

    def __init__(self, device: str, period_s: float = 0.005):
        self.cuda = torch.device(device).type == "cuda"
        self.period_s = period_s
        self.mib = None
        self._start = self._peak = None
        self._stop = threading.Event()
        self._thread = None

    def __enter__(self):
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            return self
        self._start = self._peak = _rss()
        if self._start is not None:
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        return self

    def _sample(self):
        while not self._stop.wait(self.period_s):
            rss = _rss()
            if rss is not None and rss > self._peak:
                self._peak = rss

    def __exit__(self, *exc):
        if self.cuda:
            torch.cuda.synchronize()
            self.mib = torch.cuda.max_memory_allocated() / 2**20
        elif self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._peak = max(self._peak, _rss() or 0)
            self.mib = (self._peak - self._start) / 2**20
        return False
