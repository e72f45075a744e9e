"""benchmark: latency, throughput and peak memory per batch size on the target device."""

import json
from pathlib import Path

from npu_adapt import devices, integrity
from npu_adapt.benchmark import ROW_KEYS, benchmark_model, cpu_baseline, no_baseline, runs_as_baseline
from npu_adapt.io import load_tensors, read_json, write_csv, write_json
from npu_adapt.jobs import ModelBlocked, check_upstream, model_step, setup_logging
from npu_adapt.plots import benchmark_plot
from npu_adapt.runner import LoadedModel

# reason last: it is the long free-text column.
CSV_COLUMNS = [key for key in ROW_KEYS if key != "reason"] + ["reason"]


def main(smk):
    log = setup_logging(smk.log[0])
    integrity.configure(smk.config)
    model = smk.wildcards.model
    entry = json.loads(smk.params.model)
    placement = json.loads(smk.params.placement)
    settings = json.loads(smk.params.settings)
    manifest, target = read_json(smk.input.manifest), read_json(smk.input.target)
    result = {
        "model": model, "status": "ok", "reason": None,
        "device": target.get("device"), "device_name": target.get("device_name"), "dtype": placement["dtype"],
        "cpu_threads": None,  # CPU latencies are only comparable at equal thread counts
        "warmup": settings["warmup"], "settings": settings, "results": [],
        "baseline": None,
    }  # fmt: skip
    try:
        check_upstream(target=target)
        # A device of this job's own, held for the target measurements only (the baseline
        # runs on the CPU); see dump_outputs.py.
        with devices.acquire_device(devices.accelerator_kind(placement["device"])) as device_index:
            result["device_index"] = device_index
            import torch  # only now: the device's visibility must be set before any runtime starts

            result["cpu_threads"] = torch.get_num_threads()
            with model_step("device"):
                device = devices.resolve(placement["device"])
            loaded = LoadedModel(entry, manifest, device, placement["dtype"], Path(smk.scriptdir).parent)
            result.update(device=device, device_name=devices.device_name(device))
            log.info("%s on %s (%s) %s, batch sizes %s", model, device, result["device_name"], placement["dtype"], settings["batch_sizes"])
            with model_step("inputs"):  # checked against their recorded sha256 first
                arrays = load_tensors(smk.input.inputs)
            result["results"] = benchmark_model(loaded, arrays, settings)
            # A target on the CPU in float32 is the baseline's model too (built once per job);
            # any other target's copy is freed before the baseline loads its own.
            reusable = loaded if runs_as_baseline(loaded) else None
            del loaded
            devices.empty_cache(device)
        if not any(row["status"] == "ok" for row in result["results"]):
            # Out of memory even at the smallest batch size: the model cannot run here.
            raise ModelBlocked(f"no batch size fits in device memory; {result['results'][0]['reason']}")
        result["baseline"] = cpu_baseline(entry, manifest, arrays, settings, result["results"], Path(smk.scriptdir).parent, reusable)
    except ModelBlocked as blocked:
        result.update(status=blocked.status, reason=str(blocked), baseline=no_baseline("skipped", "the target benchmark is blocked"))
        log.error("%s blocked: %s", model, blocked)
    write_json(smk.output.json, result)
    write_csv(smk.output.csv, result["results"], CSV_COLUMNS)
    title = f"{model} on {result['device_name'] or result['device']} ({placement['dtype']})"
    if result["status"] == "blocked":
        title += " - blocked"
    benchmark_plot(result["results"], title, smk.output.plot, baseline=result["baseline"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
