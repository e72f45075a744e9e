"""transformers decoder-only language models (Llama, Qwen2, Mistral, GPT-2: AutoModelForCausalLM).

Inputs: the tokenized ``inputs.text`` when the weights ship a tokenizer, else ``seq_len``
seeded token ids (the random-init fallback has no tokenizer).

Two outputs, as for hf_seq2seq: ``logits`` of one forward pass over the prompt (class scores
over the vocabulary per position: top-1/top-5 agreement), and ``generated_ids``, the
``max_new_tokens`` token ids greedy decoding appends to the prompt (exact match, with the
first differing position). Generation uses the KV cache on both sides, so the target's
cached attention path is what gets compared.

The LLM benchmark figures (npu_adapt.benchmark) time :meth:`prefill` (the prompt's forward
pass and its first token: time to first token) and :meth:`decode` (one more token from the
KV cache) separately.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from npu_adapt.adapters import CLASS_SCORES, TOKEN_IDS
from npu_adapt.adapters.hf_encoder import HFEncoderAdapter, _has_tokenizer


class HFCausalLMAdapter(HFEncoderAdapter):
    family = "hf_causal_lm"
    generates = True

    def make_inputs(self, weights_dir, seed):
        weights_dir = Path(weights_dir)
        config = json.loads((weights_dir / "config.json").read_text())
        text = self.options.text
        if text and _has_tokenizer(weights_dir):
            from transformers import AutoTokenizer

            encoded = AutoTokenizer.from_pretrained(str(weights_dir))([text], return_tensors="np")
            input_ids = np.asarray(encoded["input_ids"], dtype=np.int64)
        else:
            # No tokenizer (random-init fallback): seeded ids, after the BOS token when there is one.
            vocab = int(config["vocab_size"])
            seq_len = int(self.options.seq_len or 16)
            input_ids = np.random.default_rng(seed).integers(
                min(100, vocab // 2), vocab, size=(1, seq_len), dtype=np.int64
            )
            if isinstance(config.get("bos_token_id"), int):
                input_ids[0, 0] = config["bos_token_id"]
        return {"input_ids": input_ids, "attention_mask": np.ones_like(input_ids)}

    @staticmethod
    def generation_config(model, max_new_tokens: int):
        """Greedy decoding with the KV cache, whatever sampling the weights' own
        generation_config.json asks for (both sides must decode the same way)."""
        from transformers import GenerationConfig

        eos = model.generation_config.eos_token_id
        if eos is None:
            eos = model.config.eos_token_id
        pad = model.generation_config.pad_token_id
        if pad is None:
            pad = eos[0] if isinstance(eos, list) else eos
        return GenerationConfig(
            max_new_tokens=max_new_tokens,
            do_sample=False,
            num_beams=1,
            use_cache=True,
            eos_token_id=eos,
            pad_token_id=pad,
        )

    def run(self, model, inputs):
        out = model(
            input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], use_cache=False, return_dict=True
        )
        generated = model.generate(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            generation_config=self.generation_config(model, self.max_new_tokens()),
        )
        # Only the new tokens: first_mismatch then counts generated positions, not the prompt's.
        return {"logits": out.logits, "generated_ids": generated[:, inputs["input_ids"].shape[1] :]}

    def output_kinds(self):
        return {"logits": CLASS_SCORES, "generated_ids": TOKEN_IDS}

    # -- the LLM benchmark's two phases (npu_adapt.llm_timing) -------------------

    def prefill(self, model, input_ids):
        """The prompt's forward pass filling the KV cache, and the first generated token
        (greedy): what the time to first token covers. Returns ``(cache, next_ids)``."""
        out = model(input_ids=input_ids, use_cache=True, return_dict=True)
        return out.cache, out.logits[:, -1, :].argmax(dim=-1, keepdim=True)

    def decode(self, model, cache, next_ids):
        """One decoding step from the KV cache: the next greedy token of every row."""
        out = model(input_ids=next_ids, cache=cache, use_cache=True, return_dict=True)
        return out.cache, out.logits[:, -1, :].argmax(dim=-1, keepdim=True)
