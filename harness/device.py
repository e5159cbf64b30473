"""Which device a run uses, what it is called, and how much memory it peaked at."""

from __future__ import annotations

import platform
import re
import resource
import sys

import torch

from harness.errors import ConfigError

DEVICE_CHOICES = "auto, cpu, cuda, cuda:N, mps"


def resolve_device(requested: str = "auto") -> torch.device:
    """Turn `auto|cpu|cuda|cuda:N|mps` into an available torch device.

    `auto` prefers CUDA, then MPS, then the CPU. Asking for a device that is not there is
    a user error, not a silent fallback: a benchmark that quietly ran on the CPU lies.
    """
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if requested == "cpu":
        return torch.device("cpu")
    if requested == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device", "mps is not available on this machine; allowed: auto, cpu")
        return torch.device("mps")
    match = re.fullmatch(r"cuda(?::(\d+))?", requested)
    if match is None:
        raise ConfigError("device", f"unknown device {requested!r}; allowed: {DEVICE_CHOICES}")
    if not torch.cuda.is_available():
        raise ConfigError("device", f"{requested} is not available on this machine; allowed: auto, cpu")
    index = int(match.group(1) or torch.cuda.current_device())
    if index >= torch.cuda.device_count():
        raise ConfigError(
            "device", f"{requested} does not exist; allowed: cuda:0..cuda:{torch.cuda.device_count() - 1}"
        )
    return torch.device("cuda", index)


def cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def device_name(device: torch.device) -> str:
    """A human name for the device, recorded with every result."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "mps":
        return "Apple MPS"
    return cpu_name()


def synchronize(device: torch.device) -> None:
    """Wait for queued kernels so wall-clock timings are honest on asynchronous devices."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def reset_peak_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def peak_memory_bytes(device: torch.device) -> int:
    """Peak memory of the run: allocator peak on CUDA, process peak RSS elsewhere."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(rss if sys.platform == "darwin" else rss * 1024)
