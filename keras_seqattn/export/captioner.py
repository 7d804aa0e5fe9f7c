"""Image-to-string SavedModels: encoding, cached search and detokenization in one graph, served
as `serving_default(image) -> caption, score[, attention]`."""

import tensorflow as tf

from keras_seqattn import deprecation
from keras_seqattn.export import serving


@deprecation.legacy_arguments(renamed={"return_attention": "return_attention_scores"})
def export_captioner(
    model,
    export_dir,
    target_vocabulary,
    image_shape,
    max_target_length,
    beam_width=4,
    length_penalty=0.0,
    return_attention_scores=False,
    batch_buckets=True,
    image_dtype="float32",
):
    """Write a SavedModel that captions images with `model`, and return the module saved.

    Its `serving_default` signature takes `image`, a tensor `[None, *image_shape]` of
    `image_dtype`, and returns `caption` (`tf.string`, `[None]`: the best hypothesis,
    detokenized), `score` (`float32`, `[None]`) and, with `return_attention_scores`, `attention`
    (`float32`, `[None, max_target_length, positions]`: each word's weights over the positions of
    the model's feature map, zero after the end). Batches are padded to powers of two as in
    `export_translator` (`batch_buckets`). The graph holds core TensorFlow ops only: serving it
    needs neither keras_seqattn nor Keras.

    Args:
        model: a trained captioner with `initial_state(images)` (`(batch, *image_shape)` -> the
            decoding state, e.g. a CNN then `AttentionDecoder.initial_state`) and
            `step(token_ids, state, step)`.
        export_dir: where to write the SavedModel.
        target_vocabulary: a `keras_seqattn.text.Vocabulary`; decoding starts with
            `Vocabulary.START` and ends at `Vocabulary.END`.
        image_shape: the shape of one image, e.g. `(36, 36, 3)`.
        max_target_length: tokens generated at most.
        beam_width: 1 for greedy search, else the beam width.
        length_penalty: the GNMT length penalty α of beam search.
        return_attention_scores: also return the attention weights (`return_attention=` is its
            deprecated spelling).
        batch_buckets: pad batches to powers of two; False runs each batch as it is.
        image_dtype: the dtype the signature takes (cast to the model's inputs as it is).

    Example (a stand-in for a trained captioner, which names an image's brightest colour channel):
    >>> import os, tempfile
    >>> from keras_seqattn.text import Vocabulary
    >>> vocabulary = Vocabulary(["red", "green", "blue"], split="words")
    >>> class Brightest(tf.Module):
    ...     def initial_state(self, images):
    ...         channel = tf.argmax(tf.reduce_mean(images, axis=[1, 2]), axis=-1, output_type=tf.int32)
    ...         return {"word": channel + Vocabulary.UNKNOWN + 1}
    ...     def step(self, token_ids, state, step):
    ...         token = tf.where(step == 0, state["word"], Vocabulary.END)
    ...         return tf.one_hot(token, vocabulary.size) * 10.0, state
    >>> path = os.path.join(tempfile.mkdtemp(), "brightest")
    >>> _ = export_captioner(Brightest(), path, vocabulary, image_shape=(4, 4, 3), max_target_length=3)
    >>> serve = tf.saved_model.load(path).signatures["serving_default"]
    >>> serve(image=tf.constant([[[[0.0, 0.0, 1.0]] * 4] * 4]))["caption"].numpy().tolist()
    [b'blue']
    """
    serving.check_export("export_captioner", model, target_vocabulary=target_vocabulary)
    if (
        not isinstance(image_shape, (tuple, list))
        or not image_shape
        or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in image_shape)
    ):
        raise ValueError(f"`image_shape` must be a tuple of positive ints. Received: image_shape={image_shape!r}")
    serving.check_search(max_target_length, beam_width)

    @tf.function(input_signature=[tf.TensorSpec([None, *image_shape], tf.as_dtype(image_dtype), name="image")])
    def caption(image):
        batch = tf.shape(image)[0]
        images = serving.to_bucket(image, batch_buckets)
        return serving.search_and_decode(
            model,
            model.initial_state(images),
            tf.shape(images)[0],
            target_vocabulary,
            max_target_length,
            beam_width,
            length_penalty,
            return_attention_scores,
            batch,
            "caption",
        )

    return serving.save(model, export_dir, caption, target_vocabulary=target_vocabulary)
