"""Helpers the attention experiments share: a compiled training step for small classifiers and the
convergence check of a curve recorded every few steps."""
from __future__ import annotations

import tensorflow as tf


def convergence_check(curve: list[float], steps: int, evals: int, higher: bool = False, **kw) -> dict:
    from repro import convergence

    return convergence.check(curve, budget=f"{steps} steps", unit_per_point=steps / max(1, len(curve)),
                             unit="steps", higher=higher, **kw)


def step_and_evaluate(model, loss_fn, opt, *, training):
    """A compiled (XLA) training step and an evaluation giving (loss, accuracy) for a classifier whose
    outputs are logits; ``training`` is passed to the model in the step (None: the layers' default)."""
    @tf.function(jit_compile=True)
    def step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=training))
        opt.apply_gradients(zip(tape.gradient(loss, model.trainable_variables), model.trainable_variables))
        return loss

    @tf.function
    def evaluate(x, y):
        lg = model(x)
        return loss_fn(y, lg), tf.reduce_mean(tf.cast(tf.equal(tf.argmax(lg, -1, output_type=tf.int32), y), tf.float32))

    return step, evaluate
