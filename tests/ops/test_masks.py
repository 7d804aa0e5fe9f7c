import numpy as np

from keras_seqattn import ops


def test_padding_mask():
    mask = ops.padding_mask(np.array([2, 0, 3]), 3)
    np.testing.assert_array_equal(mask, [[1, 1, 0], [0, 0, 0], [1, 1, 1]])


def test_causal_mask_is_the_lower_triangle():
    np.testing.assert_array_equal(ops.causal_mask(3, 3), np.tril(np.ones((3, 3), bool)))


def test_causal_mask_with_offset_for_a_cache():
    # Two new queries at positions 3 and 4 of a 5-long cache.
    np.testing.assert_array_equal(ops.causal_mask(2, 5, offset=3), [[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]])


def test_local_window_mask_fractional_centers():
    mask = ops.local_window_mask(np.array([[0.0, 2.5]]), 6, 1)
    np.testing.assert_array_equal(mask, [[[1, 1, 0, 0, 0, 0], [0, 0, 1, 1, 0, 0]]])


def test_combine_masks_is_and_and_skips_none():
    a = np.array([[True, True, False]])
    b = np.array([[True, False, True]])
    np.testing.assert_array_equal(ops.combine_masks(a, None, b), [[True, False, False]])
    assert ops.combine_masks(None, None) is None


def test_attention_mask_merges_every_kind():
    query_mask = np.array([[True, False]])
    value_mask = np.array([[True, True, False]])
    attention = np.array([[[False, True, True], [True, True, True]]])
    merged = ops.attention_mask(query_mask, value_mask, None, attention, ops.causal_mask(2, 3))
    expected = query_mask[:, :, None] & value_mask[:, None, :] & attention & np.tril(np.ones((2, 3), bool))
    np.testing.assert_array_equal(merged, expected)


def test_attention_mask_from_a_causal_mask_alone_keeps_its_query_axis():
    merged = ops.attention_mask(causal=ops.causal_mask(2, 4, offset=1))
    np.testing.assert_array_equal(merged, [[[1, 1, 0, 0], [1, 1, 1, 0]]])
