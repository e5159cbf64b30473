"""Which device a run uses, what it is called, and how much memory it peaked at."""

from __future__ import annotations

import os
import platform
import re
import resource
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import threadpoolctl
import torch

from harness.constraints import OneOf
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


def numerics_path() -> dict[str, Any]:
    """What decides a CPU run's floating-point path, recorded with every trial and replicate:
    the same config gives the same numbers, byte for byte, only where all of these match.
    oneDNN picks its LSTM kernels by instruction set, so a verdict near its threshold can move
    from one CPU to another."""
    return {
        "cpu": cpu_name(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),  # the vector ISA torch dispatches to
        "torch": torch.__version__,
        "torch_git": (torch.version.git_version or "")[:12],
        "onednn": bool(torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled),
        "mkl": bool(torch.backends.mkl.is_available()),
        "threads": torch.get_num_threads(),
    }


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


def memory_in_use(device: torch.device) -> int:
    """What the process holds now: the CUDA allocator's allocated bytes, MPS's, or on the CPU
    the resident set size (VmRSS; 0 where the OS does not say)."""
    if device.type == "cuda":
        return int(torch.cuda.memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.current_allocated_memory())
    return _proc_status_bytes("VmRSS:")


def reset_peak_memory(device: torch.device) -> int:
    """Start a run's memory measurement; returns what the process holds at its start, which
    `run_memory_bytes` subtracts. On the CPU, Linux resets the process's peak resident set
    size (VmHWM) to its current size when "5" is written to clear_refs, so the peak read after
    a run is that run's, not the worker's lifetime peak."""
    if device.type == "cuda":
        # A fresh worker process may reach here before its first CUDA tensor; the allocator's
        # statistics exist only after CUDA's lazy initialisation ("Invalid device argument").
        torch.cuda.init()
        torch.cuda.reset_peak_memory_stats(device)
    elif device.type == "cpu":
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
        except OSError:
            pass  # not Linux: the lifetime peak below is all there is
    return memory_in_use(device)


