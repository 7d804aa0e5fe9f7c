"""Prompt-to-text SavedModels for language models: tokenization, prefill, the prompted search and
detokenization in one graph, served as `serving_default(prompt) -> text, score`. TensorFlow only."""

import tensorflow as tf

from keras_seqattn import checks
from keras_seqattn.decoding import beam_search, greedy_search, sample_search
from keras_seqattn.export import serving
from keras_seqattn.text.vocabulary import Vocabulary

SEARCHES = ("greedy", "sample", "beam")


def export_generator(
    model,
    export_dir,
    vocabulary,
    max_prompt_length,
    max_new_tokens,
    search="greedy",
    batch_buckets=True,
    **search_options,
):
    """Write a SavedModel that continues text prompts with a language model, and return the module.

    Its `serving_default` signature takes `prompt` (`tf.string`, `[None]`) and returns `text`
    (`tf.string`, `[None]`: the generated continuation, detokenized, up to `Vocabulary.END`) and
    `score` (`float32`, `[None]`: the log-probability of the generated tokens; for beam search,
    of the best hypothesis). The prompt is tokenized in the graph, truncated to its last
    `max_prompt_length` tokens, prefilled through the model in one call and continued by the
    search; batches are padded to powers of two as in `export_translator`. Core TensorFlow ops
    only: serving needs neither keras_seqattn nor Keras.

    Args:
        model: a trained language model with `initial_state(batch_size)` (empty caches),
            `prefill(prompt_ids, state)` and `step(token_ids, state, step)` (see
            `keras_seqattn.decoding.greedy_search`; `examples/language_model.py` has one).
        export_dir: where to write the SavedModel.
        vocabulary: the `keras_seqattn.export.Vocabulary` of the model.
        max_prompt_length: prompt tokens kept (the last ones).
        max_new_tokens: tokens generated at most.
        search: "greedy", "sample" or "beam".
        batch_buckets: pad batches to powers of two.
        **search_options: given to the search: e.g. `temperature`, `top_k`, `top_p`, `seed` for
            sampling, `beam_width`, `length_penalty` for beam search, `stop_ids`.

    Example (a stand-in for a trained language model, which repeats the prompt's last token until
    the text holds 5 tokens (`step` counts the prompt's tokens too); `examples/language_model.py`
    exports a real one):
    >>> import os, tempfile
    >>> vocabulary = Vocabulary.from_texts(["abc"])
    >>> class Repeater(tf.Module):
    ...     def initial_state(self, batch_size):
    ...         return {"last": tf.zeros([batch_size], tf.int32)}
    ...     def prefill(self, prompt_ids, state):  # right-padded prompts: the last token is the largest id here
    ...         return {"last": tf.reduce_max(tf.cast(prompt_ids, tf.int32), axis=1)}
    ...     def step(self, token_ids, state, step):
    ...         token = tf.where(step < 4, state["last"], Vocabulary.END)
    ...         return tf.one_hot(token, vocabulary.size) * 10.0, state
    >>> path = os.path.join(tempfile.mkdtemp(), "repeater")
    >>> _ = export_generator(Repeater(), path, vocabulary, max_prompt_length=4, max_new_tokens=6)
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> serve(prompt=tf.constant(["ab", "c"]))["text"].numpy().tolist()
    [b'bbb', b'cccc']
    """
    serving.check_export("export_generator", model, ("initial_state", "prefill", "step"), vocabulary=vocabulary)
    checks.check_positive_int("max_prompt_length", max_prompt_length)
    checks.check_positive_int("max_new_tokens", max_new_tokens)
    checks.check_choice("search", search, SEARCHES)
    run = {"greedy": greedy_search, "sample": sample_search, "beam": beam_search}[search]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="prompt")])
    def generate(prompt):
        batch = tf.shape(prompt)[0]
        ids = vocabulary.encode(serving.to_bucket(prompt, batch_buckets))[:, -max_prompt_length:]
        # A fixed width (one program per batch bucket); an empty prompt starts from START.
        lengths = tf.cast(ids.row_lengths(), tf.int32)
        positions = tf.range(max_prompt_length)[None, :]
        ids = ids.to_tensor(Vocabulary.PAD, shape=[None, max_prompt_length])
        ids = tf.where((lengths[:, None] == 0) & (positions == 0), Vocabulary.START, ids)
        lengths = tf.maximum(lengths, 1)
        rows = tf.shape(ids)[0]
        found = run(
            model.step,
            model.initial_state(rows),
            None,
            end_id=Vocabulary.END,
            max_length=max_new_tokens,
            prompt=ids,
            prompt_mask=positions < lengths[:, None],
            prefill_fn=model.prefill,
            **search_options,
        )
        sequences, scores = found.sequences, found.scores
        if search == "beam":  # the best hypothesis
            sequences, scores = sequences[:, 0], scores[:, 0]
        # The continuation: what follows each row's prompt (END and what comes after are dropped by decode).
        generated = tf.range(tf.shape(sequences)[1])[None, :] >= lengths[:, None]
        continuation = tf.where(generated, sequences, Vocabulary.PAD)
        return {"text": vocabulary.decode(continuation)[:batch], "score": scores[:batch]}

    return serving.save(model, export_dir, generate, vocabulary=vocabulary)
