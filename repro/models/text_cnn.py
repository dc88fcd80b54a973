"""The one-layer CNN for sentence classification (Kim 2014; the figure of Zhang & Wallace 2015).

Word vectors stacked as the rows of a matrix; filters as tall as 2, 3 and 4 words slide down it
(1-D convolution over the word axis, each filter spanning the full vector width); each filter's
feature map is max-pooled to one number; the numbers are concatenated and a softmax classifies.
"""
from __future__ import annotations

from typing import Sequence

import keras
from keras import layers


def sentence_cnn(*, seq_len: int, embed_dim: int, vocab_size: int | None = None,
                 heights: Sequence[int] = (2, 3, 4), filters: int = 2, num_classes: int = 2,
                 dropout: float = 0.0, activation: str = "relu") -> keras.Model:
    """The sentence CNN; with the defaults, the chapter's model: 3 heights x 2 filters -> a 6-vector.

    With ``vocab_size`` the input is token ids (int, (seq_len,)) and a trainable embedding builds the
    sentence matrix; without it the input is the sentence matrix itself, (seq_len, embed_dim).
    Layer names: ``conv_h{h}``, ``pool_h{h}``, ``features`` (the concatenation), ``softmax``.
    """
    if vocab_size is None:
        inputs = keras.Input((seq_len, embed_dim), name="sentence_matrix")
        matrix = inputs
    else:
        inputs = keras.Input((seq_len,), dtype="int32", name="tokens")
        matrix = layers.Embedding(vocab_size, embed_dim, name="embedding")(inputs)
    pooled = []
    for h in heights:
        fmap = layers.Conv1D(filters, h, activation=activation, name=f"conv_h{h}")(matrix)
        pooled.append(layers.GlobalMaxPooling1D(name=f"pool_h{h}")(fmap))
    features = layers.Concatenate(name="features")(pooled)
    if dropout:
        features = layers.Dropout(dropout, name="dropout")(features)
    outputs = layers.Dense(num_classes, activation="softmax", name="softmax")(features)
    return keras.Model(inputs, outputs, name=f"sentence_cnn_{len(heights)}x{filters}")
