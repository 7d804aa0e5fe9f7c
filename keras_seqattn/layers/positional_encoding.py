import keras

from keras_seqattn import checks
from keras_seqattn.ops.positions import add_learned_encoding, add_sinusoidal_encoding

MODES = ("sinusoidal", "learned")


@keras.saving.register_keras_serializable(package="keras_seqattn")
class PositionalEncoding(keras.layers.Layer):
    """Adds position information to a sequence of vectors (Vaswani et al., 2017, section 3.5).

    sinusoidal:  PE(pos, 2i) = sin(pos / max_wavelength^(2i/d)),  PE(pos, 2i+1) = cos(pos / max_wavelength^(2i/d))
    learned:     PE(pos) = row pos of a trained `(max_length, d)` table
    output = inputs + PE(start_index + t) for t = 0 ... T-1

    Args:
        mode: "sinusoidal" (any length) or "learned" (up to `max_length`).
        max_length: the longest sequence; required by "learned", optional (a check) otherwise.
        max_wavelength: the longest wavelength of the sinusoids.
        initializer: initializer of the learned table.

    Call arguments:
        inputs: `(batch, T, d)`; its Keras mask passes through.
        start_index: position of the first step (int or scalar tensor), for step-by-step decoding.

    Example:
    >>> embedded = keras.layers.Embedding(100, 16)(keras.ops.ones((2, 9), "int32"))
    >>> PositionalEncoding()(embedded).shape
    TensorShape([2, 9, 16])

    Reference: Vaswani et al., "Attention Is All You Need", NeurIPS 2017, section 3.5.
    """

    def __init__(
        self, mode="sinusoidal", max_length=None, max_wavelength=10000, initializer="glorot_uniform", **kwargs
    ):
        super().__init__(**kwargs)
        checks.check_choice("mode", mode, MODES)
        checks.check_positive_int("max_length", max_length, allow_none=mode == "sinusoidal")
        checks.check_number("max_wavelength", max_wavelength, 0, strict=True)
        self.mode = mode
        self.max_length = max_length
        self.max_wavelength = max_wavelength
        self.initializer = keras.initializers.get(initializer)
        self.supports_masking = True

    def build(self, inputs_shape):
        if self.mode == "learned":
            self.position_embeddings = self.add_weight(
                name="position_embeddings", shape=(self.max_length, inputs_shape[-1]), initializer=self.initializer
            )

    def _check_length(self, inputs_shape, start_index):
        checks.check_shape_rank("inputs", inputs_shape, (3,))
        length = inputs_shape[1]
        if self.max_length is not None and length is not None and isinstance(start_index, int):
            if start_index + length > self.max_length:
                raise ValueError(
                    f"The sequence is longer than `max_length={self.max_length}`. Received: "
                    f"inputs.shape={tuple(inputs_shape)}, start_index={start_index}"
                )

    def call(self, inputs, start_index=0):
        self._check_length(inputs.shape, start_index)
        if self.mode == "learned":
            return add_learned_encoding(inputs, self.position_embeddings, start_index)
        return add_sinusoidal_encoding(inputs, start_index, self.max_wavelength)

    def compute_output_shape(self, inputs_shape):
        # Keras builds functional models from this method alone, without `call`: check here too
        # (Keras passes it shapes only, so from position 0).
        self._check_length(inputs_shape, 0)
        return inputs_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            mode=self.mode,
            max_length=self.max_length,
            max_wavelength=self.max_wavelength,
            initializer=keras.initializers.serialize(self.initializer),
        )
        return config
