import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_seqattn import BahdanauAttention, LuongAttention
from keras_seqattn.decoding import beam_search, greedy_search, sample_search
from keras_seqattn.seq2seq import AttentionDecoder
from tests import reference
from tests.harness import run_layer_test

RNG = np.random.default_rng(0)
VOCAB, EMBED, HIDDEN, MEMORY = 11, 5, 6, 4
TARGET = RNG.integers(0, VOCAB, size=(3, 5)).astype("int32")
ENCODED = RNG.normal(size=(3, 7, MEMORY)).astype("float32")
ENCODER_MASK = np.arange(7)[None, :] < np.array([7, 4, 1])[:, None]
STATE = RNG.normal(size=(3, HIDDEN)).astype("float32")


def _decoder(cell=None, attention=None, **kwargs):
    return AttentionDecoder(
        cell or keras.layers.GRUCell(HIDDEN),
        attention or BahdanauAttention(8),
        vocabulary_size=VOCAB,
        embedding_dim=EMBED,
        **kwargs,
    )


@pytest.mark.parametrize("style", ["bahdanau", "luong"])
def test_harness(style, tmp_path):
    kwargs = dict(
        cell=keras.layers.GRUCell(HIDDEN),
        attention=BahdanauAttention(8),
        vocabulary_size=VOCAB,
        embedding_dim=EMBED,
        attention_style=style,
    )
    if style == "luong":
        kwargs.update(
            cell=keras.layers.LSTMCell(HIDDEN), attention=LuongAttention("general"), attention_layer_size=HIDDEN
        )
    inputs = dict(target_ids=TARGET, encoder_outputs=ENCODED)
    if style == "bahdanau":
        inputs["encoder_state"] = STATE
    run_layer_test(AttentionDecoder, kwargs, inputs, tmp_path=str(tmp_path), expected_output_shape=(3, 5, VOCAB))


# NumPy reference of the decoder, written from the equations of the class docstring (which for
# the Luong style are those of tensorflow-addons' AttentionWrapper) with a SimpleRNNCell,
# h = tanh(x W + h U + b), so that every product is checked.


def _np(v):
    return np.asarray(v, np.float64)


def _reference_attention(attention, query, memory, mask):
    if isinstance(attention, BahdanauAttention):
        v, bias = _np(attention.attention_v), None
        if attention.normalize:
            v, bias = _np(attention.attention_g) * v / np.linalg.norm(v), _np(attention.attention_b)
        scores = reference.additive_scores(
            query[:, None] @ _np(attention.query_kernel), memory @ _np(attention.key_kernel), v, bias
        )[:, 0]
    else:  # Luong "general": qᵀ W_a h, times g with scale
        scores = np.einsum("bd,bsd->bs", query, memory @ _np(attention.key_kernel))
        if attention.scale:
            scores = scores * _np(attention.attention_g)
    weights = reference.softmax(scores, mask)
    return np.einsum("bs,bsd->bd", weights, memory), weights


def _reference_decoder(decoder, target, memory, mask, h0):
    cell = decoder.cell
    kernel, recurrent, bias = _np(cell.kernel), _np(cell.recurrent_kernel), _np(cell.bias)
    activation = decoder.attention_activation
    bahdanau = decoder.attention_style == "bahdanau"
    h = _np(h0)
    feed = h if bahdanau else np.zeros((len(target), decoder._vector_size))
    all_logits, all_weights = [], []
    for t in range(target.shape[1]):
        x = _np(decoder.embedding.embeddings)[target[:, t]]
        if bahdanau:
            context, weights = _reference_attention(decoder.attention, h, memory, mask)
            h = np.tanh(np.concatenate([x, context], -1) @ kernel + h @ recurrent + bias)
        else:
            h = np.tanh(np.concatenate([x, feed], -1) @ kernel + h @ recurrent + bias)
            context, weights = _reference_attention(decoder.attention, h, memory, mask)
        both = np.concatenate([h, context], -1)
        if decoder.attention_layer_size is not None:
            vector = _np(activation(both @ _np(decoder.attention_projection.kernel)))
        else:
            vector = both if bahdanau else context
        out = vector if decoder.output_attention else h
        all_logits.append(out @ _np(decoder.output_projection.kernel) + _np(decoder.output_projection.bias))
        all_weights.append(weights)
        feed = h if bahdanau else vector
    return np.stack(all_logits, 1), np.stack(all_weights, 1)


