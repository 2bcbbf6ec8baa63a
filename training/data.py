"""Training data: fixed-length token sequences, a disjoint slice per rank, resumable.

Sources (`--data`):
- `synthetic`: sequence g is a counting progression `start + step * j (mod vocab)` drawn from
  (seed, g): learnable (loss falls fast), deterministic, no I/O; for tests and benchmarks.
- a `.bin` / `.u16` / `.u32` file or a directory of them: pre-tokenised uint16/uint32 tokens
  (documents already joined by EOS), read by memmap. Sequence g is the window
  `tokens[g*L : g*L + L + 1]` of the concatenated shards, so nothing is read twice.
- a `.txt` file (documents separated by blank lines), a `.jsonl` file (one document per line, in
  `--data-field`) or a directory of them, tokenised on the fly.
- `hf:<dataset>[:<config>]`: Hugging Face `datasets` streaming (optional extra).

Windows hold L + 1 tokens: inputs are the first L, targets the last L.

Disjoint slices: the two indexed sources (synthetic, token shards) give rank r of W the
sequences g = r, r + W, r + 2W, ...; so one optimizer step of any world size consumes the same
global sequences, which is what makes a 2-rank run match a single-process run step for step.
Document sources give rank r the documents d = r, r + W, ... and pack them into windows locally,
with EOS after each document (the concat-dataset packing of the HyperPod seeds).

Resumable: `state_dict()` is a small dict of plain values (position, epoch, partial buffer);
`load_state_dict()` continues exactly where it stopped.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from mlplatform.training.config import TrainConfigError
from mlplatform.training.tokenizer import Tokenizer

TOKEN_SUFFIXES = {".bin": None, ".u16": np.uint16, ".u32": np.uint32}
TEXT_SUFFIXES = (".txt", ".jsonl")


class SequenceStream(Protocol):
    """An endless stream of (seq_len + 1)-token windows for one rank."""

    def next(self) -> np.ndarray: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...


class IndexedStream:
    """Rank r reads global sequences r, r + W, r + 2W, ... of an indexable source."""

    def __init__(self, source: SyntheticSource | TokenShards, rank: int, world_size: int) -> None:
        self.source, self.rank, self.world_size = source, rank, world_size
        self.position = 0  # sequences this rank has consumed

    def next(self) -> np.ndarray:
        index = self.position * self.world_size + self.rank
        self.position += 1
        return self.source[index]

    def state_dict(self) -> dict[str, Any]:
        return {"position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.position = int(state["position"])


class SyntheticSource:
    """Sequence g: `(start + step * j) % vocab` with start, step in 1..8 drawn from (seed, g)."""

    def __init__(self, seq_len: int, vocab_size: int, seed: int) -> None:
        self.seq_len, self.vocab_size, self.seed = seq_len, vocab_size, seed
        self._ramp = np.arange(seq_len + 1, dtype=np.int64)

    def __getitem__(self, index: int) -> np.ndarray:
        rng = np.random.default_rng((self.seed, index))
        start, step = int(rng.integers(self.vocab_size)), int(rng.integers(1, 9))
        return (start + step * self._ramp) % self.vocab_size


class TokenShards:
    """Pre-tokenised shards concatenated; sequence g = tokens[g*L : g*L + L + 1], epochs wrap."""

    def __init__(self, paths: list[Path], seq_len: int, default_dtype: str) -> None:
        self.seq_len = seq_len
        self.shards = []
        for path in paths:
            dtype = TOKEN_SUFFIXES[path.suffix] or np.dtype(default_dtype)
            self.shards.append(np.memmap(path, dtype=dtype, mode="r"))
        self.total = sum(len(s) for s in self.shards)
        self.offsets = np.cumsum([0] + [len(s) for s in self.shards])
        self.num_sequences = (self.total - 1) // seq_len
        if self.num_sequences < 1:
            raise TrainConfigError(
                f"--data: {self.total} tokens in {len(paths)} shard(s) are fewer than "
                f"--seq-len + 1 ({seq_len + 1})"
            )

    def __getitem__(self, index: int) -> np.ndarray:
        start = (index % self.num_sequences) * self.seq_len
        return self._read(start, start + self.seq_len + 1)

    def _read(self, start: int, stop: int) -> np.ndarray:
        first = int(np.searchsorted(self.offsets, start, side="right")) - 1
        parts, shard = [], first
        while start < stop:
            lo = start - int(self.offsets[shard])
            hi = min(stop, int(self.offsets[shard + 1])) - int(self.offsets[shard])
            parts.append(np.asarray(self.shards[shard][lo:hi], dtype=np.int64))
            start += hi - lo
            shard += 1
        return parts[0] if len(parts) == 1 else np.concatenate(parts)


class PackedDocuments:
    """Rank r tokenises documents r, r + W, ... and packs them, EOS-separated, into windows."""

    def __init__(
        self,
        documents: DocumentSource,
        tokenizer: Tokenizer,
        seq_len: int,
        rank: int,
        world_size: int,
    ) -> None:
        self.documents, self.tokenizer, self.seq_len = documents, tokenizer, seq_len
        self.rank, self.world_size = rank, world_size
        self.epoch, self.doc_position, self.buffer = 0, 0, np.zeros(0, dtype=np.int64)
        self._docs: Iterator[str] | None = None

    def _open(self) -> Iterator[str]:
        start = self.doc_position * self.world_size + self.rank
        return itertools.islice(self.documents.iterate(self.epoch), start, None, self.world_size)

    def next(self) -> np.ndarray:
        window = self.seq_len + 1
        while len(self.buffer) < window:
            if self._docs is None:
                self._docs = self._open()
            doc = next(self._docs, None)
            if doc is None:
                if self.doc_position == 0:
                    raise TrainConfigError(f"--data: rank {self.rank} has no documents to read")
                self.epoch, self.doc_position, self._docs = self.epoch + 1, 0, None
                continue
            self.doc_position += 1
            ids = [*self.tokenizer.encode(doc), self.tokenizer.eos_id]
            self.buffer = np.concatenate([self.buffer, np.asarray(ids, dtype=np.int64)])
        out = self.buffer[:window]
        self.buffer = self.buffer[self.seq_len :]  # the last target starts the next window
        return out

    def state_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "doc_position": self.doc_position,
            "buffer": self.buffer.tolist(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.epoch, self.doc_position = int(state["epoch"]), int(state["doc_position"])
        self.buffer = np.asarray(state["buffer"], dtype=np.int64)
        self._docs = None


class DocumentSource(Protocol):
    def iterate(self, epoch: int) -> Iterator[str]: ...


class TextFiles:
    """Documents of .txt (blank-line separated) and .jsonl (one per line) files, in path order."""

    def __init__(self, paths: list[Path], field: str) -> None:
        self.paths, self.field = paths, field

    def iterate(self, epoch: int) -> Iterator[str]:
        for path in self.paths:
            with path.open(encoding="utf-8") as handle:
                if path.suffix == ".jsonl":
                    for lineno, line in enumerate(handle, 1):
                        if line.strip():
                            yield self._field(json.loads(line), path, lineno)
                else:
                    lines: list[str] = []
                    for line in handle:
                        if line.strip():
                            lines.append(line)
                        elif lines:
                            yield "".join(lines).rstrip("\n")
                            lines = []
                    if lines:
                        yield "".join(lines).rstrip("\n")

    def _field(self, record: Any, path: Path, lineno: int) -> str:
        if not isinstance(record, dict) or not isinstance(record.get(self.field), str):
            raise TrainConfigError(f"--data: {path}:{lineno}: no string field {self.field!r}")
        return record[self.field]


class HFStreaming:
    """Hugging Face `datasets` streaming; each epoch re-opens the stream."""

    def __init__(self, spec: str, split: str, field: str) -> None:
        try:
            import datasets
        except ImportError:
            raise TrainConfigError(
                f"--data: {spec!r} needs the 'datasets' package (pip install datasets)"
            ) from None
        name, _, config = spec.removeprefix("hf:").partition(":")
        self._load = lambda: datasets.load_dataset(
            name, config or None, split=split, streaming=True
        )
        self.field = field

    def iterate(self, epoch: int) -> Iterator[str]:
        for record in self._load():
            yield record[self.field]


def _files(root: Path, suffixes: tuple[str, ...]) -> list[Path]:
    if root.is_file():
        return [root] if root.suffix in suffixes else []
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in suffixes)


def open_stream(
    data: str,
    *,
    seq_len: int,
    vocab_size: int,
    seed: int,
    rank: int,
    world_size: int,
    tokenizer: Tokenizer,
    data_field: str = "text",
    data_split: str = "train",
    token_dtype: str = "uint16",
) -> SequenceStream:
    """The stream of windows for this rank, for any `--data` value."""
    if data == "synthetic":
        return IndexedStream(SyntheticSource(seq_len, vocab_size, seed), rank, world_size)
    if tokenizer.vocab_size > vocab_size:
        raise TrainConfigError(
            f"--tokenizer: vocabulary of {tokenizer.vocab_size} exceeds the model's {vocab_size}"
        )
    if data.startswith("hf:"):
        return PackedDocuments(
            HFStreaming(data, data_split, data_field), tokenizer, seq_len, rank, world_size
        )
    root = Path(data)
    if not root.exists():
        raise TrainConfigError(
            f"--data: {data!r} is not 'synthetic', 'hf:<name>' or an existing path"
        )
    shards = _files(root, tuple(TOKEN_SUFFIXES))
    if shards:
        return IndexedStream(TokenShards(shards, seq_len, token_dtype), rank, world_size)
    texts = _files(root, TEXT_SUFFIXES)
    if texts:
        return PackedDocuments(TextFiles(texts, data_field), tokenizer, seq_len, rank, world_size)
    raise TrainConfigError(f"--data: no .bin/.u16/.u32/.txt/.jsonl files in {data}")


class Batches:
    """Micro-batches of (inputs, targets), int64 tensors of shape (micro_batch, seq_len)."""

    def __init__(
        self, stream: SequenceStream, micro_batch: int, vocab_size: int, device: torch.device
    ) -> None:
        self.stream, self.micro_batch, self.vocab_size, self.device = (
            stream,
            micro_batch,
            vocab_size,
            device,
        )

    def next(self) -> tuple[torch.Tensor, torch.Tensor]:
        windows = np.stack([self.stream.next() for _ in range(self.micro_batch)])
        if windows.max() >= self.vocab_size:
            raise TrainConfigError(
                f"--data: token id {windows.max()} >= model vocabulary {self.vocab_size}"
            )
        tokens = torch.from_numpy(windows)
        if self.device.type == "cuda":
            tokens = tokens.pin_memory().to(self.device, non_blocking=True)
        return tokens[:, :-1], tokens[:, 1:]

    def state_dict(self) -> dict[str, Any]:
        return self.stream.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.stream.load_state_dict(state)


def write_token_shard(
    source: str, out: str, tokenizer: Tokenizer, *, data_field: str = "text", dtype: str = "uint16"
) -> int:
    """Tokenise the .txt/.jsonl documents under `source` into one pre-tokenised shard `out`
    (documents joined by EOS, the layout TokenShards reads); returns the number of tokens."""
    limit = np.iinfo(np.dtype(dtype)).max
    if tokenizer.vocab_size - 1 > limit:
        raise TrainConfigError(
            f"--dtype: {dtype} cannot hold token ids up to {tokenizer.vocab_size - 1}"
        )
    files = _files(Path(source), TEXT_SUFFIXES)
    if not files:
        raise TrainConfigError(f"--data: no .txt/.jsonl files in {source}")
    total = 0
    with open(out, "wb") as handle:
        for doc in TextFiles(files, data_field).iterate(epoch=0):
            ids = np.asarray([*tokenizer.encode(doc), tokenizer.eos_id], dtype=dtype)
            handle.write(ids.tobytes())
            total += len(ids)
    return total


def main(argv: list[str] | None = None) -> int:
    """`python -m training.data SOURCE OUT.bin`: write a pre-tokenised shard."""
    import argparse
    import sys

    from mlplatform.training.tokenizer import load_tokenizer

    parser = argparse.ArgumentParser(prog="python -m training.data", description=main.__doc__)
    parser.add_argument("source", help=".txt/.jsonl file or directory")
    parser.add_argument("out", help="output shard (.bin, .u16 or .u32)")
    parser.add_argument("--tokenizer", default="byte")
    parser.add_argument("--data-field", default="text")
    parser.add_argument("--dtype", default="uint16", choices=("uint16", "uint32"))
    args = parser.parse_args(argv)
    try:
        count = write_token_shard(
            args.source, args.out, load_tokenizer(args.tokenizer),
            data_field=args.data_field, dtype=args.dtype,
        )  # fmt: skip
    except TrainConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: {count} tokens ({args.dtype})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
