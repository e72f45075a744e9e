"""Model families behind one small interface.

Adapters are constructed per model with the model's config entry
(npu_adapt.config_types.ModelEntry). An adapter knows, for one family of models, how to

- ``import_code(weights_dir)``: import the code ``load`` runs (its ``libraries``, and what
  the family's libraries import only on first use), so the build log times the build alone;
- ``random_init(seed)``: build the architecture from its shipped config with a fixed
  seed (the offline fallback), returning a module ready to be saved;
- ``save(model, dest)``: write the module's weights (safetensors) and config into ``dest``;
- ``load(weights_dir)``: build the module from a weights directory (downloaded,
  local, packaged or materialised random-init; always the same layout per family);
- ``make_inputs(weights_dir, seed)``: the batch-1 input tensors, as numpy arrays;
- ``run(model, inputs)``: one forward pass, returning named output tensors;
- ``output_kinds``: which outputs are class scores (top-1/top-5) or token ids (exact match).

Adapters import torch/timm/transformers inside their methods so a job pays only for the
library its model family needs.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from npu_adapt.config_types import ModelInputs

if TYPE_CHECKING:
    from npu_adapt.config_types import ModelEntry

# Kinds of output tensor besides plain "hidden" ones; compare picks metrics by kind.
CLASS_SCORES = "class_scores"
TOKEN_IDS = "token_ids"
DEFAULT_MAX_NEW_TOKENS = 8  # inputs.max_new_tokens: tokens a generative family's run generates

FAMILIES = {
    "timm_image": "npu_adapt.adapters.timm_image:TimmImageAdapter",
    "hf_encoder": "npu_adapt.adapters.hf_encoder:HFEncoderAdapter",
    "hf_seq2seq": "npu_adapt.adapters.hf_seq2seq:HFSeq2SeqAdapter",
    "hf_causal_lm": "npu_adapt.adapters.hf_causal_lm:HFCausalLMAdapter",
}


class Adapter:
    """Base class: the interface every model family implements."""

    family = ""
    libraries: tuple[str, ...] = ("torch",)  # what import_code imports
    generates = False  # run ends in greedy generation (its token ids compared exactly)

    def __init__(self, entry: ModelEntry, base_dir: Path = Path(".")):
        self.entry = entry
        self.base_dir = Path(base_dir)  # where relative paths in the entry are resolved
        self.options = entry.inputs or ModelInputs()  # none set: each option is the adapter's own choice

    def random_init(self, seed: int) -> Any:
        raise NotImplementedError

    def save(self, model: Any, dest: Path) -> None:
        raise NotImplementedError

    def import_code(self, weights_dir: Path) -> None:
        """Import the code ``load`` runs (seconds of imports), so the log can time the build
        alone."""
        for library in self.libraries:
            importlib.import_module(library)

    def load(self, weights_dir: Path) -> Any:
        raise NotImplementedError

    def make_inputs(self, weights_dir: Path, seed: int) -> dict[str, Any]:
        raise NotImplementedError

    def run(self, model: Any, inputs: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def output_kinds(self) -> dict[str, str]:
        """Kind of each output named by ``run`` (outputs not listed are ``hidden``)."""
        return {}

    def max_new_tokens(self) -> int | None:
        """The tokens ``run``'s greedy generation adds at most; None for a family that does not generate."""
        return int(self.options.max_new_tokens or DEFAULT_MAX_NEW_TOKENS) if self.generates else None

    def timed_call(self) -> str:
        """What one call of ``run`` does: the call the dumps make and the benchmark times
        (benchmark.json's ``timed_call``), so a latency is that of what was compared."""
        if not self.generates:
            return "one forward pass"
        return f"one forward pass, then greedy generate of up to {self.max_new_tokens()} new tokens"

    @staticmethod
    def count_params(model: Any) -> int:
        return sum(p.numel() for p in model.parameters())


def get_adapter(entry: ModelEntry, base_dir: Path = Path(".")) -> Adapter:
    family = entry.family
    try:
        target = FAMILIES[family]
    except KeyError:
        raise ValueError(f"unknown model family {family!r}; known: {sorted(FAMILIES)}") from None
    module_name, class_name = target.split(":")
    return getattr(importlib.import_module(module_name), class_name)(entry, base_dir)


def seeded_token_ids(rng, vocab_size: int, length: int, skip: int = 1000, keep_top: int = 0):
    """``(1, length)`` seeded token ids for a model without a tokenizer, drawn past the low ids
    where vocabularies keep their special tokens ([PAD], [unused], <s>) and below the top
    ``keep_top`` ids; both margins shrink to a quarter of a small vocabulary, so a tiny test
    vocabulary of 200 still gets valid ids."""
    import numpy as np

    low = min(skip, vocab_size // 4)
    high = vocab_size - min(keep_top, vocab_size // 4)
    return rng.integers(low, high, size=(1, length), dtype=np.int64)
