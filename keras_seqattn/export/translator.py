"""String-to-string SavedModels: tokenization, encoding, cached search and detokenization in one
graph, served as `serving_default(text) -> translation, score[, attention]`."""

import tensorflow as tf

from keras_seqattn import checks, deprecation
from keras_seqattn.export import serving
from keras_seqattn.text.vocabulary import Vocabulary


@deprecation.legacy_arguments(renamed={"return_attention": "return_attention_scores"})
def export_translator(
    model,
    export_dir,
    source_vocabulary,
    target_vocabulary,
    max_source_length,
    max_target_length,
    beam_width=4,
    length_penalty=0.0,
    return_attention_scores=False,
    batch_buckets=True,
):
    """Write a SavedModel that translates raw strings with `model`, and return the module saved.

    Its `serving_default` signature takes `text`, a `tf.string` tensor of shape `[None]`, and
    returns `translation` (`tf.string`, `[None]`: the best hypothesis, detokenized), `score`
    (`float32`, `[None]`: its summed log-probability, length-penalised with beam search) and, with
    `return_attention`, `attention` (`float32`, `[None, max_target_length, max_source_length]`: the
    alignment of every target token over the source tokens, zero after the end and on padding).
    The signature has one input spec, so any batch size runs without retracing. With
    `batch_buckets` (the default), a batch is padded with empty strings to the next power of two
    and the padding's results dropped: XLA compiles the search once per power of two instead of
    once per batch size, so a server warmed with one request of each size 1, 2, 4, ... up to its
    largest batch never compiles again.

    In the graph: `source_vocabulary.encode` (tensorflow-text), padding with `PAD`, the model's
    encoder, the search (greedy for `beam_width=1`, else beam search; one XLA-compiled loop over the
    model's cached step) and `target_vocabulary.decode`. The graph holds only core TensorFlow ops:
    serving it needs TensorFlow alone (not tensorflow-text, keras_seqattn or Keras), so stock
    TensorFlow Serving and `saved_model_cli` load it.

    Inputs are never rejected: invalid UTF-8 is replaced by U+FFFD (then `UNKNOWN`, as any token
    outside the vocabulary, e.g. from another language); an input longer than `max_source_length`
    tokens is truncated to its first `max_source_length` tokens; an empty input is an all-padding
    source (what the model decodes from no source, typically a short or empty string); an output
    that reaches `max_target_length` tokens without `END` is cut there.

    Args:
        model: a trained encoder-decoder with `initial_state(source_ids)` (`(batch, S)` int32, 0 =
            padding -> the decoding state) and `step(token_ids, state, step)` (the step function of
            `keras_seqattn.decoding.beam_search`); with `return_attention_scores`, the state's `"attention"`
            entry is this step's alignment `(batch, S)` (as `seq2seq.AttentionDecoder`'s).
        export_dir: where to write the SavedModel.
        source_vocabulary: the `keras_seqattn.text.Vocabulary` of the sources.
        target_vocabulary: the `Vocabulary` of the translations; decoding starts with
            `Vocabulary.START` and ends at `Vocabulary.END`.
        max_source_length: source tokens kept (the encoder input length S).
        max_target_length: target tokens generated at most.
        beam_width: 1 for greedy search, else the beam width.
        length_penalty: the GNMT length penalty α of beam search.
        return_attention_scores: also return the attention weights (`return_attention=` is its
            deprecated spelling).
        batch_buckets: pad batches to powers of two (see above); False runs each batch as it is.

    Example (a stand-in for a trained model, which writes its source backwards):
    >>> import os, tempfile
    >>> vocabulary = Vocabulary.from_texts(["hello"])
    >>> class Reverser(tf.Module):
    ...     def initial_state(self, source_ids):
    ...         lengths = tf.reduce_sum(tf.cast(source_ids != Vocabulary.PAD, tf.int32), axis=1)
    ...         return {"source": tf.reverse_sequence(source_ids, lengths, seq_axis=1)}
    ...     def step(self, token_ids, state, step):
    ...         token = tf.gather(state["source"], tf.minimum(step, 7), axis=1)
    ...         token = tf.where(token == Vocabulary.PAD, Vocabulary.END, token)
    ...         return tf.one_hot(token, vocabulary.size) * 10.0, state
    >>> path = os.path.join(tempfile.mkdtemp(), "reverser")
    >>> _ = export_translator(Reverser(), path, vocabulary, vocabulary, max_source_length=8,
    ...                       max_target_length=9, beam_width=1)
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> serve(text=tf.constant(["hello", "eh"]))["translation"].numpy().tolist()
    [b'olleh', b'he']
    """
    serving.check_export(
        "export_translator", model, source_vocabulary=source_vocabulary, target_vocabulary=target_vocabulary
    )
    checks.check_positive_int("max_source_length", max_source_length)
    serving.check_search(max_target_length, beam_width)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def translate(text):
        batch = tf.shape(text)[0]
        source = source_vocabulary.encode(serving.to_bucket(text, batch_buckets))[:, :max_source_length]
        source = source.to_tensor(Vocabulary.PAD, shape=[None, max_source_length])
        return serving.search_and_decode(
            model,
            model.initial_state(source),
            tf.shape(source)[0],
            target_vocabulary,
            max_target_length,
            beam_width,
            length_penalty,
            return_attention_scores,
            batch,
            "translation",
        )

    return serving.save(
        model, export_dir, translate, source_vocabulary=source_vocabulary, target_vocabulary=target_vocabulary
    )