def process_peak_bytes(device: torch.device) -> int:
    """The process's peak since `reset_peak_memory`: the CUDA allocator's peak on CUDA; on the
    CPU, the peak resident set size during the run (interpreter and libraries included, ~300
    MB here), or its lifetime peak where the OS cannot reset it."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    if device.type == "mps":
        return int(torch.mps.driver_allocated_memory())
    peak = _proc_status_bytes("VmHWM:")
    if peak:
        return peak
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(rss if sys.platform == "darwin" else rss * 1024)


def run_memory_bytes(device: torch.device, held: int) -> int:
    """The memory the run itself added: its peak minus what the process held at its start
    (`held`, from `reset_peak_memory`), on every device. A small run after a large one in the
    same worker adds little, however large the process already is."""
    return max(0, process_peak_bytes(device) - held)


def _proc_status_bytes(field: str) -> int:
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return 0


def threads_per_worker(workers: int) -> int:
    """torch intra-op threads per worker process: the machine's cores shared out."""
    return max(1, (os.cpu_count() or 1) // workers)


def set_threads(threads: int) -> Callable[[], None]:
    """Give this process `threads` threads for torch and for the BLAS under numba's kernels
    (`fused`: their matrix products go through scipy's OpenBLAS, which otherwise runs one
    thread per core in every process); returns what puts both back as they were. Unbounded,
    two workers of one thread each ran four busy threads on two cores, and fused GRU trials
    took 2.5x as long side by side."""
    import scipy.linalg.cython_blas  # noqa: F401  # numba loads it only at its first product: load it now

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    limits = threadpoolctl.threadpool_limits(threads, user_api="blas")

    def restore() -> None:
        limits.restore_original_limits()  # first: it puts back OpenMP's count too, which torch reads
        torch.set_num_threads(before)

    return restore


PRECISIONS = ("fp32", "tf32", "fp64")
PRECISION = OneOf(PRECISIONS, "precision")  # the rule of every config field that names one


def dtype_for(precision: str) -> torch.dtype:
    """Weights and data are float32 (as the notebook's) unless the run asks for float64: `fp64`
    exists to check that two ways of training (the fused kernels and torch's, a collection's
    members and models alone) agree to 1e-6 and better."""
    return torch.float64 if precision == "fp64" else torch.float32


# cuBLAS needs a fixed workspace to be deterministic; read when CUDA starts, so set early.
CUBLAS_WORKSPACE = ":4096:8"


# `torch.use_deterministic_algorithms` imports this (and torch._dynamo with it) on its first
# call: ~1.2 s that the first trial of every launch used to pay inside its clock.
FIRST_CALL_IMPORTS = "torch._inductor.config"


def flush_denormals() -> None:
    """Flush denormal floats to zero on the CPU, in the calling thread and every thread it
    starts afterwards (x86 keeps the mode per thread; a new thread copies its creator's).

    An LSTM whose activations saturate drives oneDNN's backward into denormal numbers, which
    Intel CPUs compute many times slower, with the same validation MSE to every digit: values
    below ~1e-38 carry nothing a float32 MSE shows. The command line's processes call this
    before torch starts its OpenMP threads (`harness.cli`, `warmed`), so every thread has the
    same mode; a library run leaves the caller's mode alone (set in one thread only, threads
    would round differently from one another)."""
    torch.set_flush_denormal(True)


def flushing_denormals() -> bool:
    """Whether the calling thread flushes denormals now (torch has no getter: a product whose
    exact value is a float32 denormal comes out as zero only where flushing is on)."""
    tiny = torch.tensor([1e-20], dtype=torch.float32)
    return bool((tiny * tiny).item() == 0.0)


def apply_numerics(precision: str, deterministic: bool) -> dict[str, Any]:
    """Set float32 precision and determinism for the run about to start; returns what was set.

    Process-wide torch flags, so every run sets them again rather than trusting the last one;
    a library caller's are put back by `held_numerics`. `fp32` turns TensorFloat-32 off for
    matmuls and cuDNN (on Ampere and later GPUs it is ~1e-3 relative, while the MSEs here
    reach 1e-7); `tf32` allows it. `deterministic` asks for deterministic algorithms, which
    the paired replicates and re-running a stored trial assume. On the CPU these settings
    change nothing we use, and are recorded all the same.
    """
    mode = "tf32" if precision == "tf32" else "ieee"
    backends: Any = torch.backends  # the attributes differ between torch versions
    if _FP32_PRECISION:
        for flag in (backends.cuda.matmul, backends.cudnn.conv, backends.cudnn.rnn):
            flag.fp32_precision = mode  # torch >= 2.9; mixing in the legacy flags is an error there
    else:
        backends.cuda.matmul.allow_tf32 = backends.cudnn.allow_tf32 = mode == "tf32"
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", CUBLAS_WORKSPACE)
    torch.use_deterministic_algorithms(deterministic)
    # Deterministic mode also fills every new uninitialised tensor with NaN (to catch reads of
    # it); torch's kernels and ours write all they read, and the fill is a measurable share
    # of a small model's step.
    torch.utils.deterministic.fill_uninitialized_memory = False  # type: ignore[attr-defined]
    backends.cudnn.deterministic = deterministic
    backends.cudnn.benchmark = False  # autotuning may pick different kernels run to run
    return {"precision": precision, "deterministic": deterministic, "tf32": numerics_tf32()}


_FP32_PRECISION = hasattr(torch.backends.cudnn, "rnn") and hasattr(torch.backends.cuda.matmul, "fp32_precision")


def _numerics_state() -> dict[str, Any]:
    """Every global `apply_numerics` sets, read back so it can be put back."""
    backends: Any = torch.backends
    state: dict[str, Any] = {
        "deterministic": torch.are_deterministic_algorithms_enabled(),
        "warn_only": torch.is_deterministic_algorithms_warn_only_enabled(),
        "fill": torch.utils.deterministic.fill_uninitialized_memory,  # type: ignore[attr-defined]
        "cudnn_deterministic": backends.cudnn.deterministic,
        "cudnn_benchmark": backends.cudnn.benchmark,
        "cublas": os.environ.get("CUBLAS_WORKSPACE_CONFIG"),
    }
    if _FP32_PRECISION:
        state["fp32"] = [f.fp32_precision for f in (backends.cuda.matmul, backends.cudnn.conv, backends.cudnn.rnn)]
    else:
        state["tf32"] = (backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32)
    return state


def _restore_numerics(state: dict[str, Any]) -> None:
    backends: Any = torch.backends
    torch.use_deterministic_algorithms(state["deterministic"], warn_only=state["warn_only"])
    torch.utils.deterministic.fill_uninitialized_memory = state["fill"]  # type: ignore[attr-defined]
    backends.cudnn.deterministic = state["cudnn_deterministic"]
    backends.cudnn.benchmark = state["cudnn_benchmark"]
    if state["cublas"] is None:
        os.environ.pop("CUBLAS_WORKSPACE_CONFIG", None)
    else:
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = state["cublas"]
    if _FP32_PRECISION:
        flags = (backends.cuda.matmul, backends.cudnn.conv, backends.cudnn.rnn)
        for flag, mode in zip(flags, state["fp32"], strict=True):
            flag.fp32_precision = mode
    else:
        backends.cuda.matmul.allow_tf32, backends.cudnn.allow_tf32 = state["tf32"]


@contextmanager
def held_numerics(precision: str, deterministic: bool) -> Iterator[dict[str, Any]]:
    """`apply_numerics` for the length of a block, then every flag as the caller had it: a run
    called from a user's script leaves their torch settings as it found them."""
    state = _numerics_state()
    try:
        yield apply_numerics(precision, deterministic)
    finally:
        _restore_numerics(state)


def numerics_tf32() -> bool:
    """Whether TF32 is on for matmuls and cuDNN RNNs now (read back, not remembered)."""
    backends: Any = torch.backends
    if _FP32_PRECISION:
        return backends.cuda.matmul.fp32_precision == "tf32" and backends.cudnn.rnn.fp32_precision == "tf32"
    return bool(backends.cuda.matmul.allow_tf32 and backends.cudnn.allow_tf32)
