"""transformers encoders: text (BERT, ELECTRA, MiniLM) and vision (ViT).

Weights directory layout: what ``save_pretrained`` writes (``config.json`` +
``model.safetensors``), plus tokenizer files when the source ships them.

Outputs: ``last_hidden_state`` always; ``pooler_output`` when the model has a pooler;
``logits`` when the architecture has a head (ELECTRA's discriminator); and
``sentence_embedding`` (attention-masked mean pooling, L2-normalised, as
sentence-transformers does) when the entry sets ``inputs.pooling: mean``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from npu_adapt.adapters import Adapter, seeded_token_ids


def model_class(config: dict):
    import transformers

    architectures = config.get("architectures") or ["AutoModel"]
    return getattr(transformers, architectures[0])


class HFEncoderAdapter(Adapter):
    family = "hf_encoder"
    libraries = ("torch", "transformers")

    def _arch_config(self):
        import transformers

        path = self.base_dir / self.entry.arch_config
        return transformers.AutoConfig.from_pretrained(str(path)), json.loads(path.read_text())

    def random_init(self, seed):
        import torch

        config, raw = self._arch_config()
        torch.manual_seed(seed)
        return model_class(raw)(config).eval()

    def save(self, model, dest):
        from safetensors.torch import save_model

        dest.mkdir(parents=True, exist_ok=True)
        # The shipped config as is (what a hub download holds): save_pretrained would rewrite
        # fields such as T5's tie_word_embeddings that change the model's numerics.
        (dest / "config.json").write_text((self.base_dir / self.entry.arch_config).read_text())
        save_model(model, str(dest / "model.safetensors"))  # handles tied (shared) tensors

    def import_code(self, weights_dir):
        super().import_code(weights_dir)
        # transformers imports a model class's module (and what it needs, torch._dynamo among
        # them) on first access, not with the package.
        model_class(json.loads((Path(weights_dir) / "config.json").read_text()))

    def load(self, weights_dir):
        config = json.loads((Path(weights_dir) / "config.json").read_text())
        # Safetensors first (transformers' default); a .bin only through torch.load(weights_only=True).
        return model_class(config).from_pretrained(str(weights_dir), weights_only=True).eval()

    def is_vision(self, config: dict) -> bool:
        return "image_size" in config and "vocab_size" not in config

    def make_inputs(self, weights_dir, seed):
        weights_dir = Path(weights_dir)
        config = json.loads((weights_dir / "config.json").read_text())
        rng = np.random.default_rng(seed)
        if self.is_vision(config):
            size = int(self.options.image_size or config["image_size"])
            channels = int(config.get("num_channels", 3))
            return {"pixel_values": rng.standard_normal((1, channels, size, size), dtype=np.float32)}
        text = self.options.text
        if text and _has_tokenizer(weights_dir):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(weights_dir))
            encoded = tokenizer([text], return_tensors="np")
            return {name: np.asarray(value, dtype=np.int64) for name, value in encoded.items()}
        # No tokenizer (random-init fallback): seeded token ids framed like a real sentence.
        seq_len = int(self.options.seq_len or 16)
        vocab = config["vocab_size"]
        ids = seeded_token_ids(rng, vocab, seq_len)
        ids[0, 0] = config.get("bos_token_id") or min(101, vocab - 1)  # [CLS]
        ids[0, -1] = config.get("eos_token_id") or min(102, vocab - 1)  # [SEP]
        inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
        if config.get("type_vocab_size"):
            inputs["token_type_ids"] = np.zeros_like(ids)
        return inputs

    def run(self, model, inputs):
        out = model(**inputs, output_hidden_states=True, return_dict=True)
        last = getattr(out, "last_hidden_state", None)
        if last is None:
            last = out.hidden_states[-1]
        outputs = {"last_hidden_state": last}
        if getattr(out, "pooler_output", None) is not None:
            outputs["pooler_output"] = out.pooler_output
        if getattr(out, "logits", None) is not None:
            outputs["logits"] = out.logits
        if self.options.pooling == "mean":
            import torch

            mask = inputs["attention_mask"].unsqueeze(-1).to(last.dtype)
            pooled = (last * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            outputs["sentence_embedding"] = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return outputs


def _has_tokenizer(weights_dir: Path) -> bool:
    return any((weights_dir / name).exists() for name in ("tokenizer.json", "vocab.txt", "tokenizer_config.json"))
