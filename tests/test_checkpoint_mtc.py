"""backend='mtc' (SageMaker managed tiered checkpointing) against a fake of HyperPod's in-memory
checkpoint service (tests/mtc_memory_fake.py) and a moto server for its S3 tier."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from mlplatform.training.checkpointing.mtc import MTC_IMPORT_ERROR
from tests.checkpoint_harness import Bucket, Run
from tests.mtc_memory_fake import MemoryService

pytestmark = pytest.mark.skipif(
    MTC_IMPORT_ERROR is not None,
    reason=f"amzn-sagemaker-checkpointing (extra 'sagemaker') unusable: {MTC_IMPORT_ERROR}",
)


@pytest.fixture
def memory() -> Iterator[MemoryService]:
    service = MemoryService()
    service.start()
    yield service
    service.stop()


def mtc_run(tmp: Path, bucket: Bucket, memory: MemoryService, namespace: str) -> Run:
    return Run(
        tmp,
        memory_url=memory.url,
        backend="mtc",
        s3_uri=bucket.uri("mtc"),
        mtc_namespace=namespace,
        local_every=2,
        s3_every=4,
    )


@pytest.fixture
def namespace() -> str:
    return f"job-{uuid.uuid4().hex[:8]}"


def test_saves_go_to_memory_every_local_every_and_to_s3_every_s3_every(
    s3: Bucket, memory: MemoryService, namespace: str, tmp_path: Path
) -> None:
    mtc_run(tmp_path, s3, memory, namespace).train(6)
    assert memory.complete_steps(namespace) == [6, 4, 2]
    assert s3.keys(f"mtc/{namespace}/") == [
        f"mtc/{namespace}/rank_0/step_4/checkpoint.pt",
        f"mtc/{namespace}/rank_0/step_4/metadata.metadata",
    ]


def test_resume_from_memory_is_bit_identical(
    s3: Bucket, memory: MemoryService, namespace: str, tmp_path: Path
) -> None:
    uninterrupted = mtc_run(tmp_path, s3, memory, f"{namespace}-a")
    uninterrupted.train(10)
    mtc_run(tmp_path, s3, memory, namespace).train(6)
    resumed = mtc_run(tmp_path, s3, memory, namespace)
    resumed.train(10)
    assert resumed.losses == {s: uninterrupted.losses[s] for s in (7, 8, 9, 10)}


def test_resume_falls_back_to_s3_when_memory_is_unreachable(
    s3: Bucket, memory: MemoryService, namespace: str, tmp_path: Path
) -> None:
    mtc_run(tmp_path, s3, memory, namespace).train(6)  # memory: 6, 4, 2; S3: 4
    memory.stop()
    progress = mtc_run(tmp_path, s3, memory, namespace).ckpt.restore()
    assert progress is not None and progress.step == 4


def test_a_new_cluster_with_empty_memory_resumes_from_s3(
    s3: Bucket, memory: MemoryService, namespace: str, tmp_path: Path
) -> None:
    mtc_run(tmp_path, s3, memory, namespace).train(4)
    fresh = MemoryService()
    fresh.start()
    try:
        progress = mtc_run(tmp_path, s3, fresh, namespace).ckpt.restore()
    finally:
        fresh.stop()
    assert progress is not None and progress.step == 4


def test_memory_outage_does_not_stop_training_and_s3_steps_still_save(
    s3: Bucket,
    memory: MemoryService,
    namespace: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory.stop()
    with caplog.at_level(logging.WARNING, logger="mlplatform.training.checkpointing.mtc"):
        progress = mtc_run(tmp_path, s3, memory, namespace).train(8)
    assert progress.step == 8
    assert "MTC checkpoint of step 2 failed, training goes on" in caplog.text
    steps = {k.split("/")[3] for k in s3.keys(f"mtc/{namespace}/")}
    assert steps == {"step_4", "step_8"}
