"""`repro bench`: training throughput of the suite's workhorse models, with XLA off and on (and mixed
precision on a GPU), against the peak of a large matrix product measured in the same run.

Throughput is measured on random tensors of the real shapes: speed does not depend on the values.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from repro.flops import forward_flops
from repro.models.lenet import lenet5


@dataclasses.dataclass(frozen=True)
class Workload:
    name: str
    build: Callable[[], keras.Model]
    input_shape: tuple[int, ...]
    classes: int
    unit: str            # what one sample is, for the table
    tokens_per_sample: int = 1
    flops: Callable[[keras.Model], int] | None = None   # forward FLOPs per sample, when the profiler can't count them


def _lstm() -> keras.Model:
    # the sequences suite's workhorse: LSTM(64) over 50 steps of a 2-feature series (adding problem shape)
    return keras.Sequential([keras.Input((50, 2)), keras.layers.LSTM(64), keras.layers.Dense(1)])


def _lstm_flops(model: keras.Model) -> int:
    # TensorFlow's profiler does not look inside the recurrent while-loop: count the gates by hand,
    # 4 gates x (input + recurrent) multiply-adds per unit and step, plus the elementwise updates
    steps, features = model.input_shape[1:]
    units = model.layers[0].units
    per_step = 2 * 4 * units * (features + units) + 10 * units
    return steps * per_step + 2 * units


WORKLOADS = {
    "lenet5": Workload("lenet5", lambda: lenet5(), (32, 32, 1), 10, "image"),
    "lstm64": Workload("lstm64", _lstm, (50, 2), 0, "sequence", tokens_per_sample=50, flops=_lstm_flops),
}


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict:
    """Best GFLOP/s of an n x n float32 matrix product, with numpy and with TensorFlow (on its device)."""
    a = np.random.default_rng(0).standard_normal((n, n), dtype=np.float32)
    b = np.random.default_rng(1).standard_normal((n, n), dtype=np.float32)
    flops = 2 * n ** 3

    def best(fn: Callable[[], object]) -> float:
        fn()
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return flops / min(times) / 1e9

    ta, tb = tf.constant(a), tf.constant(b)
    return {"numpy_gflops": best(lambda: a @ b),
            "tf_gflops": best(lambda: tf.linalg.matmul(ta, tb).numpy())}


def train_throughput(w: Workload, *, jit: bool, mixed: bool = False, batch_size: int = 128,
                     steps: int = 60, warmup_steps: int = 10, seed: int = 0) -> dict:
    """Samples per second of `fit` over ``steps`` batches after ``warmup_steps`` (compilation)."""
    keras.utils.set_random_seed(seed)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    try:
        model = w.build()
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch_size * 8, *w.input_shape)).astype("float32")
        if w.classes:
            y = rng.integers(0, w.classes, batch_size * 8).astype("int32")
            loss = "sparse_categorical_crossentropy"
        else:
            y = rng.standard_normal((batch_size * 8, 1)).astype("float32")
            loss = "mse"
        ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size).cache().repeat().prefetch(tf.data.AUTOTUNE)
        model.compile(optimizer="adam", loss=loss, jit_compile=jit)
        model.fit(ds, epochs=1, steps_per_epoch=warmup_steps, verbose=0)
        t0 = time.perf_counter()
        model.fit(ds, epochs=1, steps_per_epoch=steps, verbose=0)
        seconds = time.perf_counter() - t0
        flops = w.flops(model) if w.flops else forward_flops(model, w.input_shape)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    sps = steps * batch_size / seconds
    return {"samples_per_s": sps, "tokens_per_s": sps * w.tokens_per_sample,
            "train_gflops": 3 * flops * sps / 1e9, "forward_flops_per_sample": flops, "seconds": seconds}


def run(workloads: list[str], *, steps: int, gpu: bool) -> tuple[dict, list[dict]]:
    peak = matmul_peak()
    peak_gflops = max(peak.values())
    rows = []
    variants = [(False, False), (True, False)] + ([(True, True), (False, True)] if gpu else [])
    for name in workloads:
        w = WORKLOADS[name]
        for jit, mixed in variants:
            r = train_throughput(w, jit=jit, mixed=mixed, steps=steps)
            rows.append({"model": name, "xla": jit, "mixed_precision": mixed, "batch": 128, "sample": w.unit,
                         "samples_per_s": round(r["samples_per_s"], 1),
                         "tokens_per_s": round(r["tokens_per_s"], 1) if w.tokens_per_sample > 1 else None,
                         "train_gflops": round(r["train_gflops"], 2),
                         "pct_of_matmul_peak": round(100 * r["train_gflops"] / peak_gflops, 1),
                         "seconds": round(r["seconds"], 2)})
    return peak, rows
