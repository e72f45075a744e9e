"""check_env: record what this machine offers (devices, versions, vendor tool output)."""

from pathlib import Path

from npu_adapt import devices
from npu_adapt.io import write_json
from npu_adapt.jobs import start_job


def main(smk):
    log = start_job(smk.log[0])
    env, raw = devices.environment_report()
    write_json(smk.output.env, env)
    Path(smk.output.raw).write_text(raw)
    log.info("auto device: %s; versions: %s", env["auto_device"], env["versions"])
    if env["note"]:
        log.warning(env["note"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