CONFIGURATIONS = {
    # Bahdanau et al.: query from the previous state, logits read [h; c].
    "bahdanau": dict(style="bahdanau", attention=lambda: BahdanauAttention(8)),
    "bahdanau-normalized-projected": dict(
        style="bahdanau", attention=lambda: BahdanauAttention(8, normalize=True), attention_layer_size=7
    ),
    # Luong et al.'s h̃ = tanh(W_c[h; c]) with input feeding.
    "luong-tanh": dict(style="luong", attention=lambda: LuongAttention("general", scale=True), attention_layer_size=7),
    # tfa AttentionWrapper(cell, LuongAttention(scale=True), attention_layer_size=7): a linear W_c.
    "tfa-luong-layer": dict(
        style="luong",
        attention=lambda: LuongAttention("general", scale=True),
        attention_layer_size=7,
        attention_activation=None,
    ),
    # tfa AttentionWrapper(cell, BahdanauAttention(normalize=True), attention_layer_size=7).
    "tfa-bahdanau-layer": dict(
        style="luong",
        attention=lambda: BahdanauAttention(8, normalize=True),
        attention_layer_size=7,
        attention_activation=None,
    ),
    # tfa AttentionWrapper(cell, LuongAttention(), output_attention=False): the context is fed,
    # the cell output emitted.
    "tfa-luong-context": dict(style="luong", attention=lambda: LuongAttention("general"), output_attention=False),
}


@pytest.mark.parametrize("name", sorted(CONFIGURATIONS))
def test_numerics_against_numpy(name):
    config = dict(CONFIGURATIONS[name])
    style, attention = config.pop("style"), config.pop("attention")()
    decoder = _decoder(keras.layers.SimpleRNNCell(HIDDEN), attention, attention_style=style, **config)
    decoder(TARGET, ENCODED, encoder_state=STATE)
    for v in decoder.weights:  # move every weight (g, b, biases) away from its initial value
        v.assign(RNG.normal(size=v.shape).astype("float32") * 0.5)
    logits, alignments = decoder(
        TARGET, ENCODED, encoder_state=STATE, encoder_mask=ENCODER_MASK, return_attention_scores=True
    )
    ref_logits, ref_alignments = _reference_decoder(decoder, TARGET, ENCODED, ENCODER_MASK, STATE)
    np.testing.assert_allclose(alignments, ref_alignments, atol=1e-5)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("style", ["bahdanau", "luong"])
@pytest.mark.parametrize("cell", ["gru", "lstm", "stacked"])
def test_steps_equal_the_teacher_forced_call(style, cell):
    cell = {
        "gru": lambda: keras.layers.GRUCell(HIDDEN),
        "lstm": lambda: keras.layers.LSTMCell(HIDDEN),
        "stacked": lambda: keras.layers.StackedRNNCells([keras.layers.GRUCell(HIDDEN), keras.layers.LSTMCell(HIDDEN)]),
    }[cell]()
    decoder = _decoder(cell, LuongAttention("concat"), attention_style=style, attention_layer_size=7)
    logits, alignments = decoder(TARGET, ENCODED, encoder_mask=ENCODER_MASK, return_attention_scores=True)
    state = decoder.initial_state(tf.constant(ENCODED), encoder_mask=tf.constant(ENCODER_MASK))
    for t in range(TARGET.shape[1]):
        step_logits, state = decoder.step(tf.constant(TARGET[:, t]), state, t)
        np.testing.assert_allclose(step_logits, logits[:, t], atol=1e-5)
        np.testing.assert_allclose(state["attention"], alignments[:, t], atol=1e-6)


def test_encoder_padding_is_never_attended_and_changes_nothing():
    decoder = _decoder()
    logits, alignments = decoder(TARGET, ENCODED, encoder_mask=ENCODER_MASK, return_attention_scores=True)
    assert np.all(np.asarray(alignments)[~np.broadcast_to(ENCODER_MASK[:, None], alignments.shape)] == 0)
    np.testing.assert_allclose(np.asarray(alignments).sum(-1), 1.0, atol=1e-6)
    noisy = np.where(ENCODER_MASK[..., None], ENCODED, 1e3).astype("float32")
    np.testing.assert_allclose(decoder(TARGET, noisy, encoder_mask=ENCODER_MASK), logits, atol=1e-5)


