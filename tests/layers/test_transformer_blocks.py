import keras
import keras_hub
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import TransformerDecoder, TransformerEncoder
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
X = RNG.normal(size=(4, 6, 8)).astype("float32")
ENCODED = RNG.normal(size=(4, 5, 8)).astype("float32")
PAD = np.arange(6)[None] < np.array([6, 4, 2, 5])[:, None]
ENCODER_PAD = np.arange(5)[None] < np.array([5, 3, 4, 2])[:, None]
ATTENTION = RNG.random((4, 6, 6)) > 0.3
ATTENTION[:, :, 0] = True


def _paths(layer):
    return [w.path.split("/", 1)[1] for w in layer.weights]


def test_encoder_harness(tmp_path):
    run_layer_test(
        TransformerEncoder,
        dict(intermediate_dim=16, num_heads=2, dropout=0.1),
        dict(inputs=X, padding_mask=PAD),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 6, 8),
    )


def test_decoder_harness(tmp_path):
    run_layer_test(
        TransformerDecoder,
        dict(intermediate_dim=16, num_heads=2, normalize_first=True),
        dict(decoder_sequence=X, encoder_sequence=ENCODED, encoder_padding_mask=ENCODER_PAD),
        tmp_path=str(tmp_path),
        expected_output_shape=(4, 6, 8),
    )


@pytest.mark.parametrize("normalize_first", [False, True])
def test_encoder_drop_in_for_keras_hub(normalize_first):
    theirs = keras_hub.layers.TransformerEncoder(16, 2, activation="gelu", normalize_first=normalize_first)
    ours = TransformerEncoder(16, 2, activation="gelu", normalize_first=normalize_first)
    theirs(X)
    ours(X)
    assert _paths(ours) == _paths(theirs)
    ours.set_weights(theirs.get_weights())
    ref = np.asarray(theirs(X, padding_mask=PAD, attention_mask=ATTENTION))
    out, scores = ours(X, padding_mask=PAD, attention_mask=ATTENTION, return_attention_scores=True)
    np.testing.assert_allclose(np.asarray(out)[PAD], ref[PAD], atol=1e-5)
    assert scores.shape == (4, 2, 6, 6)
    np.testing.assert_array_equal(np.asarray(scores)[~np.broadcast_to(PAD[:, None, None, :], scores.shape)], 0.0)


@pytest.mark.parametrize("normalize_first", [False, True])
@pytest.mark.parametrize("cross", [False, True])
def test_decoder_drop_in_for_keras_hub(normalize_first, cross):
    theirs = keras_hub.layers.TransformerDecoder(16, 2, normalize_first=normalize_first)
    ours = TransformerDecoder(16, 2, normalize_first=normalize_first)
    args = (X, ENCODED) if cross else (X,)
    theirs(*args)
    ours(*args)
    assert _paths(ours) == _paths(theirs)
    ours.set_weights(theirs.get_weights())
    masks = dict(decoder_padding_mask=PAD, decoder_attention_mask=ATTENTION)
    if cross:
        masks.update(encoder_padding_mask=ENCODER_PAD)
    ref = np.asarray(theirs(*args, **masks))
    out = np.asarray(ours(*args, **masks))
    np.testing.assert_allclose(out[PAD], ref[PAD], atol=1e-5)


def test_cached_decode_equals_full_call_and_keras_hub_and_returns_scores():
    theirs = keras_hub.layers.TransformerDecoder(16, 2)
    ours = TransformerDecoder(16, 2)
    theirs(X, ENCODED)
    ours(X, ENCODED)
    ours.set_weights(theirs.get_weights())
    full, full_self, full_cross = ours(X, ENCODED, return_attention_scores=True)
    caches = [np.zeros((4, 2, 6, 2, 4), "float32"), np.zeros((4, 2, 5, 2, 4), "float32")]
    hub_caches = list(caches)
    for t in range(6):
        cross_index = 0 if t == 0 else None
        out, self_cache, cross_cache, self_scores, cross_scores = ours(
            X[:, t : t + 1],
            ENCODED,
            self_attention_cache=caches[0],
            self_attention_cache_update_index=t,
            cross_attention_cache=caches[1],
            cross_attention_cache_update_index=cross_index,
            return_attention_scores=True,
        )
        ref, *hub_caches = theirs(
            X[:, t : t + 1],
            ENCODED,
            self_attention_cache=hub_caches[0],
            self_attention_cache_update_index=t,
            cross_attention_cache=hub_caches[1],
            cross_attention_cache_update_index=cross_index,
        )
        caches = [self_cache, cross_cache]
        np.testing.assert_allclose(out, full[:, t : t + 1], atol=1e-5)
        np.testing.assert_allclose(out, ref, atol=1e-5)
        np.testing.assert_allclose(self_scores, full_self[:, :, t : t + 1], atol=1e-6)
        np.testing.assert_allclose(cross_scores, full_cross[:, :, t : t + 1], atol=1e-6)


