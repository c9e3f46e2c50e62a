"""T5 text conditioning for CogVideoX: prompts -> ``[B, L, D]`` embeddings.

As the CogVideoX pipelines do: pad/truncate to ``max_length`` tokens (the transformer's
``max_text_seq_length``, 226 for CogVideoX-5B), no attention mask, ``last_hidden_state``.
The empty prompt gives the unconditional embedding used for classifier-free guidance.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn
from transformers import AutoTokenizer, ByT5Tokenizer, T5Config, T5EncoderModel


class TextEncoder(nn.Module):
    """A frozen T5 encoder with its tokenizer."""

    def __init__(self, encoder: T5EncoderModel, tokenizer, max_length: int = 226):
        super().__init__()
        self.encoder = encoder.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.max_length = max_length

    @property
    def dim(self) -> int:
        return self.encoder.config.d_model

    def train(self, mode: bool = True) -> TextEncoder:
        super().train(mode)
        self.encoder.eval()  # T5 has dropout: keep the frozen encoder deterministic
        return self

    @classmethod
    def from_pretrained(
        cls, path: str | Path, max_length: int = 226, dtype: torch.dtype | None = None
    ) -> TextEncoder:
        """Load from a folder with a T5 encoder and its tokenizer, or from a pipeline root with
        ``text_encoder/`` and ``tokenizer/`` (e.g. CogVideoX-5b-I2V). Local files only."""
        root = Path(path)
        enc_dir = root / "text_encoder" if (root / "text_encoder").is_dir() else root
        tok_dir = root / "tokenizer" if (root / "tokenizer").is_dir() else enc_dir
        encoder = T5EncoderModel.from_pretrained(str(enc_dir), local_files_only=True, dtype=dtype)
        tokenizer = AutoTokenizer.from_pretrained(str(tok_dir), local_files_only=True)
        return cls(encoder, tokenizer, max_length)

    @classmethod
    def tiny(
        cls,
        d_model: int = 32,
        num_layers: int = 2,
        num_heads: int = 4,
        d_ff: int = 64,
        max_length: int = 16,
        seed: int = 0,
    ) -> TextEncoder:
        """A randomly initialised small T5 encoder with ``ByT5Tokenizer`` (no vocab file)."""
        tokenizer = ByT5Tokenizer()
        config = T5Config(
            vocab_size=len(tokenizer),
            d_model=d_model,
            d_kv=d_model // num_heads,
            d_ff=d_ff,
            num_layers=num_layers,
            num_heads=num_heads,
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            encoder = T5EncoderModel(config)
        return cls(encoder, tokenizer, max_length)

    def tokenize(self, prompts: list[str]) -> Tensor:
        """``[B, max_length]`` token ids."""
        return self.tokenizer(
            list(prompts),
            padding="max_length",
            max_length=self.max_length,
            truncation=True,
            add_special_tokens=True,
            return_tensors="pt",
        ).input_ids

    @torch.no_grad()
    def forward(self, prompts: list[str]) -> Tensor:
        """``prompts`` (B strings) -> ``[B, max_length, d_model]``."""
        ids = self.tokenize(prompts).to(self.encoder.device)
        return self.encoder(input_ids=ids).last_hidden_state