def test_the_keras_mask_of_a_bidirectional_encoder_is_honoured():
    source = np.array([[3, 4, 5, 0, 0], [6, 7, 0, 0, 0]], "int32")
    ids = keras.Input((None,), dtype="int32")
    target = keras.Input((None,), dtype="int32")
    encoded = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True))(
        keras.layers.Embedding(10, 4, mask_zero=True)(ids)
    )
    decoder = _decoder()
    logits, alignments = decoder(target, encoded, return_attention_scores=True)
    model = keras.Model([ids, target], [logits, alignments])
    logits, alignments = model([source, TARGET[:2]])
    assert np.all(np.asarray(alignments)[:, :, 3:] == 0) and np.all(np.asarray(alignments)[1, :, 2:] == 0)
    np.testing.assert_allclose(np.asarray(alignments).sum(-1), 1.0, atol=1e-6)


def test_scheduled_sampling():
    decoder = _decoder(sampling_probability=1.0, seed=3)
    teacher = decoder(TARGET, ENCODED)
    np.testing.assert_array_equal(decoder(TARGET, ENCODED, training=False), teacher)
    # With probability 1 every step after the first reads the model's own sample: the true
    # tokens after the first change nothing.
    changed = TARGET.copy()
    changed[:, 1:] = (changed[:, 1:] + 1) % VOCAB
    seed_state = decoder.seed_generator.state.numpy()
    first = decoder(TARGET, ENCODED, training=True)
    decoder.seed_generator.state.assign(seed_state)  # the same draws again
    np.testing.assert_allclose(decoder(changed, ENCODED, training=True), first, atol=1e-6)
    np.testing.assert_allclose(first[:, 0], teacher[:, 0], atol=1e-6)
    assert not np.allclose(first[:, 1:], teacher[:, 1:], atol=1e-3)
    # With probability 0 training equals teacher forcing.
    never = _decoder(sampling_probability=0.0)
    never(TARGET, ENCODED)
    np.testing.assert_allclose(never(TARGET, ENCODED, training=True), never(TARGET, ENCODED), atol=1e-6)


class Seq2Seq(keras.Model):
    """A subclassed encoder-decoder, built inside `fit` (as the date example)."""

    def __init__(self, cell):
        super().__init__()
        self.encoder = keras.layers.Bidirectional(keras.layers.GRU(4, return_sequences=True, return_state=True))
        self.bridge = keras.layers.Dense(HIDDEN, activation="tanh")
        self.decoder = _decoder(cell)

    def call(self, inputs, training=None):
        target, encoded = inputs
        outputs, _, backward = self.encoder(encoded)
        return self.decoder(target, outputs, encoder_state=self.bridge(backward), training=training)


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_fit_trains_every_weight(dropout):
    cell = keras.layers.GRUCell(HIDDEN, dropout=dropout, recurrent_dropout=dropout)
    model = Seq2Seq(cell)
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), jit_compile=True)
    data = tf.data.Dataset.from_tensor_slices(((TARGET, ENCODED), TARGET)).batch(3)
    before = []  # the weights once fit has built the model
    record = keras.callbacks.LambdaCallback(
        on_train_begin=lambda logs: before.extend(w.numpy().copy() for w in model.trainable_weights)
    )
    losses = model.fit(data, epochs=3, verbose=0, callbacks=[record]).history["loss"]
    assert np.all(np.isfinite(losses)) and (dropout or losses[-1] < losses[0])
    unchanged = [w.path for b, w in zip(before, model.trainable_weights) if np.array_equal(b, w.numpy())]
    assert not unchanged
    # The trained model computes with its current weights (no stale copy kept in a trace).
    evaluated = model.evaluate(data, verbose=0)
    np.testing.assert_allclose(
        evaluated,
        float(keras.losses.SparseCategoricalCrossentropy(from_logits=True)(TARGET, model((TARGET, ENCODED)))),
        rtol=1e-5,
    )
    if dropout:
        first, second = model((TARGET, ENCODED), training=True), model((TARGET, ENCODED), training=True)
        assert not np.allclose(first, second)  # dropout is on while training
        np.testing.assert_allclose(model((TARGET, ENCODED)), model((TARGET, ENCODED)))


def test_the_teacher_forced_training_step_compiles_to_one_xla_loop_each_way():
    decoder = _decoder()
    decoder(TARGET, ENCODED)

    @tf.function(jit_compile=True)
    def train_step(target, encoded):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(decoder(target, encoded)))
        return tape.gradient(loss, decoder.trainable_weights)

    hlo = train_step.experimental_get_compiler_ir(tf.constant(TARGET), tf.constant(ENCODED))(stage="hlo")
    whiles = [line for line in hlo.splitlines() if " while(" in line]
    assert len(whiles) == 2, whiles  # the forward loop over the target and its gradient loop
    assert all(g is not None for g in train_step(tf.constant(TARGET), tf.constant(ENCODED)))


