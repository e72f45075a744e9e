"""Coverage: how many architectures go through the whole workflow to a verdict.

Runs a broad sample of timm architectures and transformers model types (tiny configs built
here, no download: `download.offline: true`, seeded random-init) through the real workflow,
in one Snakemake run, with a bfloat16 target on the CPU at batch size 1, and prints per
architecture its verdict (pass / fail / ...) or its blocked reason, and the fraction that
reached a verdict. Not part of `make test` (minutes on a laptop).

    python bench/coverage.py                     # prints the table
    python bench/coverage.py --out bench/COVERAGE.md --cores 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
WORKFLOW = ["Snakefile", "rules", "scripts", "npu_adapt", "schemas", "envs", "profiles"]
VERDICTS = ("pass", "warn", "fail", "self-check")

# Architectures from many timm families (CNNs, ViTs, hybrids, MLP-like, state-space), the
# test_* ones tiny by design, the others their smallest variants.
# Most diverse first: --timm N takes the first N.
TIMM = [
    "test_coatnet",
    "test_mambaout",
    "test_nfnet",
    "test_vit3",
    "coat_lite_tiny",
    "levit_128s",
    "regnetx_002",
    "edgenext_xx_small",
    "test_byobnet",
    "test_efficientnet",
    "test_maxvit",
    "test_resnet",
    "mobilenetv3_small_050",
    "resnet10t",
    "mobilevit_xxs",
    "deit_tiny_patch16_224",
    "xcit_nano_12_p16_224",
    "fastvit_t8",
    "lcnet_050",
    "efficientvit_b0",
]

TEXT = {
    "hidden_size": 32,
    "num_attention_heads": 2,
    "num_hidden_layers": 2,
    "intermediate_size": 64,
    "vocab_size": 1200,
    "max_position_embeddings": 64,
    "hidden_act": "gelu",
    "hidden_dropout_prob": 0.0,
    "attention_probs_dropout_prob": 0.0,
}
# transformers model types: (family, config.json). Tiny: two layers, 32 wide. Most diverse first.
TRANSFORMERS = {
    "bert": (
        "hf_encoder",
        {**TEXT, "architectures": ["BertModel"], "model_type": "bert", "type_vocab_size": 2, "pad_token_id": 0},
    ),
    "vit": (
        "hf_encoder",
        {
            "architectures": ["ViTModel"],
            "model_type": "vit",
            "image_size": 32,
            "patch_size": 8,
            "num_channels": 3,
            "hidden_size": 32,
            "num_attention_heads": 2,
            "num_hidden_layers": 2,
            "intermediate_size": 64,
            "hidden_act": "gelu",
        },
    ),
    "bart": (
        "hf_seq2seq",
        {
            "architectures": ["BartForConditionalGeneration"],
            "model_type": "bart",
            "d_model": 32,
            "encoder_layers": 1,
            "decoder_layers": 1,
            "encoder_attention_heads": 2,
            "decoder_attention_heads": 2,
            "encoder_ffn_dim": 64,
            "decoder_ffn_dim": 64,
            "vocab_size": 1200,
            "max_position_embeddings": 64,
            "bos_token_id": 0,
            "pad_token_id": 1,
            "eos_token_id": 2,
            "decoder_start_token_id": 2,
            "dropout": 0.0,
        },
    ),
    "roberta": (
        "hf_encoder",
        {
            **TEXT,
            "architectures": ["RobertaModel"],
            "model_type": "roberta",
            "type_vocab_size": 1,
            "pad_token_id": 1,
            "bos_token_id": 0,
            "eos_token_id": 2,
            "max_position_embeddings": 66,
        },
    ),
    "albert": (
        "hf_encoder",
        {**TEXT, "architectures": ["AlbertModel"], "model_type": "albert", "embedding_size": 16, "type_vocab_size": 2},
    ),
    "deberta-v2": (
        "hf_encoder",
        {
            **TEXT,
            "architectures": ["DebertaV2Model"],
            "model_type": "deberta-v2",
            "type_vocab_size": 0,
            "relative_attention": True,
            "position_buckets": 16,
            "pos_att_type": ["p2c", "c2p"],
            "max_relative_positions": -1,
        },
    ),
    "t5": (
        "hf_seq2seq",
        {
            "architectures": ["T5ForConditionalGeneration"],
            "model_type": "t5",
            "d_model": 32,
            "d_kv": 16,
            "d_ff": 64,
            "num_layers": 2,
            "num_decoder_layers": 2,
            "num_heads": 2,
            "vocab_size": 1200,
            "relative_attention_num_buckets": 8,
            "feed_forward_proj": "gated-gelu",
            "tie_word_embeddings": False,
            "decoder_start_token_id": 0,
            "eos_token_id": 1,
            "pad_token_id": 0,
            "dropout_rate": 0.0,
        },
    ),
    "electra": (
        "hf_encoder",
        {
            **TEXT,
            "architectures": ["ElectraModel"],
            "model_type": "electra",
            "embedding_size": 16,
            "type_vocab_size": 2,
        },
    ),
    "distilbert": (
        "hf_encoder",
        {
            "architectures": ["DistilBertModel"],
            "model_type": "distilbert",
            "dim": 32,
            "n_heads": 2,
            "n_layers": 2,
            "hidden_dim": 64,
            "vocab_size": 1200,
            "max_position_embeddings": 64,
            "dropout": 0.0,
            "attention_dropout": 0.0,
        },
    ),
}


def coverage_config(config_dir: Path, timm_archs: list[str], model_types: list[str]) -> dict:
    """The workflow config: every architecture as a model, random-init, bfloat16 target."""
    models = {}
    for arch in timm_archs:
        models[f"timm-{arch}"] = {
            "source": f"timm:{arch}",
            "family": "timm_image",
            "task": "image-classification",
            "fallback": "random-init",
        }
    config_dir.mkdir(parents=True, exist_ok=True)
    for model_type in model_types:
        family, arch_config = TRANSFORMERS[model_type]
        path = config_dir / f"{model_type}.json"
        path.write_text(json.dumps(arch_config, indent=2))
        models[f"hf-{model_type}"] = {
            "source": f"hf:coverage/tiny-{model_type}",
            "family": family,
            "arch_config": str(path.relative_to(config_dir.parent)),
            "fallback": "random-init",
            "inputs": {"seq_len": 12, "decoder_len": 4, "max_new_tokens": 4}
            if family == "hf_seq2seq"
            else ({} if "image_size" in arch_config else {"seq_len": 12}),
        }
    return {
        "download": {"offline": True},
        "targets": {"bf16": {"device": "cpu", "dtype": "bfloat16"}},
        "benchmark": {"batch_sizes": [1], "warmup": 1, "min_runs": 2, "max_runs": 3, "max_seconds": 0.2},
        "models": models,
    }


def run(
    workdir: Path, cores: int, timm_archs: list[str], model_types: list[str]
) -> tuple[subprocess.CompletedProcess, float]:
    """One Snakemake run in ``workdir`` (a copy of the workflow; an existing copy is reused,
    so an interrupted run resumes where it stopped)."""
    if not (workdir / "Snakefile").is_file():
        for name in WORKFLOW:
            source = REPO / name
            if source.is_dir():
                shutil.copytree(source, workdir / name, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy(source, workdir / name)
    config = coverage_config(workdir / "coverage_configs", timm_archs, model_types)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    env = {
        **os.environ,
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"],
        "PYTHONPATH": str(workdir),
    }
    started = time.monotonic()
    done = subprocess.run(
        ["snakemake", "--cores", str(cores), "results/all"], cwd=workdir, env=env, capture_output=True, text=True
    )
    return done, time.monotonic() - started


def short(reason: str, limit: int = 160) -> str:
    reason = reason.split(" | traceback tail:")[0]
    return reason if len(reason) <= limit else reason[: limit - 3] + "..."


def report(
    workdir: Path, done: subprocess.CompletedProcess, seconds: float, command: str, timm_archs: list, model_types: list
) -> str:
    with open(workdir / "results/leaderboard.csv") as handle:
        rows = {row["model"]: row for row in csv.DictReader(handle)}
    lines = [
        "# Coverage: architectures through the whole workflow",
        "",
        f"`{command}`: {len(rows)} architectures ({len(timm_archs)} timm, {len(model_types)} transformers"
        " model types), tiny or smallest variants, seeded random-init (offline), reference CPU float32,"
        " target CPU bfloat16,"
        f" batch size 1; one Snakemake run, exit status {done.returncode}, {seconds:.0f} s on {os.cpu_count()} CPUs"
        f" ({platform.processor() or platform.machine()}).",
        "",
        "A verdict (pass / fail / ...) means the model went through every stage: weights, inputs, both dumps, compare,"
        " benchmark, model card. `warn` / `fail` here is the accuracy verdict of bfloat16 against float32 at the"
        " bfloat16 default criteria (docs/design.md, Verdicts and criteria), not a failure of the workflow.",
        "",
        "| architecture | status | rel_l2 | cosine | reason |",
        "|---|---|---|---|---|",
    ]
    for model, row in sorted(rows.items()):
        reason = short(row["reason"]) if row["reason"] not in ("", "null") else ""
        lines.append(
            f"| {model} | {row['status']} | {row.get('rel_l2', 'null')} | {row.get('cosine', 'null')} "
            f"| {reason.replace('|', '/')} |"
        )
    reached = sum(row["status"] in VERDICTS for row in rows.values())
    lines += ["", f"**{reached} of {len(rows)} reached a verdict ({100 * reached / len(rows):.0f}%).**", ""]
    return "\n".join(lines)


def main() -> int:
    cli = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    cli.add_argument("--cores", type=int, default=os.cpu_count())
    cli.add_argument("--out", type=Path, help="also write the table here (e.g. bench/COVERAGE.md)")
    cli.add_argument("--keep", action="store_true", help="keep the run's directory (printed)")
    cli.add_argument("--workdir", type=Path, help="run (or resume) in this directory; kept")
    cli.add_argument("--timm", type=int, default=len(TIMM), help=f"the first N timm architectures (of {len(TIMM)})")
    cli.add_argument(
        "--transformers",
        type=int,
        default=len(TRANSFORMERS),
        help=f"the first N transformers model types (of {len(TRANSFORMERS)})",
    )
    args = cli.parse_args()
    timm_archs, model_types = TIMM[: args.timm], list(TRANSFORMERS)[: args.transformers]
    command = " ".join(["python bench/coverage.py", *sys.argv[1:]])
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="npu-adapt-coverage-"))
    args.keep |= args.workdir is not None
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        done, seconds = run(workdir, args.cores, timm_archs, model_types)
        if not (workdir / "results/leaderboard.csv").is_file():
            print(done.stdout[-3000:], done.stderr[-6000:], sep="\n", file=sys.stderr)
            print(f"no leaderboard: the run failed (exit status {done.returncode}); see above", file=sys.stderr)
            return 1
        text = report(workdir, done, seconds, command, timm_archs, model_types)
        print(text)
        if args.out:
            args.out.write_text(text)
        return 0
    finally:
        if args.keep:
            print(f"run directory: {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
