"""Checkpointing configuration: every lever, a safe default and a help string."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

Backend = Literal["dcp", "mtc"]
Mode = Literal["async", "sync"]

_S3_URI = re.compile(r"^s3://(?P<bucket>[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9])(/(?P<prefix>.*))?$")


class CheckpointConfigError(ValueError):
    """A checkpoint setting that cannot work; the message names the setting."""


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` -> ("bucket", "some/prefix"), no slashes at the prefix's ends."""
    match = _S3_URI.match(uri)
    if not match:
        raise CheckpointConfigError(f"s3_uri: {uri!r} is not s3://bucket[/prefix]")
    return match["bucket"], (match["prefix"] or "").strip("/")


@dataclass
class CheckpointConfig:
    """Where, how often and how checkpoints are written (see README, Checkpointing)."""

    local_dir: str = field(
        default="", metadata={"help": "tier 1: a fast directory (instance NVMe); '' disables"}
    )
    local_every: int = field(default=100, metadata={"help": "tier-1 save every N steps"})
    local_keep: int = field(default=2, metadata={"help": "complete tier-1 checkpoints kept"})
    s3_uri: str = field(
        default="", metadata={"help": "tier 2: s3://bucket/prefix (durable); '' disables"}
    )
    s3_every: int = field(default=1000, metadata={"help": "tier-2 upload every N steps"})
    s3_keep: int = field(default=3, metadata={"help": "complete tier-2 checkpoints kept"})
    mode: Mode = field(
        default="async", metadata={"help": "async: the loop waits only for staging; sync: all"}
    )
    backend: Backend = field(
        default="dcp",
        metadata={"help": "dcp: local + S3 tiers above; mtc: SageMaker managed tiered"},
    )
    mtc_namespace: str = field(
        default="", metadata={"help": "mtc: job namespace (default: the run name)"}
    )
    upload_retries: int = field(
        default=0, metadata={"help": "S3 upload attempts before giving up; 0 retries forever"}
    )
    upload_backoff_max_s: float = field(
        default=60.0, metadata={"help": "longest wait between S3 upload attempts"}
    )
    close_timeout_s: float = field(
        default=120.0,
        metadata={"help": "on exit (or SIGTERM) wait this long for in-flight saves/uploads"},
    )

    def __post_init__(self) -> None:
        for name in ("local_every", "local_keep", "s3_every", "s3_keep"):
            if getattr(self, name) < 1:
                raise CheckpointConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        if self.mode not in ("async", "sync"):
            raise CheckpointConfigError(f"mode: {self.mode!r} is not 'async' or 'sync'")
        if self.backend not in ("dcp", "mtc"):
            raise CheckpointConfigError(f"backend: {self.backend!r} is not 'dcp' or 'mtc'")
        if self.s3_uri:
            parse_s3_uri(self.s3_uri)
        if self.backend == "dcp" and self.s3_uri and not self.local_dir:
            raise CheckpointConfigError(
                "s3_uri: the S3 tier uploads committed tier-1 checkpoints: set a local directory"
            )
        if self.backend == "mtc" and not self.s3_uri:
            raise CheckpointConfigError("backend: 'mtc' needs an S3 URI (its durable tier)")
        if self.upload_retries < 0 or self.upload_backoff_max_s <= 0 or self.close_timeout_s < 0:
            raise CheckpointConfigError(
                "upload_retries/upload_backoff_max_s/close_timeout_s: must be positive"
            )

    def due(self, step: int) -> bool:
        """Whether `step` is saved: every `local_every`, and every `s3_every` when S3 is set."""
        return step % self.local_every == 0 or bool(self.s3_uri and step % self.s3_every == 0)

    @property
    def enabled(self) -> bool:
        return bool(self.local_dir or self.s3_uri)
