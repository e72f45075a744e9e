"""Decoder-only LLMs (family hf_causal_lm): logits and greedy generated ids compared, prefill
and decode benchmarked. A tiny Llama (grouped-query attention, RoPE) with its own tokenizer
runs from a local: directory in bfloat16, beside a GPT-2 built from the shipped config and
downloaded by the ModelScope client from the look-alike hub on 127.0.0.1."""

from __future__ import annotations

import os

os.environ.setdefault("MODELSCOPE_REPO_TREE_PAGE_MAX_ATTEMPTS", "1")  # see test_modelscope.py

import json
import time
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from conftest import REPO, load, run_snakemake, tiny_config
from modelscope_server import ModelScopeServer

from npu_adapt.adapters import get_adapter
from npu_adapt.config_types import ModelEntry
from npu_adapt.io import read_csv
from npu_adapt.llm_timing import prompt_ids

pytestmark = pytest.mark.e2e

TEXT = "the npu runs the model and the cpu checks it"
GPT2_ENTRY = {
    "source": "modelscope:npu-adapt/tiny-gpt2",
    "family": "hf_causal_lm",
    "task": "text-generation",
    "arch_config": "npu_adapt/model_configs/tiny-gpt2.json",
    "fallback": "random-init",
    "inputs": {"seq_len": 10, "max_new_tokens": 4},
}


