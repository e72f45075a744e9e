"""benchmark: latency, throughput and peak memory per batch size on the target device."""

import csv
import json
from pathlib import Path

from npu_adapt import devices
from npu_adapt.benchmark import benchmark_model
from npu_adapt.io import load_tensors, read_json, write_json
from npu_adapt.jobs import ModelBlocked, model_step, setup_logging, upstream_reason
from npu_adapt.plots import benchmark_plot
from npu_adapt.runner import LoadedModel

CSV_COLUMNS = ["batch_size", "status", "runs", "first_call_ms", "mean_ms", "std_ms", "p50_ms", "p90_ms", "p95_ms", "p99_ms", "throughput", "peak_mem_mb", "peak_mem_kind", "reason"]


def main(smk):
    log = setup_logging(smk.log[0])
    model = smk.wildcards.model
    entry = json.loads(smk.params.model)
    placement = json.loads(smk.params.placement)
    settings = json.loads(smk.params.settings)
    manifest, target = read_json(smk.input.manifest), read_json(smk.input.target)
    result = {"model": model, "status": "ok", "reason": None, "device": target.get("device"), "device_name": target.get("device_name"), "dtype": placement["dtype"], "warmup": settings["warmup"], "settings": settings, "results": []}
    try:
        if reason := upstream_reason(target=target):
            raise ModelBlocked(reason)
        with model_step("device"):
            device = devices.resolve(placement["device"])
        loaded = LoadedModel(entry, manifest, device, placement["dtype"], Path(smk.scriptdir).parent)
        result.update(device=device, device_name=devices.device_name(device))
        log.info("%s on %s (%s) %s, batch sizes %s", model, device, result["device_name"], placement["dtype"], settings["batch_sizes"])
        result["results"] = benchmark_model(loaded, load_tensors(smk.input.inputs), settings)
    except ModelBlocked as blocked:
        result.update(status="blocked", reason=str(blocked))
        log.error("%s blocked: %s", model, blocked)
    write_json(smk.output.json, result)
    with open(smk.output.csv, "w", newline="") as handle:
        writer = csv.DictWriter(handle, CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in result["results"]:
            writer.writerow({column: ("null" if row.get(column) is None else row.get(column)) for column in CSV_COLUMNS})
    title = f"{model} on {result['device_name'] or result['device']} ({placement['dtype']})"
    if result["status"] == "blocked":
        title += " - blocked"
    benchmark_plot(result["results"], title, smk.output.plot)


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