@pytest.mark.parametrize("style", ["bahdanau", "luong"])
def test_plugs_into_greedy_sampling_and_beam_search(style):
    decoder = _decoder(attention_style=style, attention_layer_size=7)
    decoder(TARGET, ENCODED)
    state = decoder.initial_state(tf.constant(ENCODED), tf.constant(STATE), tf.constant(ENCODER_MASK))
    start = tf.constant([1, 1, 1])
    sequences, scores, alignments = greedy_search(
        decoder.step, state, start, end_id=2, max_length=6, return_attention_scores=True
    )
    sampled = sample_search(decoder.step, state, start, end_id=2, max_length=6, seed=3, return_attention_scores=True)
    # Teacher-forcing the greedy or sampled output reproduces its alignments and its scores.
    for searched, searched_scores, searched_alignments in ((sequences, scores, alignments), sampled):
        inputs = np.concatenate([np.ones((3, 1), "int32"), searched.numpy()[:, :-1]], 1)
        logits, forced = decoder(
            inputs, ENCODED, encoder_state=STATE, encoder_mask=ENCODER_MASK, return_attention_scores=True
        )
        log_probs = tf.nn.log_softmax(logits).numpy()
        for row in range(3):
            tokens = list(searched.numpy()[row])
            length = tokens.index(2) + 1 if 2 in tokens else len(tokens)
            np.testing.assert_allclose(searched_alignments[row, :length], forced[row, :length], atol=1e-5)
            total = sum(log_probs[row, t, tokens[t]] for t in range(length))
            np.testing.assert_allclose(searched_scores[row], total, rtol=1e-5)
    beams, beam_scores, beam_alignments = beam_search(
        decoder.step, state, start, end_id=2, beam_width=3, max_length=6, return_attention_scores=True
    )
    assert beams.shape == (3, 3, 6) and beam_alignments.shape == (3, 3, 6, 7)
    assert np.all(np.asarray(beam_scores)[:, 0] >= np.asarray(scores) - 1e-5)
    assert np.all(
        np.asarray(beam_alignments)[:, :, :, 1:][~ENCODER_MASK[:, None, None, 1:].repeat(3, 1).repeat(6, 2)] == 0
    )


@pytest.mark.parametrize(
    "init, argument",
    [
        (dict(cell="gru"), "cell"),
        (dict(attention=keras.layers.Dense(3)), "attention"),
        (dict(vocabulary_size=0), "vocabulary_size"),
        (dict(embedding_dim=2.5), "embedding_dim"),
        (dict(attention_style="bahdanu"), "attention_style"),
        (dict(attention_layer_size=-1), "attention_layer_size"),
        (dict(sampling_probability=1.5), "sampling_probability"),
    ],
)
def test_bad_arguments(init, argument):
    kwargs = dict(
        cell=keras.layers.GRUCell(HIDDEN), attention=BahdanauAttention(8), vocabulary_size=VOCAB, embedding_dim=EMBED
    )
    with pytest.raises(ValueError, match=argument):
        AttentionDecoder(**{**kwargs, **init})


@pytest.mark.parametrize(
    "call, argument",
    [
        (dict(target_ids=TARGET[0]), "target_ids"),
        (dict(encoder_outputs=ENCODED[0]), "encoder_outputs"),
        (dict(encoder_mask=ENCODER_MASK[:, :3]), "encoder_mask"),
        (dict(encoder_state=np.zeros((3, HIDDEN + 1), "float32")), "encoder_state"),
        (dict(target_ids=TARGET[:2]), "target_ids"),
    ],
)
def test_bad_input(call, argument):
    decoder = _decoder()
    with pytest.raises(ValueError, match=argument):
        decoder(**{**dict(target_ids=TARGET, encoder_outputs=ENCODED), **call})


def test_initial_state_before_build_raises():
    with pytest.raises(ValueError, match="built"):
        _decoder().initial_state(tf.constant(ENCODED))


