"""Counting float operations of a Keras model's forward pass with TensorFlow's graph profiler."""
from __future__ import annotations

import keras
import tensorflow as tf


def forward_flops(model: keras.Model, input_shape: tuple[int, ...], dtype: tf.DType = tf.float32) -> int:
    """Float operations of one forward pass of a single example (batch 1), counted by TensorFlow's
    profiler on the frozen graph; training costs about three times this (forward + two backward)."""
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False))
    frozen = convert_variables_to_constants_v2(fn.get_concrete_function(tf.TensorSpec([1, *input_shape], dtype)))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    prof = tf.compat.v1.profiler.profile(graph=frozen.graph, run_meta=tf.compat.v1.RunMetadata(),
                                         cmd="op", options=opts)
    return int(prof.total_float_ops)
