"""The key/value cache of `MultiHeadAttention` (keras-hub's `CachedMultiHeadAttention`
convention): keys projected and rotated at their positions, written into or read from a cache
`(batch, 2, max_length, kv_heads, key_dim)`. Every Keras backend."""

from keras import ops

from keras_seqattn import checks
from keras_seqattn.ops.positions import rotate


class KeyValueCache:
    """The cache methods `MultiHeadAttention` mixes in; they read its projections (`key_dense`,
    `value_dense`) and settings (`num_key_value_heads`, `key_dim`, `value_dim`, rotary ones)."""

    def _rotate(self, x, start):
        """Rotary embeddings of projected `x` `(batch, T, heads, dim)` at positions start + t."""
        positions = ops.arange(ops.shape(x)[1], dtype="float32") + ops.cast(start, "float32")
        return rotate(x, positions, self.rope_max_wavelength, self.rope_scaling_factor)

    def compute_cache(self, value, key=None):
        """The filled cache `(batch, 2, S, num_key_value_heads, key_dim)` of `value` (and `key`,
        default `value`): its projected keys and values, computed once (an encoder output in
        cross-attention, say) and then passed as `cache` with `cache_update_index=None`."""
        if not self.built:
            raise ValueError(
                "`compute_cache` needs a built layer: call it (or `build`) first. "
                f"Received: value.shape={tuple(value.shape)} on an unbuilt layer"
            )
        key = value if key is None else key
        return ops.stack((self._project_key(key, 0), self.value_dense(value)), axis=1)

    def _keys_and_values(self, key, value, cache, cache_update_index):
        """Projected keys and values, `(batch, S, kv_heads, dim)`, and the updated cache.

        The cache `(batch, 2, max_length, kv_heads, key_dim)` holds keys and values. With
        `cache_update_index=None` it is read as it is (keys computed once, e.g. over an encoder
        output); otherwise the new keys and values are written at `cache_update_index`.
        """
        if cache is None:
            if cache_update_index is not None:
                raise ValueError(
                    "`cache_update_index` needs a `cache`. Received: cache=None, "
                    f"cache_update_index={cache_update_index}"
                )
            return self._project_key(key, 0), self.value_dense(value), None
        expected = (key.shape[0], 2, None, self.num_key_value_heads, self.key_dim)
        checks.check_rank("cache", cache, (5,))
        checks.check_mask_shape("cache", cache, expected)
        if self.value_dim != self.key_dim:
            raise ValueError(
                "A cache holds keys and values together: `value_dim` must equal `key_dim`. "
                f"Received: key_dim={self.key_dim}, value_dim={self.value_dim}"
            )
        if cache_update_index is None:
            return cache[:, 0], cache[:, 1], cache
        start = (0, cache_update_index, 0, 0)
        keys = ops.slice_update(cache[:, 0], start, ops.cast(self._project_key(key, cache_update_index), cache.dtype))
        values = ops.slice_update(cache[:, 1], start, ops.cast(self.value_dense(value), cache.dtype))
        return keys, values, ops.stack((keys, values), axis=1)

    def _project_key(self, key, start):
        """The projected keys, rotated at positions start + t with rotary embeddings."""
        projected = self.key_dense(key)
        return projected if self.rope_max_wavelength is None else self._rotate(projected, start)