def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _reference_gru(cell, x, h):  # keras's GRUCell, reset_after=True
    bias = _np(cell.bias)
    x_z, x_r, x_h = np.split(x @ _np(cell.kernel) + bias[0], 3, -1)
    r_z, r_r, r_h = np.split(h @ _np(cell.recurrent_kernel) + bias[1], 3, -1)
    z, r = _sigmoid(x_z + r_z), _sigmoid(x_r + r_r)
    return z * h + (1 - z) * np.tanh(x_h + r * r_h)


def _reference_lstm(cell, x, h, c):
    i, f, g, o = np.split(x @ _np(cell.kernel) + h @ _np(cell.recurrent_kernel) + _np(cell.bias), 4, -1)
    c = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c), c


def test_stacked_cells_take_the_first_query_from_the_top_cell():
    # Bahdanau style over GRU -> LSTM: the first query is the top (LSTM) cell's hidden state.
    cell = keras.layers.StackedRNNCells([keras.layers.GRUCell(HIDDEN), keras.layers.LSTMCell(HIDDEN)])
    decoder = _decoder(cell, BahdanauAttention(8))
    bottom, top_h, top_c = (RNG.normal(size=(3, HIDDEN)).astype("float32") for _ in range(3))
    encoder_state = [tf.constant(bottom), [tf.constant(top_h), tf.constant(top_c)]]
    decoder(TARGET, ENCODED, encoder_state=encoder_state)
    for v in decoder.weights:
        v.assign(RNG.normal(size=v.shape).astype("float32") * 0.5)
    logits, alignments = decoder(
        TARGET, ENCODED, encoder_state=encoder_state, encoder_mask=ENCODER_MASK, return_attention_scores=True
    )
    gru, lstm = cell.cells
    h1, h2, c2 = _np(bottom), _np(top_h), _np(top_c)
    expected_logits, expected_weights = [], []
    for t in range(TARGET.shape[1]):
        x = _np(decoder.embedding.embeddings)[TARGET[:, t]]
        context, weights = _reference_attention(decoder.attention, h2, _np(ENCODED), ENCODER_MASK)
        h1 = _reference_gru(gru, np.concatenate([x, context], -1), h1)
        h2, c2 = _reference_lstm(lstm, h1, h2, c2)
        vector = np.concatenate([h2, context], -1)
        expected_logits.append(vector @ _np(decoder.output_projection.kernel) + _np(decoder.output_projection.bias))
        expected_weights.append(weights)
    np.testing.assert_allclose(alignments, np.stack(expected_weights, 1), atol=1e-5)
    np.testing.assert_allclose(logits, np.stack(expected_logits, 1), rtol=1e-4, atol=1e-4)


class _DotAttention(keras.layers.Layer):
    """A user's own attention layer with the protocol AttentionDecoder relies on: `project_key`,
    and `call(query, value, value_mask, projected_key, return_attention_scores, training)`; it
    takes `query_offset` too, so the decoder passes it the step."""

    offsets = []

    def build(self, query_shape, value_shape):
        self.kernel = self.add_weight(shape=(value_shape[-1], query_shape[-1]), name="kernel")

    def project_key(self, key):
        return keras.ops.matmul(key, self.kernel)

    def call(
        self,
        query,
        value,
        value_mask=None,
        projected_key=None,
        return_attention_scores=False,
        training=None,
        query_offset=0,
    ):
        self.offsets.append(query_offset)
        scores = keras.ops.einsum("bd,bsd->bs", query, projected_key)
        weights = keras.ops.where(value_mask, keras.ops.softmax(keras.ops.where(value_mask, scores, -1e9)), 0.0)
        context = keras.ops.einsum("bs,bsd->bd", weights, value)
        return (context, weights) if return_attention_scores else context


def test_any_attention_layer_with_the_protocol_plugs_in():
    decoder = _decoder(keras.layers.GRUCell(HIDDEN), _DotAttention())
    logits, alignments = decoder(TARGET, ENCODED, encoder_mask=ENCODER_MASK, return_attention_scores=True)
    assert logits.shape == (3, 5, VOCAB) and np.all(
        np.asarray(alignments)[~np.broadcast_to(ENCODER_MASK[:, None], alignments.shape)] == 0
    )
    state = decoder.initial_state(tf.constant(ENCODED), encoder_mask=tf.constant(ENCODER_MASK))
    _DotAttention.offsets.clear()
    sequences, _ = greedy_search(decoder.step, state, tf.constant([1, 2, 3]), end_id=0, max_length=4, jit_compile=False)
    assert sequences.shape == (3, 4)
    assert _DotAttention.offsets  # it received the step as its query offset
