"""Tokenizers: a dependency-free byte-level one (the default, works offline) or Hugging Face's."""

from __future__ import annotations

from typing import Protocol

from mlplatform.training.config import TrainConfigError


class Tokenizer(Protocol):
    vocab_size: int
    eos_id: int

    def encode(self, text: str) -> list[int]: ...

    def decode(self, ids: list[int]) -> str: ...


class ByteTokenizer:
    """UTF-8 bytes are tokens 0..255; 256 is end-of-sequence."""

    vocab_size = 257
    eos_id = 256

    def encode(self, text: str) -> list[int]:
        return list(text.encode("utf-8"))

    def decode(self, ids: list[int]) -> str:
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


class HFTokenizer:
    """A `transformers` tokenizer by hub name or local path (needs `transformers` installed)."""

    def __init__(self, name_or_path: str) -> None:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            raise TrainConfigError(
                f"--tokenizer: {name_or_path!r} needs the 'transformers' package "
                "(pip install transformers), or use --tokenizer byte"
            ) from None
        self._tok = AutoTokenizer.from_pretrained(name_or_path)
        if self._tok.eos_token_id is None:
            raise TrainConfigError(f"--tokenizer: {name_or_path!r} has no end-of-sequence token")
        self.vocab_size = len(self._tok)
        self.eos_id = int(self._tok.eos_token_id)

    def encode(self, text: str) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=False))

    def decode(self, ids: list[int]) -> str:
        return str(self._tok.decode(ids))


def load_tokenizer(name: str) -> Tokenizer:
    return ByteTokenizer() if name == "byte" else HFTokenizer(name)
