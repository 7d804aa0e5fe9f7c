"""The one SavedModel builder of the string-producing exports (translator, captioner, generator)
and what they share: their checks, padding a batch to its power-of-two bucket, the search over the
model's step and detokenization. TensorFlow only."""

import tensorflow as tf

from keras_seqattn import checks
from keras_seqattn.decoding import BeamSampler, GreedySampler
from keras_seqattn.text.vocabulary import Vocabulary


def check_export(function, model, methods=("initial_state", "step"), **vocabularies):
    """The checks every export starts with: the backend, the model's methods, the vocabularies."""
    checks.check_tensorflow_backend(f"`{function}`")
    for name, vocabulary in vocabularies.items():
        if not isinstance(vocabulary, Vocabulary):
            raise ValueError(
                f"`{name}` must be a keras_seqattn.text.Vocabulary. "
                f"Received: {name} of type {type(vocabulary).__name__}"
            )
    for name in methods:
        if not callable(getattr(model, name, None)):
            raise ValueError(
                f"`model` must have a `{name}` method (see `{function}`). "
                f"Received: model of type {type(model).__name__}"
            )


def check_search(max_target_length, beam_width):
    checks.check_positive_int("max_target_length", max_target_length)
    checks.check_positive_int("beam_width", beam_width)


def to_bucket(inputs, batch_buckets):
    """`inputs` padded (zeros, empty strings) along the batch axis to the next power of two."""
    if not batch_buckets:
        return inputs
    batch = tf.shape(inputs)[0]
    powers = tf.bitwise.left_shift(1, tf.range(31))
    bucket = tf.gather(powers, tf.argmax(tf.cast(powers >= batch, tf.int32)))  # the first >= batch
    padding = [[0, bucket - batch]] + [[0, 0]] * (inputs.shape.rank - 1)
    return tf.pad(inputs, padding)


def search_and_decode(
    model,
    state,
    rows,
    target_vocabulary,
    max_target_length,
    beam_width,
    length_penalty,
    return_attention_scores,
    batch,
    text_name,
):
    """Decode `rows` sources from `state` (greedy for `beam_width=1`, else beam search, best
    hypothesis), detokenized; the first `batch` rows of `{text_name, "score"[, "attention"]}`."""
    start = tf.fill([rows], Vocabulary.START)
    sampler = GreedySampler() if beam_width == 1 else BeamSampler(beam_width, length_penalty)
    found = sampler(
        model.step,
        state,
        start,
        end_id=Vocabulary.END,
        max_length=max_target_length,
        return_attention_scores=return_attention_scores,
    )
    found = list(found) if beam_width == 1 else [x[:, 0] for x in found]  # the best hypothesis
    outputs = {text_name: target_vocabulary.decode(found[0]), "score": found[1]}
    if return_attention_scores:
        outputs["attention"] = found[2]
    return {name: value[:batch] for name, value in outputs.items()}


def save(model, export_dir, signature, **tracked):
    """Build and write the SavedModel: a module holding `signature` (a `tf.function` with an input
    signature, served as `serving_default` and kept under its own name), what it reads
    (`tracked`: the vocabularies) and the model's tf.Variables themselves (not Keras's wrappers),
    so that loaders of TF1 style (TensorFlow Serving, saved_model_cli) restore them too. Returns
    the module."""
    module = tf.Module()
    for name, value in tracked.items():
        setattr(module, name, value)
    setattr(module, signature.__name__, signature)
    module.model_variables = [getattr(v, "value", v) for v in model.variables]
    tf.saved_model.save(module, export_dir, signatures={"serving_default": signature})
    return module