def test_compute_cross_attention_cache_serves_every_step():
    decoder = TransformerDecoder(16, 2)
    with pytest.raises(ValueError, match="compute_cross_attention_cache"):
        decoder.compute_cross_attention_cache(ENCODED)
    full = decoder(X, ENCODED)
    cross = decoder.compute_cross_attention_cache(ENCODED)
    self_cache = np.zeros((4, 2, 6, 2, 4), "float32")
    for t in range(6):
        out, self_cache, same = decoder(
            X[:, t : t + 1],
            ENCODED,
            self_attention_cache=self_cache,
            self_attention_cache_update_index=t,
            cross_attention_cache=cross,
        )
        np.testing.assert_allclose(out, full[:, t : t + 1], atol=1e-5)
        np.testing.assert_array_equal(same, cross)


def test_decoder_causality_proven_by_gradients():
    decoder = TransformerDecoder(16, 2)
    inputs = tf.constant(X)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(inputs)
        out = decoder(inputs, ENCODED)
        totals = [tf.reduce_sum(out[:, i]) for i in range(6)]
    for i, total in enumerate(totals):
        grad = np.abs(np.asarray(tape.gradient(total, inputs))).sum(axis=(0, 2))
        assert np.all(grad[i + 1 :] == 0) and np.all(grad[: i + 1] > 0), (i, grad)


def test_implicit_mask_is_the_padding_mask():
    tokens = np.array([[1, 2, 3, 0], [4, 5, 0, 0]])
    embed = keras.layers.Embedding(8, 8, mask_zero=True)
    encoder = TransformerEncoder(16, 2)
    implicit = np.asarray(encoder(embed(tokens)))
    explicit = np.asarray(encoder(embed(tokens), padding_mask=tokens > 0))
    np.testing.assert_allclose(implicit, explicit, atol=1e-6)
    unmasked = np.asarray(encoder(np.asarray(embed(tokens))))
    assert np.abs(unmasked[0, :3] - implicit[0, :3]).max() > 1e-3


@pytest.mark.parametrize(
    "cls, init, call, argument",
    [
        (TransformerEncoder, dict(intermediate_dim=0, num_heads=2), None, "intermediate_dim"),
        (TransformerEncoder, dict(intermediate_dim=8, num_heads=0), None, "num_heads"),
        (TransformerEncoder, dict(intermediate_dim=8, num_heads=2, dropout=2.0), None, "dropout"),
        (TransformerEncoder, dict(intermediate_dim=8, num_heads=3), dict(inputs=X), "num_heads"),
        (TransformerEncoder, dict(intermediate_dim=8, num_heads=2), dict(inputs=X[0]), "inputs"),
        (TransformerEncoder, dict(intermediate_dim=8, num_heads=2), dict(inputs=X, padding_mask=PAD[:, :5]), "mask"),
        (
            TransformerDecoder,
            dict(intermediate_dim=8, num_heads=2),
            dict(decoder_sequence=X, encoder_sequence=ENCODED[:2]),
            "batch size",
        ),
        (
            TransformerDecoder,
            dict(intermediate_dim=8, num_heads=2),
            dict(decoder_sequence=X, decoder_attention_mask=ATTENTION[:, :, :5]),
            "attention_mask",
        ),
    ],
)
def test_bad_input(cls, init, call, argument):
    with pytest.raises(ValueError, match=argument):
        cls(**init)(**call)


def test_decoder_cannot_drop_its_encoder_sequence():
    decoder = TransformerDecoder(8, 2)
    decoder(X, ENCODED)
    with pytest.raises(ValueError, match="encoder_sequence"):
        decoder(X)


@pytest.mark.parametrize("policy", ["float32", "mixed_float16", "mixed_bfloat16"])
def test_output_shapes_and_specs_match_the_call(policy):
    keras.config.set_dtype_policy(policy)
    x, source = keras.random.normal((2, 6, 8)), keras.random.normal((2, 5, 8))
    encoder, decoder = TransformerEncoder(16, 2), TransformerDecoder(16, 2)
    assert encoder.compute_output_shape((2, 6, 8)) == (2, 6, 8)
    assert decoder.compute_output_shape((2, 6, 8), (2, 5, 8)) == (2, 6, 8)
    symbolic = keras.KerasTensor((2, 6, 8)), keras.KerasTensor((2, 5, 8))  # float32 inputs
    cache = keras.KerasTensor((2, 2, 9, 2, 4))
    for layer, spec_args, spec_kwargs, call_args, call_kwargs in [
        (encoder, symbolic[:1], {}, (x,), {}),
        (decoder, symbolic, {}, (x, source), {}),
        (
            decoder,
            symbolic,
            dict(self_attention_cache=cache, cross_attention_cache=keras.KerasTensor((2, 2, 5, 2, 4))),
            (x, source),
            dict(
                self_attention_cache=keras.ops.zeros((2, 2, 9, 2, 4)),
                self_attention_cache_update_index=0,
                cross_attention_cache=keras.ops.zeros((2, 2, 5, 2, 4)),
                cross_attention_cache_update_index=0,
            ),
        ),
    ]:
        for scores in (False, True):
            specs = layer.compute_output_spec(*spec_args, return_attention_scores=scores, **spec_kwargs)
            outputs = layer(*call_args, return_attention_scores=scores, **call_kwargs)
            specs, outputs = (v if isinstance(v, tuple) else (v,) for v in (specs, outputs))
            assert [tuple(s.shape) for s in specs] == [tuple(o.shape) for o in outputs]
            assert specs[0].dtype == outputs[0].dtype == layer.compute_dtype
