"""Data: packing with EOS, disjoint per-rank slices that cover the stream, resumable position."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from mlplatform.training.config import TrainConfigError
from mlplatform.training.data import Batches, open_stream
from mlplatform.training.tokenizer import ByteTokenizer

BYTES = ByteTokenizer()


def stream(data, rank=0, world=1, seq_len=8, vocab=512, **kw):
    return open_stream(
        str(data), seq_len=seq_len, vocab_size=vocab, seed=0, rank=rank, world_size=world,
        tokenizer=BYTES, **kw,
    )  # fmt: skip


def token_file(path, tokens, dtype=np.uint16):
    np.asarray(tokens, dtype=dtype).tofile(path)
    return path


def test_synthetic_sequences_are_learnable_progressions():
    seq = stream("synthetic", seq_len=16).next()
    steps = np.diff(seq) % 512
    assert len(seq) == 17 and len(set(steps.tolist())) == 1 and 1 <= steps[0] <= 8


@pytest.mark.parametrize("world", [2, 3])
def test_indexed_ranks_are_disjoint_and_cover_the_stream(world, tmp_path):
    path = token_file(tmp_path / "a.bin", range(1000))
    single = stream(path)
    expected = [tuple(single.next()) for _ in range(12)]
    ranks = [stream(path, rank=r, world=world) for r in range(world)]
    per_rank = [[tuple(s.next()) for _ in range(12 // world)] for s in ranks]
    seen = [seq for seqs in per_rank for seq in seqs]
    assert len(set(seen)) == len(seen)  # disjoint
    assert set(seen) == set(expected)  # together, exactly the single-process stream


def test_synthetic_ranks_are_disjoint_and_cover_the_stream():
    single = stream("synthetic")
    expected = {tuple(single.next()) for _ in range(8)}
    a, b = stream("synthetic", rank=0, world=2), stream("synthetic", rank=1, world=2)
    seen = [tuple(s.next()) for _ in range(4) for s in (a, b)]
    assert len(set(seen)) == 8 and set(seen) == expected


def test_token_shards_windows_overlap_by_one_and_cross_shard_boundaries(tmp_path):
    token_file(tmp_path / "0.bin", range(10))
    token_file(tmp_path / "1.bin", range(10, 25))
    s = stream(tmp_path, seq_len=8)
    assert s.next().tolist() == list(range(0, 9))
    assert s.next().tolist() == list(range(8, 17))  # spans both shards
    assert s.next().tolist() == list(range(16, 25))
    assert s.next().tolist() == list(range(0, 9))  # next epoch


def test_uint32_shards(tmp_path):
    path = token_file(tmp_path / "t.u32", [100_000 + i for i in range(20)], np.uint32)
    assert stream(path, seq_len=4, vocab=200_000).next().tolist() == [100_000 + i for i in range(5)]


def test_jsonl_documents_are_packed_with_eos(tmp_path):
    path = tmp_path / "docs.jsonl"
    path.write_text("\n".join(json.dumps({"text": t}) for t in ["ab", "cde", "f"]) + "\n")
    s = stream(path, seq_len=4)
    eos = BYTES.eos_id
    a, b, c, d, e, f = (ord(ch) for ch in "abcdef")
    assert s.next().tolist() == [a, b, eos, c, d]
    assert s.next().tolist() == [d, e, eos, f, eos]
    assert s.next().tolist() == [eos, a, b, eos, c]  # second epoch continues the packing


def test_text_documents_are_separated_by_blank_lines(tmp_path):
    path = tmp_path / "corpus.txt"
    path.write_text("one\ntwo\n\n\nthree\n")
    s = stream(path, seq_len=13)
    assert BYTES.decode(s.next().tolist()) == "one\ntwothree"
    assert BYTES.eos_id in s.next().tolist()


def test_document_ranks_read_disjoint_documents(tmp_path):
    path = tmp_path / "docs.jsonl"
    docs = [f"doc{i}" for i in range(6)]
    path.write_text("\n".join(json.dumps({"text": t}) for t in docs))
    texts = []
    for rank in range(3):
        window = stream(path, rank=rank, world=3, seq_len=9).next().tolist()
        texts.append(BYTES.decode(window))
    assert texts == ["doc0doc3", "doc1doc4", "doc2doc5"]  # each doc followed by EOS


@pytest.mark.parametrize("source", ["tokens", "jsonl", "synthetic"])
def test_position_resumes_exactly(source, tmp_path):
    if source == "tokens":
        data = token_file(tmp_path / "a.bin", range(300))
    elif source == "jsonl":
        data = tmp_path / "d.jsonl"
        data.write_text("\n".join(json.dumps({"text": f"document number {i}"}) for i in range(9)))
    else:
        data = "synthetic"
    first = stream(data, rank=1, world=2)
    for _ in range(5):
        first.next()
    saved = json.loads(json.dumps(first.state_dict()))  # survives a round trip as JSON
    expected = [first.next().tolist() for _ in range(7)]
    resumed = stream(data, rank=1, world=2)
    resumed.load_state_dict(saved)
    assert [resumed.next().tolist() for _ in range(7)] == expected


def test_batches_split_inputs_and_targets():
    batches = Batches(stream("synthetic", seq_len=8), 3, 512, torch.device("cpu"))
    inputs, targets = batches.next()
    assert inputs.shape == targets.shape == (3, 8) and inputs.dtype == torch.int64
    assert torch.equal(inputs[:, 1:], targets[:, :-1])


def test_token_beyond_the_vocabulary_is_an_error(tmp_path):
    path = token_file(tmp_path / "a.bin", [5, 600] * 10)
    with pytest.raises(TrainConfigError, match="token id 600 >= model vocabulary 512"):
        Batches(stream(path), 1, 512, torch.device("cpu")).next()


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        ("missing", "is not 'synthetic', 'hf:<name>' or an existing path"),
        ("empty_dir", "no .bin/.u16/.u32/.txt/.jsonl files"),
        ("short", "fewer than --seq-len + 1"),
        ("no_field", "d.jsonl:1: no string field 'text'"),
    ],
)
def test_data_errors_name_the_flag(setup, message, tmp_path):
    data = tmp_path / setup
    if setup == "empty_dir":
        data.mkdir()
    elif setup == "short":
        data = token_file(tmp_path / "s.bin", range(4))
    elif setup == "no_field":
        data = tmp_path / "d.jsonl"
        data.write_text('{"body": "x"}\n')
    with pytest.raises(
        TrainConfigError, match="^--data: .*" + message.replace(".", r"\.").replace("+", r"\+")
    ):
        stream(data).next()


def test_byte_tokenizer_round_trips_utf8():
    text = "héllo, wörld ✓"
    ids = BYTES.encode(text)
    assert max(ids) < 256 and BYTES.decode([*ids, BYTES.eos_id]) == text


def test_hugging_face_streaming_is_sharded_by_document(monkeypatch):
    import sys
    import types

    calls = []

    def load_dataset(name, config, split, streaming):
        calls.append((name, config, split, streaming))
        return iter([{"content": f"d{i}"} for i in range(4)])

    monkeypatch.setitem(sys.modules, "datasets", types.SimpleNamespace(load_dataset=load_dataset))
    s = stream(
        "hf:allenai/c4:en",
        rank=1,
        world=2,
        seq_len=5,
        data_field="content",
        data_split="validation",
    )
    assert BYTES.decode(s.next().tolist()) == "d1d3"
    assert calls == [("allenai/c4", "en", "validation", True)]


def test_hugging_face_streaming_without_datasets_says_what_to_install(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "datasets", None)
    with pytest.raises(TrainConfigError, match=r"^--data: 'hf:c4' needs the 'datasets' package"):
        stream("hf:c4")


def test_hugging_face_tokenizer_by_name(monkeypatch):
    import sys
    import types

    from mlplatform.training.tokenizer import load_tokenizer

    class Fake:
        eos_token_id = 2

        def __len__(self):
            return 1000

        def encode(self, text, add_special_tokens):
            assert add_special_tokens is False  # EOS comes from the packer, once per document
            return [ord(c) for c in text]

    auto = types.SimpleNamespace(from_pretrained=lambda name: Fake())
    monkeypatch.setitem(sys.modules, "transformers", types.SimpleNamespace(AutoTokenizer=auto))
    tok = load_tokenizer("meta-llama/Llama-3.2-1B")
    assert (tok.vocab_size, tok.eos_id, tok.encode("ab")) == (1000, 2, [97, 98])
    with pytest.raises(TrainConfigError, match="vocabulary of 1000 exceeds the model's 512"):
        open_stream(
            "synthetic-not", seq_len=4, vocab_size=512, seed=0, rank=0, world_size=1, tokenizer=tok
        )


def test_hugging_face_tokenizer_without_transformers(monkeypatch):
    import sys

    from mlplatform.training.tokenizer import load_tokenizer

    monkeypatch.setitem(sys.modules, "transformers", None)
    with pytest.raises(TrainConfigError, match="needs the 'transformers' package"):
        load_tokenizer("gpt2")


def test_written_shard_reads_back_as_the_packed_stream(tmp_path):
    from mlplatform.training.data import main

    docs = tmp_path / "docs.jsonl"
    docs.write_text("\n".join(json.dumps({"text": t}) for t in ["ab", "cde", "f"]) + "\n")
    assert main([str(docs), str(tmp_path / "t.bin")]) == 0
    shard = stream(tmp_path / "t.bin", seq_len=4)
    packed = stream(docs, seq_len=4)
    assert [shard.next().tolist() for _ in range(2)] == [packed.next().tolist() for _ in range(2)]


def test_shard_dtype_must_hold_the_vocabulary(tmp_path, monkeypatch, capsys):
    from mlplatform.training import data

    monkeypatch.setattr(ByteTokenizer, "vocab_size", 70_000)
    (tmp_path / "a.txt").write_text("x")
    assert data.main([str(tmp_path / "a.txt"), str(tmp_path / "t.bin")]) == 2
    assert capsys.readouterr().err == "error: --dtype: uint16 cannot hold token ids up to 69999\n"
