# Config access for the rules: merged per-model settings, the exact config slice each rule
# depends on (so editing one model re-runs only that model), and library code fingerprints.

import hashlib
import json
from pathlib import Path

WORKFLOW_DIR = Path(workflow.basedir)
LIBRARY_DIR = WORKFLOW_DIR / "npu_adapt"
WEIGHTS_DIR = config["weights_dir"]
MODELS = sorted(config["models"])


def check_models():
    """Config errors that a JSON schema cannot express, raised before any job runs."""
    for model, entry in config["models"].items():
        needs_arch = entry["family"] != "timm_image" and entry["fallback"] == "random-init"
        if needs_arch and "arch_config" not in entry:
            raise ValueError(f"config.yaml: models.{model}.arch_config is required with fallback: random-init")
        arch = entry.get("arch_config")
        if arch and not (WORKFLOW_DIR / arch).is_file():
            raise ValueError(f"config.yaml: models.{model}.arch_config: no file {WORKFLOW_DIR / arch}")


check_models()


def canonical(value):
    """JSON with sorted keys: a stable params value whose change triggers a re-run."""
    return json.dumps(value, sort_keys=True)


def merged(model, section):
    """A global section (accuracy, benchmark, reference, target) with the model's overrides."""
    return {**config[section], **config["models"][model].get(section, {})}


def model_entry(model, *keys):
    entry = config["models"][model]
    return {key: entry[key] for key in keys if key in entry}


def code_version(*modules):
    """sha256 of library modules (paths under npu_adapt/): a param, so editing the code a
    rule runs re-runs that rule."""
    digest = hashlib.sha256()
    for module in modules:
        for path in sorted(LIBRARY_DIR.glob(module)):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


ADAPTER_CODE = ("adapters/*.py", "runner.py", "io.py", "jobs.py", "devices.py")
