"""transformers encoder-decoder models (T5).

Two outputs: ``logits`` of one forward pass with fixed ``decoder_input_ids`` (class scores
per decoder position: top-1/top-5 agreement), and ``generated_ids``, the token ids of greedy
``generate`` (compared by exact match, with the first differing position).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from npu_adapt.adapters import CLASS_SCORES, TOKEN_IDS, seeded_token_ids
from npu_adapt.adapters.hf_encoder import HFEncoderAdapter, _has_tokenizer


class HFSeq2SeqAdapter(HFEncoderAdapter):
    family = "hf_seq2seq"
    generates = True

    def random_init(self, seed):
        import torch

        model = super().random_init(seed)
        config, raw = self._arch_config()
        if raw.get("tie_word_embeddings") is False and model.lm_head.weight is model.shared.weight:
            # transformers 5 ties T5's lm_head to the embeddings whatever the config says;
            # flan-t5 has its own head (77.0M params, not 60.5M), initialised as T5 does.
            head = torch.empty_like(model.shared.weight).normal_(0.0, config.initializer_factor)
            model.lm_head.weight = torch.nn.Parameter(head)
        return model

    def make_inputs(self, weights_dir, seed):
        weights_dir = Path(weights_dir)
        config = json.loads((weights_dir / "config.json").read_text())
        rng = np.random.default_rng(seed)
        text = self.options.text
        if text and _has_tokenizer(weights_dir):
            from transformers import AutoTokenizer

            encoded = AutoTokenizer.from_pretrained(str(weights_dir))([text], return_tensors="np")
            input_ids = np.asarray(encoded["input_ids"], dtype=np.int64)
        else:
            seq_len = int(self.options.seq_len or 16)
            input_ids = seeded_token_ids(rng, config["vocab_size"], seq_len, skip=100, keep_top=100)
            input_ids[0, -1] = config.get("eos_token_id", 1)
        decoder_len = int(self.options.decoder_len or 8)
        start = config.get("decoder_start_token_id", 0) or 0
        decoder_input_ids = seeded_token_ids(rng, config["vocab_size"], decoder_len, skip=100, keep_top=100)
        decoder_input_ids[0, 0] = start
        return {
            "input_ids": input_ids,
            "attention_mask": np.ones_like(input_ids),
            "decoder_input_ids": decoder_input_ids,
        }

    def run(self, model, inputs):
        out = model(**inputs, return_dict=True)
        generated = model.generate(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            max_new_tokens=self.max_new_tokens(),
            do_sample=False,
            num_beams=1,
        )
        return {"logits": out.logits, "generated_ids": generated}

    def output_kinds(self):
        return {"logits": CLASS_SCORES, "generated_ids": TOKEN_IDS}
