"""Property-based test of `MultiHeadAttention` against `keras.layers.MultiHeadAttention` with the
same weights: random shapes and ranks, attention axes, heads, head sizes, gates, output shapes,
padding and attention masks (size-1 broadcast axes included), causality and sliding windows.
Rows left with nothing to attend are compared apart: ours are zero by design. Derandomized."""

import keras
import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keras_seqattn import MultiHeadAttention

SETTINGS = settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def cases(draw):
    batch = draw(st.integers(1, 3))
    rank = draw(st.sampled_from([3, 3, 4, 5]))
    d_axes = list(range(1, rank - 1))
    # keras fails on rank-5 inputs with one attention axis (TensorFlow aborts in its softmax)
    fewest = 2 if rank == 5 else 1
    axes = (
        None
        if draw(st.booleans()) and rank == 3
        else tuple(draw(st.permutations(d_axes))[: draw(st.integers(fewest, len(d_axes)))])
    )
    attended = d_axes if axes is None else axes
    # (keras's softmax fails on some higher-rank tensors of size-1 axes, so those start at 2)
    q_dims = [draw(st.integers(1, 6) if rank == 3 else st.integers(2, 3)) for _ in d_axes]
    k_dims = [
        draw(st.integers(1, 6) if rank == 3 else st.integers(2, 3)) if a in attended else q_dims[a - 1] for a in d_axes
    ]
    # keras builds its causal mask from axis 1 whatever the attention axes: compare it there only.
    single_axis = tuple(attended) == (1,)
    return dict(
        batch=batch,
        rank=rank,
        axes=axes,
        q_dims=q_dims,
        k_dims=k_dims,
        num_heads=draw(st.integers(1, 3)),
        key_dim=draw(st.integers(1, 4)),
        value_dim=draw(st.sampled_from([None, 2, 5])),
        use_gate=draw(st.booleans()),
        output_shape=draw(st.sampled_from([None, 3, (2, 2)])),
        causal=single_axis and draw(st.booleans()),
        sliding_window=draw(st.sampled_from([None, 1, 2, 4])) if rank == 3 else None,
        padding=rank == 3 and draw(st.booleans()),
        attention_mask=draw(st.sampled_from([None, "full", "broadcast"])),
        seed=draw(st.integers(0, 2**31)),
    )


@SETTINGS
@given(cases())
def test_matches_keras_multi_head_attention(case):
    rng = np.random.default_rng(case["seed"])
    b, axes = case["batch"], case["axes"]
    query = rng.normal(size=(b, *case["q_dims"], 5)).astype("float32")
    value = rng.normal(size=(b, *case["k_dims"], 4)).astype("float32")
    init = {k: case[k] for k in ("num_heads", "key_dim", "value_dim", "use_gate", "output_shape", "sliding_window")}
    theirs = keras.layers.MultiHeadAttention(attention_axes=axes, **init)
    ours = MultiHeadAttention(attention_axes=axes, **init)
    theirs(query, value)
    ours(query, value)
    ours.set_weights(theirs.get_weights())

    attended = range(1, case["rank"] - 1) if axes is None else axes
    others = [a for a in range(1, case["rank"] - 1) if a not in attended]
    layout = (
        b,
        *[query.shape[a] for a in others],
        *[query.shape[a] for a in attended],
        *[value.shape[a] for a in attended],
    )
    kwargs, allowed = {}, np.ones(layout, bool)
    if case["attention_mask"] is not None:
        shape = layout if case["attention_mask"] == "full" else tuple(d if rng.random() < 0.5 else 1 for d in layout)
        kwargs["attention_mask"] = rng.random(shape) < 0.7
        allowed = allowed & kwargs["attention_mask"]
    their_kwargs = dict(kwargs)
    if case["padding"]:  # rank 3: (batch, T) and (batch, S)
        query_mask = rng.random(query.shape[:2]) < 0.8
        value_mask = rng.random(value.shape[:2]) < 0.8
        kwargs.update(query_mask=query_mask, value_mask=value_mask)
        # Keras takes the query mask from the query's Keras mask only; as an attention mask it is the same.
        padding = query_mask[:, :, None] & value_mask[:, None, :]
        their_kwargs.update(value_mask=value_mask, attention_mask=their_kwargs.get("attention_mask", True) & padding)
        allowed = allowed & padding
    causal = case["causal"]
    out, scores = ours(query, value, use_causal_mask=causal, return_attention_scores=True, **kwargs)
    ref_out, ref_scores = theirs(query, value, use_causal_mask=causal, return_attention_scores=True, **their_kwargs)
    assert out.shape == ref_out.shape and scores.shape == ref_scores.shape

    # Which queries have a key left: the allowed pattern with causality and the window applied.
    t_len, s_len = (
        int(np.prod(layout[1 + len(others) : 1 + len(others) + len(attended)])),
        int(np.prod(layout[-len(attended) :])),
    )
    flat = allowed.reshape(b, *layout[1 : 1 + len(others)], t_len, s_len)
    i, j = np.arange(t_len)[:, None], np.arange(s_len)[None, :]
    if causal:
        flat = flat & (j <= i)
    if case["sliding_window"]:
        flat = flat & (np.abs(i - j) < case["sliding_window"])
    live = flat.any(-1)  # (batch, o..., T)
    scores, ref_scores = np.asarray(scores), np.asarray(ref_scores)
    flat_scores = scores.reshape(b, *layout[1 : 1 + len(others)], case["num_heads"], t_len, s_len)
    flat_ref = ref_scores.reshape(flat_scores.shape)
    live_heads = np.expand_dims(live, -2)[..., None]  # (batch, o..., 1, T, 1)
    np.testing.assert_allclose(np.where(live_heads, flat_scores, 0), np.where(live_heads, flat_ref, 0), atol=1e-5)
    np.testing.assert_array_equal(np.where(live_heads, 0, flat_scores), 0)

    # Outputs: the same where a query has keys left; elsewhere ours is the output projection of zero.
    q_layout = [0, *others, *attended]
    out_t = np.transpose(np.asarray(out).reshape(*query.shape[:-1], -1), q_layout + [case["rank"] - 1])
    ref_t = np.transpose(np.asarray(ref_out).reshape(*query.shape[:-1], -1), q_layout + [case["rank"] - 1])
    out_t = out_t.reshape(*live.shape, -1)
    ref_t = ref_t.reshape(*live.shape, -1)
    np.testing.assert_allclose(out_t[live], ref_t[live], atol=1e-5)
    zero_rows = ours.output_dense(
        np.zeros((1, *([1] * (case["rank"] - 2)), case["num_heads"], case["value_dim"] or case["key_dim"]), "float32")
    )
    np.testing.assert_allclose(
        out_t[~live], np.broadcast_to(np.asarray(zero_rows).reshape(-1), out_t[~live].shape), atol=1e-6
    )
