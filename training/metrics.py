"""Per-step metrics: a `Loss:` log line (HyperPod's hang detection matches it) and JSON lines.

Line, on rank 0 every `--log-interval` steps:

    step=12 Loss: 2.3456 lr=3.000e-04 grad_norm=1.234 tokens/s=51234 tflops=123.40 mfu=41.2%
    mem=12.34GiB    (one line)

JSON line in `--metrics-file` (same numbers, units in the names): step, loss, lr, grad_norm,
tokens, tokens_per_s, tflops (achieved per device), mfu_pct (absent when the peak is unknown,
e.g. on CPU), mem_gib, step_time_s, time (unix seconds). mem is the peak allocated CUDA memory, or
the process's peak RSS on CPU.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import torch

log = logging.getLogger("training")

# Dense peak TFLOP/s per device (no sparsity): bf16 and tf32 (used for --mixed-precision fp32).
PEAK_TFLOPS: dict[str, dict[str, float]] = {
    "B200": {"bf16": 2250.0, "fp32": 1100.0},
    "H200": {"bf16": 989.0, "fp32": 494.0},
    "H100": {"bf16": 989.0, "fp32": 494.0},
    "A100": {"bf16": 312.0, "fp32": 156.0},
    "L40S": {"bf16": 362.0, "fp32": 183.0},
    "L4": {"bf16": 121.0, "fp32": 60.0},
    "A10G": {"bf16": 70.0, "fp32": 35.0},
}


def peak_tflops(device: torch.device, precision: str, override: float = 0.0) -> float | None:
    """Peak TFLOP/s of one device, or None when unknown (CPU: MFU is omitted, not invented)."""
    if override:
        return override
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, peaks in PEAK_TFLOPS.items():
        if key in name:
            return peaks[precision]
    log.warning("no peak TFLOP/s known for %r: MFU omitted (set --peak-tflops)", name)
    return None


def memory_gib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**30
    # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


@dataclass
class StepStats:
    step: int
    loss: float
    lr: float
    grad_norm: float
    tokens: int  # tokens of the global batch
    step_time_s: float


class Metrics:
    """Turns StepStats into the log line and JSON record; only rank 0 writes."""

    def __init__(
        self,
        *,
        rank: int,
        world_size: int,
        flops_per_token: float,
        peak: float | None,
        device: torch.device,
        metrics_file: str = "",
        log_interval: int = 1,
        max_steps: int = 0,
        interactive: bool | None = None,
    ) -> None:
        self.rank, self.world_size = rank, world_size
        self.flops_per_token, self.peak, self.device = flops_per_token, peak, device
        self.log_interval, self.max_steps = log_interval, max_steps
        self.interactive = sys.stderr.isatty() if interactive is None else interactive
        self._file: IO[str] | None = None
        if rank == 0 and metrics_file:
            Path(metrics_file).parent.mkdir(parents=True, exist_ok=True)
            self._file = open(metrics_file, "a", encoding="utf-8")  # noqa: SIM115
        self._started = time.monotonic()

    def record(self, stats: StepStats) -> dict[str, Any]:
        tokens_per_s = stats.tokens / stats.step_time_s if stats.step_time_s > 0 else 0.0
        tflops = tokens_per_s * self.flops_per_token / self.world_size / 1e12
        record: dict[str, Any] = {
            "step": stats.step,
            "loss": stats.loss,
            "lr": stats.lr,
            "grad_norm": stats.grad_norm,
            "tokens": stats.tokens,
            "tokens_per_s": tokens_per_s,
            "tflops": tflops,
            "mem_gib": memory_gib(self.device),
            "step_time_s": stats.step_time_s,
            "time": time.time(),
        }
        if self.peak:
            record["mfu_pct"] = 100.0 * tflops / self.peak
        if self.rank == 0:
            if self._file:
                self._file.write(json.dumps(record) + "\n")
                self._file.flush()
            if stats.step % self.log_interval == 0 or stats.step == self.max_steps:
                log.info(format_line(record) + self._eta(stats.step))
        return record

    def _eta(self, step: int) -> str:
        if not self.interactive or not self.max_steps or step >= self.max_steps:
            return ""
        elapsed = time.monotonic() - self._started
        remaining = elapsed / step * (self.max_steps - step)
        return f" [{step}/{self.max_steps} eta {int(remaining) // 60}m{int(remaining) % 60:02d}s]"

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


def format_line(record: dict[str, Any]) -> str:
    line = (
        f"step={record['step']} Loss: {record['loss']:.4f} lr={record['lr']:.3e} "
        f"grad_norm={record['grad_norm']:.3f} tokens/s={record['tokens_per_s']:.0f} "
        f"tflops={record['tflops']:.2f}"
    )
    if "mfu_pct" in record:
        line += f" mfu={record['mfu_pct']:.1f}%"
    return line + f" mem={record['mem_gib']:.2f}GiB"


def setup_logging(rank: int) -> None:
    """Every line carries the rank; rank 0 logs INFO, the others only warnings."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(f"%(asctime)s [rank{rank}] %(levelname)s %(message)s"))
    root = logging.getLogger("training")
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO if rank == 0 else logging.WARNING)
    root.propagate = False
