"""timm image models (classification or embedding towers such as CLIP's vision tower).

Weights directory layout: ``config.json`` (timm's hub layout: ``architecture``,
``num_classes``, ``pretrained_cfg``) and ``model.safetensors``, exactly what the
``timm/ARCH.TAG`` repositories on the Hugging Face hub hold, so downloaded and materialised
weights load the same way.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from npu_adapt.adapters import CLASS_SCORES, Adapter
from npu_adapt.weights.sources import Source, SourceError

if TYPE_CHECKING:
    from npu_adapt.config_types import ModelEntry


def timm_name(entry: ModelEntry) -> str:
    """``timm:convnextv2_atto.fcmae_ft_in1k`` -> ``convnextv2_atto.fcmae_ft_in1k``."""
    return Source.parse(entry.source).name


class TimmImageAdapter(Adapter):
    family = "timm_image"
    libraries = ("torch", "timm")

    def random_init(self, seed):
        import timm
        import torch

        name = timm_name(self.entry)
        architecture, _, tag = name.partition(".")
        if not timm.is_model(architecture):  # a typo: say so, with timm's nearest names
            nearest = difflib.get_close_matches(architecture, timm.list_models(), n=3, cutoff=0.8)
            hint = f"; did you mean {', '.join(nearest)}?" if nearest else " (timm.list_models() lists them)"
            raise SourceError(f"timm has no architecture {architecture!r} ({self.entry.source}){hint}")
        tags = [known.partition(".")[2] for known in timm.list_pretrained(f"{architecture}.*")] if tag else []
        if tag and tag not in tags:  # timm's own message lists no tag
            nearest = difflib.get_close_matches(tag, tags, n=3)
            hint = f"did you mean {', '.join(nearest)}?" if nearest else f"its tags: {', '.join(tags) or 'none'}"
            raise SourceError(f"timm has no tag {tag!r} for {architecture} ({self.entry.source}); {hint}")
        torch.manual_seed(seed)
        # The tag's pretrained config sets the head (e.g. 1024-d projection for CLIP towers).
        model = timm.create_model(name, pretrained=False)
        model.eval()
        return model

    def save(self, model, dest):
        from safetensors.torch import save_model

        dest.mkdir(parents=True, exist_ok=True)
        cfg = dict(model.pretrained_cfg)
        config = {
            "architecture": cfg.get("architecture") or model.default_cfg.get("architecture"),
            "num_classes": model.num_classes,
            "num_features": model.num_features,
            "pretrained_cfg": {k: v for k, v in cfg.items() if _jsonable(v)},
        }
        (dest / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True))
        # save_model, not save_file: it keeps one copy of tensors that modules share (CoaT's
        # convolutional position encodings), which save_file refuses.
        save_model(model, str(dest / "model.safetensors"))

    def load(self, weights_dir):
        import timm
        import torch
        from safetensors.torch import load_model

        weights_dir = Path(weights_dir)
        config = json.loads((weights_dir / "config.json").read_text())

        def build():
            return timm.create_model(
                config["architecture"],
                pretrained=False,
                num_classes=config["num_classes"],
                pretrained_cfg_overlay=config.get("pretrained_cfg", {}),
            )

        # The architecture without its random initialisation (seconds per 100M parameters,
        # all of it overwritten by the weights): built on the meta device, then given
        # uninitialised memory that load_state_dict (strict: every tensor) fills.
        with torch.device("meta"):
            model = build()
        if _non_persistent_buffers(model):
            model = build()  # buffers that __init__ computes and the weights do not hold
        else:
            model = model.to_empty(device="cpu")
        if (weights_dir / "model.safetensors").is_file():
            # Memory-mapped: the file's pages are read once, copied straight into the model.
            # load_model (strict) accepts a file that holds shared tensors once (save_model)
            # as well as one that lists every name (the Hub's).
            load_model(model, str(weights_dir / "model.safetensors"), strict=True)
        else:
            # A pickle only as plain tensors: weights_only refuses to build arbitrary objects.
            model.load_state_dict(torch.load(weights_dir / "pytorch_model.bin", map_location="cpu", weights_only=True))
        return model.eval()

    def make_inputs(self, weights_dir, seed):
        config = json.loads((Path(weights_dir) / "config.json").read_text())
        pretrained_cfg = config.get("pretrained_cfg", {})
        _, height, width = pretrained_cfg.get("input_size", [3, 224, 224])
        size = self.options.image_size
        if size:
            height = width = int(size)
        mean = np.asarray(pretrained_cfg.get("mean", (0.485, 0.456, 0.406)), dtype=np.float32)
        std = np.asarray(pretrained_cfg.get("std", (0.229, 0.224, 0.225)), dtype=np.float32)
        # A seeded synthetic RGB image in [0, 1], normalised the way the model expects.
        image = np.random.default_rng(seed).random((1, 3, height, width), dtype=np.float32)
        pixel_values = (image - mean[None, :, None, None]) / std[None, :, None, None]
        return {"pixel_values": pixel_values.astype(np.float32)}

    def run(self, model, inputs):
        features = model.forward_features(inputs["pixel_values"])
        pooled = model.forward_head(features, pre_logits=True)
        outputs = {"features": pooled}
        if model.num_classes:
            # CLIP-style towers end in a projection to an embedding, not in class scores.
            head = "logits" if self.entry.task == "image-classification" else "embedding"
            outputs[head] = model.forward_head(features)
        return outputs

    def output_kinds(self):
        return {"logits": CLASS_SCORES}


def _non_persistent_buffers(model) -> list[str]:
    """Buffers that are not part of the state dict (e.g. relative position indexes)."""
    saved = set(model.state_dict())
    return [name for name, _ in model.named_buffers() if name not in saved]


def _jsonable(value) -> bool:
    try:
        json.dumps(value)
    except TypeError:
        return False
    return True
