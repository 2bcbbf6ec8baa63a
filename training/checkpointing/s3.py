"""Tier 2: S3. A committed tier-1 checkpoint is uploaded in the background, its commit marker
last, so S3 holds a complete checkpoint exactly when `<prefix>/step_N/COMMIT.json` exists.

Why upload a committed tier-1 checkpoint rather than write DCP straight to S3
(s3torchconnector's S3StorageWriter): the loop never waits for S3, one commit protocol covers both
tiers, an S3 outage costs nothing but a warning (the local copy stays pinned until uploaded), and
the checksums in the marker let a resume on a fresh node verify what it downloaded.

Only rank 0 talks to S3 (tier 1 must be visible to it: one node, or a shared file system).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from mlplatform.training.checkpointing.commit import COMMIT_FILE, Commit, read_commit, write_atomic
from mlplatform.training.checkpointing.config import CheckpointConfig, parse_s3_uri
from mlplatform.training.checkpointing.retention import expired
from mlplatform.training.checkpointing.tiers import parse_step, step_name

log = logging.getLogger(__name__)

# Multipart above 64 MiB, 8 parts in flight: the upload runs beside training, not instead of it.
_TRANSFER = TransferConfig(
    multipart_threshold=64 << 20, multipart_chunksize=64 << 20, max_concurrency=8
)


def s3_client() -> Any:
    """A client from the usual AWS chain (AWS_ENDPOINT_URL is honoured, e.g. for a test server);
    botocore retries each request a few times, the uploader retries whole files beyond that."""
    config = Config(
        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=60
    )
    return boto3.client("s3", config=config)


class S3Tier:
    name = "s3"

    def __init__(self, config: CheckpointConfig) -> None:
        self.bucket, self.prefix = parse_s3_uri(config.s3_uri)
        self.keep = config.s3_keep
        self.retries = config.upload_retries
        self.backoff_max_s = config.upload_backoff_max_s
        self._client: Any = None
        self._lock = threading.Condition()
        self._queue: list[tuple[int, Path]] = []
        self._current: int | None = None
        self._closing = False
        self._thread: threading.Thread | None = None

    @property
    def client(self) -> Any:
        if self._client is None:  # lazily: ranks other than 0 never need one
            self._client = s3_client()
        return self._client

    def key(self, step: int, name: str = "") -> str:
        return "/".join(p for p in (self.prefix, step_name(step), name) if p)

    # ---- listing, download, removal (called by rank 0) ----------------------------------
    def committed_steps(self) -> list[int]:
        """Steps whose commit marker is in S3, newest first."""
        steps = []
        paginator = self.client.get_paginator("list_objects_v2")
        root = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=root):
            for obj in page.get("Contents", []):
                parts = obj["Key"][len(root) :].split("/")
                if len(parts) == 2 and parts[1] == COMMIT_FILE:
                    step = parse_step(parts[0])
                    if step is not None:
                        steps.append(step)
        return sorted(steps, reverse=True)

    def upload(self, step: int, directory: Path) -> None:
        commit = read_commit(directory)
        if commit is None:
            raise ValueError(f"{directory} has no commit marker: refusing to upload it")
        for name in sorted(commit.files):
            self.client.upload_file(
                str(directory / name), self.bucket, self.key(step, name), Config=_TRANSFER
            )
        self.client.upload_file(
            str(directory / COMMIT_FILE), self.bucket, self.key(step, COMMIT_FILE)
        )

    def download(self, step: int, directory: Path) -> None:
        """Fetch a checkpoint into `directory` (a partial directory), commit marker last."""
        directory.mkdir(parents=True, exist_ok=True)
        marker = self.client.get_object(Bucket=self.bucket, Key=self.key(step, COMMIT_FILE))
        text = marker["Body"].read()
        for name in sorted(Commit.from_json(text.decode()).files):
            self.client.download_file(
                self.bucket, self.key(step, name), str(directory / name), Config=_TRANSFER
            )
        write_atomic(directory / COMMIT_FILE, text)

    def remove(self, step: int) -> None:
        """Delete one checkpoint from S3, commit marker first."""
        self.client.delete_object(Bucket=self.bucket, Key=self.key(step, COMMIT_FILE))
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(step) + "/"):
            objects = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if objects:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": objects})

    # ---- background uploads ---------------------------------------------------------------
    def submit(self, step: int, directory: Path) -> None:
        """Upload a committed tier-1 checkpoint in the background (newer ones supersede older
        queued ones); the tier-1 copy stays pinned against retention until it is in S3."""
        with self._lock:
            self._queue.append((step, directory))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="s3-upload", daemon=True)
                self._thread.start()
            self._lock.notify_all()

    def pinned(self) -> set[int]:
        with self._lock:
            return {step for step, _ in self._queue} | (
                {self._current} if self._current is not None else set()
            )

    def _next(self) -> tuple[int, Path] | None:
        with self._lock:
            while not self._queue and not self._closing:
                self._lock.wait()
            if not self._queue:
                return None
            *stale, newest = sorted(self._queue)
            for step, _ in stale:
                log.info("S3 upload of %s skipped: superseded by %s", step_name(step), newest[0])
            self._queue = []
            self._current = newest[0]
            return newest

    def _run(self) -> None:
        while (job := self._next()) is not None:
            step, directory = job
            try:
                if self._upload_with_retries(step, directory):
                    self._prune()
            finally:
                with self._lock:
                    self._current = None
                    self._lock.notify_all()

    def _upload_with_retries(self, step: int, directory: Path) -> bool:
        attempt, delay = 0, 1.0
        target = f"s3://{self.bucket}/{self.key(step)}"
        while True:
            attempt += 1
            started = time.monotonic()
            try:
                self.upload(step, directory)
            except Exception as exc:  # S3 down or slow must never stop training
                if self.retries and attempt >= self.retries:
                    log.error(
                        "S3 upload of %s abandoned after %d attempts: %s", target, attempt, exc
                    )
                    return False
                with self._lock:
                    if self._closing and self._deadline_passed():
                        log.error("S3 upload of %s abandoned at shutdown: %s", target, exc)
                        return False
                log.warning(
                    "S3 upload of %s failed (attempt %d): %s; training goes on, retry in %.0f s",
                    target,
                    attempt,
                    exc,
                    delay,
                )
                self._sleep(delay)
                delay = min(delay * 2, self.backoff_max_s)
                continue
            log.info(
                "uploaded %s in %.1f s (attempt %d)", target, time.monotonic() - started, attempt
            )
            return True

    def _prune(self) -> None:
        try:
            for step in expired(self.committed_steps(), self.keep, self.pinned()):
                log.info("retention: removing s3://%s/%s", self.bucket, self.key(step))
                self.remove(step)
        except Exception as exc:
            log.warning("S3 retention skipped: %s", exc)

    _deadline: float = float("inf")

    def _deadline_passed(self) -> bool:
        return time.monotonic() >= self._deadline

    def _sleep(self, seconds: float) -> None:
        with self._lock:  # close() wakes it once, for a last prompt attempt
            self._lock.wait(seconds)

    def close(self, timeout: float) -> None:
        """Wait up to `timeout` s for queued and running uploads, then abandon them (their
        tier-1 copy stays; S3 never shows an uncommitted checkpoint)."""
        with self._lock:
            self._closing = True
            self._deadline = time.monotonic() + timeout
            self._lock.notify_all()
            done = self._lock.wait_for(
                lambda: not self._queue and self._current is None, timeout=timeout
            )
            if not done:
                log.error(
                    "S3 upload of %s not finished within %.0f s; abandoned (the tier-1 copy stays)",
                    step_name(self._current) if self._current is not None else "?",
                    timeout,
                )
            self._lock.notify_all()
