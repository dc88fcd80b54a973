"""The environment a result was measured in: versions, devices, threads, machine and commit."""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def commit() -> str:
    """Short commit of the checkout, with '-dirty' when tracked files outside results/ changed."""
    sha = _git("rev-parse", "--short=10", "HEAD")
    if not sha:
        return "nocommit"
    changed = _git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)results",
                   ":(exclude)README.md")
    return f"{sha}-dirty" if changed else sha


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus() -> list[str]:
    import tensorflow as tf

    names = []
    for dev in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(dev)
        names.append(details.get("device_name", dev.name))
    return names


def machine() -> str:
    """A stable name for this kind of machine (asv-style): REPRO_MACHINE, or os-arch-cores-gpu."""
    if os.environ.get("REPRO_MACHINE"):
        return re.sub(r"[^A-Za-z0-9_.-]", "_", os.environ["REPRO_MACHINE"])
    gpu = gpus()
    accel = re.sub(r"[^A-Za-z0-9]+", "", gpu[0]).lower() if gpu else "cpu"
    return f"{platform.system().lower()}-{platform.machine()}-{os.cpu_count()}core-{accel}"


def capture() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    try:
        import tensorflow_datasets as tfds
        tfds_version = tfds.__version__
    except Exception:  # an optional source; its absence must not stop a record
        tfds_version = None
    devices = gpus()
    return {
        "machine": machine(),
        "commit": commit(),
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "tensorflow_datasets": tfds_version,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "gpus": devices,
        "device": "GPU:0" if devices else "CPU:0",
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
                    "TF_NUM_INTRAOP_THREADS": os.environ.get("TF_NUM_INTRAOP_THREADS"),
                    "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS")},
        "op_determinism": True,  # the runner turns it on for every run (repro.runner.seed_everything)
    }
