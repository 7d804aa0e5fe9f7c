"""What the string-producing SavedModels share: padding a batch to its power-of-two bucket, the
search over the model's step, detokenization, and saving the module so that TensorFlow Serving
restores its variables. TensorFlow only."""

import tensorflow as tf

from keras_seqattn.decoding import beam_search, greedy_search
from keras_seqattn.export.vocabulary import Vocabulary
from keras_seqattn.ops import checks


def check_model(model, function):
    for name in ("initial_state", "step"):
        if not callable(getattr(model, name, None)):
            raise ValueError(f"`model` must have a `{name}` method (see `{function}`). "
                             f"Received: model of type {type(model).__name__}")


def check_vocabulary(name, vocabulary):
    if not isinstance(vocabulary, Vocabulary):
        raise ValueError(f"`{name}` must be a keras_seqattn.export.Vocabulary. "
                         f"Received: {name} of type {type(vocabulary).__name__}")


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


def search_and_decode(model, state, rows, target_vocabulary, max_target_length, beam_width, length_penalty,
                      return_attention, batch, text_name):
    """Decode `rows` sources from `state` (greedy for `beam_width=1`, else beam search, best
    hypothesis), detokenized; the first `batch` rows of `{text_name, "score"[, "attention"]}`."""
    start = tf.fill([rows], Vocabulary.START)
    search = dict(end_id=Vocabulary.END, max_length=max_target_length, return_alignments=return_attention)
    if beam_width == 1:
        found = greedy_search(model.step, state, start, **search)
    else:
        found = beam_search(model.step, state, start, beam_width=beam_width, length_penalty=length_penalty,
                            **search)
        found = [x[:, 0] for x in found]  # the best hypothesis
    outputs = {text_name: target_vocabulary.decode(found[0]), "score": found[1]}
    if return_attention:
        outputs["attention"] = found[2]
    return {name: value[:batch] for name, value in outputs.items()}


def save(module, model, export_dir, signature):
    """Save `module` with `signature` as `serving_default`; the model's tf.Variables themselves
    (not Keras's wrappers) are tracked, so that loaders of TF1 style (TensorFlow Serving,
    saved_model_cli) restore them too."""
    module.model_variables = [getattr(v, "value", v) for v in model.variables]
    tf.saved_model.save(module, export_dir, signatures={"serving_default": signature})
    return module