def save_tiny_llama(directory: Path, with_tokenizer: bool) -> Path:
    """A 2-layer Llama (hidden 64, 4 query heads sharing 2 key/value heads, RoPE) with random
    weights, saved as a hub download would hold it; optionally a word-level tokenizer."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(7)
    config = LlamaConfig(
        vocab_size=512,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=256,
        rope_theta=10000.0,
        bos_token_id=1,
        eos_token_id=2,
        initializer_range=0.2,
        tie_word_embeddings=False,
    )
    LlamaForCausalLM(config).eval().save_pretrained(directory)
    if with_tokenizer:
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import PreTrainedTokenizerFast

        words = sorted(set(TEXT.split()))
        vocab = {"[UNK]": 0, "<s>": 1, "</s>": 2, **{word: 3 + i for i, word in enumerate(words)}}
        backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        PreTrainedTokenizerFast(
            tokenizer_object=backend, unk_token="[UNK]", bos_token="<s>", eos_token="</s>"
        ).save_pretrained(directory)
    return directory


def greedy_by_steps(adapter, model, input_ids: torch.Tensor, steps: int) -> torch.Tensor:
    """Greedy tokens from the adapter's prefill and single decode steps (the benchmark's path)."""
    with torch.inference_mode():
        cache, token = adapter.prefill(model, input_ids)
        tokens = [token]
        for _ in range(steps - 1):
            cache, token = adapter.decode(model, cache, token)
            tokens.append(token)
    return torch.cat(tokens, dim=1)


def test_gqa_llama_and_shipped_gpt2_generate_greedily_with_the_kv_cache(tmp_path):
    llama_dir = save_tiny_llama(tmp_path / "llama", with_tokenizer=False)
    llama = get_adapter(ModelEntry(family="hf_causal_lm", inputs={"seq_len": 12, "max_new_tokens": 6}))
    gpt2 = get_adapter(ModelEntry(**GPT2_ENTRY), REPO)
    gpt2.save(gpt2.random_init(0), tmp_path / "gpt2")
    for adapter, directory, seq_len, new in ((llama, llama_dir, 12, 6), (gpt2, tmp_path / "gpt2", 10, 4)):
        model = adapter.load(directory)
        vocab = model.config.vocab_size
        arrays = adapter.make_inputs(directory, seed=0)
        assert arrays["input_ids"].shape == (1, seq_len) and arrays["input_ids"].max() < vocab
        assert np.array_equal(arrays["input_ids"], adapter.make_inputs(directory, seed=0)["input_ids"])  # seeded
        inputs = {name: torch.from_numpy(array) for name, array in arrays.items()}
        with torch.inference_mode():
            outputs = adapter.run(model, inputs)
        assert outputs["logits"].shape == (1, seq_len, vocab)
        assert outputs["generated_ids"].shape[0] == 1 and 1 <= outputs["generated_ids"].shape[1] <= new
        assert adapter.output_kinds() == {"logits": "class_scores", "generated_ids": "token_ids"}
        # generate (KV cache) = the prompt's argmax, then one cached step per token.
        assert int(outputs["generated_ids"][0, 0]) == int(outputs["logits"][0, -1].argmax())
        steps = outputs["generated_ids"].shape[1]
        assert torch.equal(greedy_by_steps(adapter, model, inputs["input_ids"], steps), outputs["generated_ids"])
    attention = llama.load(llama_dir).model.layers[0].self_attn
    assert attention.k_proj.out_features * 2 == attention.q_proj.out_features  # grouped-query attention


def gpt2_with_prefill(prefill) -> SimpleNamespace:
    """A loaded tiny random-init GPT-2 on the CPU whose adapter's prefill is ``prefill(adapter,
    *args)`` (wrapping the adapter's own)."""
    adapter = get_adapter(ModelEntry(**GPT2_ENTRY), REPO)
    adapter.prefill = lambda *args: prefill(adapter, *args)
    return SimpleNamespace(adapter=adapter, model=adapter.random_init(3).eval(), device="cpu")


def llm_settings(**changes):
    """One batch size, two new tokens, no warm-up: ``changes`` on top."""
    from npu_adapt.config_types import BenchmarkSettings

    base = BenchmarkSettings(
        batch_sizes=(1,),
        warmup=0,
        min_runs=2,
        min_seconds=0.0,
        max_runs=5,
        max_seconds=30,
        baseline="none",
        threads=None,
        prompt_len=None,
        new_tokens=2,
    )
    return replace(base, **changes)


def test_the_prefill_is_timed_until_min_seconds_as_the_forward_is():
    """ttft_ms comes from timed runs until min_runs and min_seconds are both met (a call of
    this tiny GPT-2 takes milliseconds: min_runs alone would end far sooner)."""
    from npu_adapt.llm_timing import llm_figures

    in_prefill = []

    def prefill(adapter, *args):
        started = time.perf_counter()
        result = type(adapter).prefill(adapter, *args)
        in_prefill.append(time.perf_counter() - started)
        return result

    settings = llm_settings(min_seconds=0.5, max_runs=10**6)
    figures = llm_figures(gpt2_with_prefill(prefill), {"input_ids": torch.tensor([[5, 6, 7, 8]])}, settings, 1)
    assert sum(in_prefill) >= 0.5 and len(in_prefill) > 4 and figures["ttft_ms"] > 0


def test_a_prefill_over_the_budget_has_no_time_to_first_token_and_says_why():
    """A prefill that cannot be timed within max_seconds (here: 0.3 s a call, 0.25 s allowed)
    gives ttft_ms null and the reason, not a crash; decode is still timed."""
    from npu_adapt.llm_timing import llm_figures

    def slow_prefill(adapter, *args):
        time.sleep(0.3)
        return type(adapter).prefill(adapter, *args)

    settings = llm_settings(max_seconds=0.25)
    figures = llm_figures(gpt2_with_prefill(slow_prefill), {"input_ids": torch.tensor([[5, 6, 7, 8]])}, settings, 1)
    assert figures["ttft_ms"] is None and figures["decode_ms_per_token"] > 0
    assert figures["reason"].startswith("time to first token: ") and "max_seconds=0.25" in figures["reason"]


def test_prompt_of_a_configured_length_repeats_the_inputs_ids():
    ids = torch.tensor([[5, 6, 7]]).repeat(2, 1)
    assert prompt_ids(ids, None) is ids
    assert prompt_ids(ids, 7).tolist() == [[5, 6, 7, 5, 6, 7, 5]] * 2
    assert prompt_ids(ids, 2).tolist() == [[5, 6]] * 2


@pytest.fixture(scope="module")
def llm_run(tmp_path_factory):
    """One workflow run: the tiny Llama from a local: directory (bfloat16 target) and the
    tiny GPT-2 downloaded from the ModelScope look-alike (float32 target)."""
    root = tmp_path_factory.mktemp("llm")
    llama_dir = save_tiny_llama(root / "tiny-llama", with_tokenizer=True)
    gpt2 = get_adapter(ModelEntry(**GPT2_ENTRY), REPO)
    gpt2.save(gpt2.random_init(3), root / "hub" / "tiny-gpt2")
    config = tiny_config(
        download={"offline": False, "retries": 1, "backoff": 0.05, "timeout": 10},
        benchmark={
            "batch_sizes": [1, 2],
            "warmup": 1,
            "min_runs": 3,
            "max_runs": 5,
            "max_seconds": 10,  # a cap: max_runs ends the runs first unless the machine is busy
            "prompt_len": 20,
            "new_tokens": 5,
        },
        models={
            "tiny-llama": {
                "source": f"local:{llama_dir}",
                "family": "hf_causal_lm",
                "task": "text-generation",
                # A model's own targets: the global fp32 dropped, a bfloat16 one added.
                "targets": {"fp32": False, "bf16": {"device": "cpu", "dtype": "bfloat16"}},
                "inputs": {"text": TEXT, "max_new_tokens": 6},
            },
            "tiny-gpt2": GPT2_ENTRY,
        },
    )
    with ModelScopeServer() as hub:
        hub.add_repo("npu-adapt/tiny-gpt2", root / "hub" / "tiny-gpt2")
        env = {"MODELSCOPE_ENDPOINT": hub.url, "MODELSCOPE_CACHE": str(root / "modelscope_cache")}
        run_snakemake(root / "work", "results/all", config=config, env=env)
    return SimpleNamespace(work=root / "work", llama_dir=llama_dir, hub_url=hub.url)


def test_llm_outputs_are_compared_as_logits_and_generated_tokens(llm_run):
    work, llama_dir = llm_run.work, llm_run.llama_dir
    from transformers import AutoTokenizer, LlamaForCausalLM

    # Inputs from the shipped tokenizer.
    inputs = np.load(work / "results/tiny-llama/inputs/input_ids.npy")
    assert inputs.tolist() == AutoTokenizer.from_pretrained(str(llama_dir))([TEXT])["input_ids"]
    target = load(work / "results/tiny-llama/bf16/dump/index.json")
    assert target["dtype"] == "bfloat16" and target["status"] == "ok"

    # The reference's greedy tokens are transformers' own (float32, KV cache).
    model = LlamaForCausalLM.from_pretrained(str(llama_dir)).eval()
    with torch.inference_mode():
        expected = model.generate(
            torch.from_numpy(inputs), max_new_tokens=6, do_sample=False, use_cache=True, pad_token_id=2
        )
    reference = np.load(work / "results/tiny-llama/reference/generated_ids.npy")
    assert reference.tolist() == expected[:, inputs.shape[1] :].tolist()

    compare = load(work / "results/tiny-llama/bf16/compare.json")
    logits, generated = compare["outputs"]["logits"], compare["outputs"]["generated_ids"]
    assert logits["kind"] == "class_scores" and generated["kind"] == "token_ids"
    ref_logits = np.load(work / "results/tiny-llama/reference/logits.npy")
    tgt_logits = np.load(work / "results/tiny-llama/bf16/dump/logits.npy")
    assert ref_logits.shape == tgt_logits.shape == (1, inputs.shape[1], 512)
    assert not np.array_equal(ref_logits, tgt_logits)  # bfloat16 really ran
    assert logits["top1_match"] == pytest.approx(np.mean(ref_logits.argmax(-1) == tgt_logits.argmax(-1)))
    assert 0 < logits["rel_l2"] < 0.1 and logits["cosine"] > 0.99
    tgt_ids = np.load(work / "results/tiny-llama/bf16/dump/generated_ids.npy")
    same = reference.shape == tgt_ids.shape and np.array_equal(reference, tgt_ids)
    assert generated["exact_match"] is same
    if not same:
        length = min(reference.shape[1], tgt_ids.shape[1])
        differs = np.flatnonzero(reference[0, :length] != tgt_ids[0, :length])
        assert generated["first_mismatch"] == (int(differs[0]) if differs.size else length)

    gpt2 = load(work / "results/tiny-gpt2/fp32/compare.json")
    assert gpt2["status"] == "self-check"  # float32 on the CPU on both sides: identical logits and tokens
    assert gpt2["outputs"]["generated_ids"]["exact_match"] is True and gpt2["outputs"]["logits"]["top1_match"] == 1.0


@pytest.mark.e2e
def test_generated_ids_that_were_never_compared_do_not_read_as_identical_on_the_card(llm_run):
    from npu_adapt.cards import model_card
    from npu_adapt.compare import failed_output

    summary = load(llm_run.work / "results/tiny-llama/summary.json")
    outputs = summary["targets"]["bf16"]["accuracy"]["outputs"]

    def row(card: str) -> str:
        return next(line for line in card.splitlines() if line.startswith("| generated_ids |"))

    assert "not compared" not in row(model_card(summary))  # as the run wrote it: compared
    # What compare writes when the target's dump lacks the output.
    outputs["generated_ids"] = failed_output("token_ids", "missing from the target dump", status="error")
    line = row(model_card(summary))
    assert "identical" not in line and line.count("n/a (not compared: error)") == 3, line
    assert line.endswith("| error: missing from the target dump |")


def test_gpt2_came_from_modelscope(llm_run):
    manifest = load(llm_run.work / "weights/tiny-gpt2/manifest.json")
    assert manifest["status"] == "ok" and manifest["pretrained"] is True and manifest["endpoint"] == llm_run.hub_url
    assert {f["path"] for f in manifest["files"]} == {"config.json", "model.safetensors"}
    summary = load(llm_run.work / "results/tiny-gpt2/summary.json")
    assert summary["library"] == "transformers" and summary["base_model"] == "npu-adapt/tiny-gpt2"


def test_prefill_and_decode_figures_per_batch_size(llm_run):
    work = llm_run.work
    for model, target in (("tiny-llama", "bf16"), ("tiny-gpt2", "fp32")):
        bench = load(work / f"results/{model}/{target}/benchmark.json")
        assert bench["status"] == "ok" and [row["batch_size"] for row in bench["results"]] == [1, 2]
        # Latency is that of the dumps' call: the forward pass and the short greedy generation.
        generated = {"tiny-llama": 6, "tiny-gpt2": 4}[model]  # their inputs.max_new_tokens
        assert bench["timed_call"] == f"one forward pass, then greedy generate of up to {generated} new tokens"
        for row in bench["results"]:
            assert row["status"] == "ok" and row["prompt_len"] == 20 and row["new_tokens"] == 5
            assert 0 < row["ttft_ms"] and 0 < row["decode_ms_per_token"]
            assert row["decode_tokens_per_s"] == pytest.approx(
                row["batch_size"] * 1000 / row["decode_ms_per_token"], rel=1e-12
            )
        table = read_csv(work / f"results/{model}/{target}/benchmark.csv")
        assert table["ttft_ms"].tolist() == [row["ttft_ms"] for row in bench["results"]]
        assert table["decode_tokens_per_s"].dtype == np.float64 and table["prompt_len"].dtype == np.int64
        card = (work / f"results/{model}/README.md").read_text()
        assert "| batch | prompt_len | new_tokens | ttft_ms | decode_ms_per_token | decode_tokens_per_s |" in card
        assert f"One call: {bench['timed_call']}." in card

    board = read_csv(work / "results/leaderboard.csv").set_index("model")
    assert board.loc["tiny-llama", "target"] == "bf16" and board.loc["tiny-gpt2", "target"] == "fp32"
    for model, target in (("tiny-llama", "bf16"), ("tiny-gpt2", "fp32")):
        bs1 = load(work / f"results/{model}/{target}/benchmark.json")["results"][0]
        assert (
            board.loc[model, "ttft_ms"] == bs1["ttft_ms"]
            and board.loc[model, "decode_tokens_per_s"] == bs1["decode_tokens_per_s"]
        )
    markdown = (work / "results/leaderboard.md").read_text()
    assert "ttft_ms" in markdown and "decode_tokens_per_s" in markdown
    assert json.loads((work / "results/tiny-llama/summary.json").read_text())["family"] == "hf_causal_lm"
