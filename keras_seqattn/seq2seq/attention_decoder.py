"""The attention decoder around any Keras RNN cell. TensorFlow only: its teacher-forced pass is a
`tf.while_loop` (on other backends the constructor raises a ValueError naming the backend)."""

import inspect

import keras
import tensorflow as tf
from keras import ops

from keras_seqattn import checks, deprecation
from keras_seqattn.ops import hard, masks
from keras_seqattn.ops.axes import flatten_feature_map
from keras_seqattn.seq2seq import cells

STYLES = ("bahdanau", "luong")


@keras.saving.register_keras_serializable(package="keras_seqattn")
class AttentionDecoder(keras.layers.Layer):
    """An RNN decoder with attention over the encoder outputs, around any Keras RNN cell.

    At target step t, with y_{t-1} the previous token, E its embedding, h the cell output and
    c_t = Σ_s α_t(s) h̄_s the context over the encoder outputs h̄ (α from `attention`):

    Bahdanau style (Bahdanau et al., 2015): the query is the previous cell output,
        c_t, α_t = attention(h_{t-1}, h̄);  h_t = cell([E y_{t-1}; c_t], state)
    Luong style (Luong et al., 2015, with input feeding): the query is the current cell output,
        h_t = cell([E y_{t-1}; a_{t-1}], state);  c_t, α_t = attention(h_t, h̄)
    then the attention vector a_t and the output o_t that the vocabulary projection reads:
        a_t = act(W_c [h_t; c_t])   with `attention_layer_size` (W_c has no bias),
              c_t                    without it, Luong style,
              [h_t; c_t]             without it, Bahdanau style;
        o_t = a_t if `output_attention` else h_t;   logits_t = W_o o_t + b_o.
    Luong et al.'s attentional state h̃_t = tanh(W_c[c_t; h_t]) is Luong style with
    `attention_layer_size` set (W_c's rows are ordered [h; c], as in tensorflow-addons'
    AttentionWrapper, whose `attention_layer_size` is this one with `attention_activation=None`).
    The first query of the Bahdanau style is the top cell's hidden state in the initial state (the
    first tensor of its state); the first fed attention vector of the Luong style is zero.

    Args:
        cell: any Keras RNN cell (`GRUCell`, `LSTMCell`, `StackedRNNCells`, ...): `cell(inputs,
            states, training=...)` returning `(output, new_states)`, with `output_size`.
        attention: `BahdanauAttention`, `LuongAttention` or a layer with their call signature
            (`query (batch, dq)`, `value`, `value_mask`, `projected_key`, `return_attention_scores`)
            and `project_key` (a `query_offset` argument, if it takes one, gets the step). With
            `monotonic=True` the decoder feeds each step's alignment back as
            `previous_alignment` (expected alignments in training, hard ones otherwise). With hard
            attention (`sampling="hard"` or a `HardAttention`), c_t is the memory at one drawn
            position; the REINFORCE estimator needs the call's `targets`.
        vocabulary_size: the number of target tokens (the logits' size).
        embedding_dim: the size of the target token embeddings.
        attention_style: "bahdanau" or "luong" (see above).
        attention_layer_size: None or the size of W_c.
        attention_activation: the activation of W_c (default "tanh"; None for a linear W_c).
        output_attention: the logits read the attention vector (True) or the cell output.
        sampling_probability: scheduled sampling (Bengio et al., 2015) while training: at every
            step after the first, each sequence reads, with this probability, a token sampled from
            the model's previous output distribution instead of the true previous token.
        seed: seed of the scheduled sampling.
        doubly_stochastic: λ of Xu et al.'s (2015) doubly stochastic regularisation: the layer adds
            λ · mean over the batch of Σ_i (1 - Σ_t α_ti)² (over the unmasked memory positions i
            and the target steps t whose input is not 0) to its losses, which pushes every
            position to receive attention over the caption; 0 adds none.
        initial_state_from_memory: without an `encoder_state`, start the cell from
            tanh(W mean_i(h̄_i) + b), one dense layer per tensor of its state (Xu et al.'s f_init),
            instead of zeros.

    Call arguments:
        target_ids: `(batch, T)` int, the decoder inputs (teacher forcing: START then the target).
        encoder_outputs: `(batch, S, d)`, or a feature map `(batch, H, W, d)` (a CNN's output)
            attended over its S = H·W positions; its Keras mask (e.g. from
            `Embedding(mask_zero=True)` through a `Bidirectional` RNN) is honoured when
            `encoder_mask` is not given.
        encoder_state: optional initial state of the cell (its structure), e.g. from the encoder's
            final state; zeros by default.
        encoder_mask: optional `(batch, S)` (or `(batch, H, W)`) boolean, True = may attend.
        return_attention_scores: also return the attention weights (the alignment history)
            `(batch, T, S)` (or `(batch, T, H, W)`); `return_alignments=` is its deprecated spelling.
        training: enables the cell's dropout, the scheduled sampling and hard attention's draws.
        targets: `(batch, T)` int, the tokens the logits predict (0 = padding): needed only to
            train hard attention with the REINFORCE estimator, whose loss is the targets'
            negative log-likelihood.

    Returns logits `(batch, T, vocabulary_size)` and, when asked, the alignments. The whole target
    sequence runs as one XLA-compiled loop (also inside `model.fit`). For decoding, `initial_state`
    and `step` plug into `keras_seqattn.decoding.greedy_search`/`beam_search`.

    Example:
    >>> decoder = AttentionDecoder(keras.layers.GRUCell(16), BahdanauAttention(8),
    ...                            vocabulary_size=20, embedding_dim=8)
    >>> encoder_outputs = keras.random.normal((2, 7, 12))
    >>> logits, alignments = decoder(ops.ones((2, 5), "int32"), encoder_outputs,
    ...                              return_attention_scores=True)
    >>> logits.shape, alignments.shape
    (TensorShape([2, 5, 20]), TensorShape([2, 5, 7]))

    References: Bahdanau, Cho & Bengio, ICLR 2015; Luong, Pham & Manning, EMNLP 2015, section 3.3;
    Bengio, Vinyals, Jaitly & Shazeer, "Scheduled Sampling for Sequence Prediction with Recurrent
    Neural Networks", NeurIPS 2015.
    """

    def __init__(
        self,
        cell,
        attention,
        vocabulary_size,
        embedding_dim,
        attention_style="bahdanau",
        attention_layer_size=None,
        attention_activation="tanh",
        output_attention=True,
        sampling_probability=0.0,
        seed=None,
        doubly_stochastic=0.0,
        initial_state_from_memory=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        checks.check_tensorflow_backend("`AttentionDecoder`")
        if not hasattr(cell, "output_size") or not callable(cell):
            raise ValueError(f"`cell` must be a Keras RNN cell with `output_size`. Received: cell={cell!r}")
        if not hasattr(attention, "project_key"):
            raise ValueError(
                "`attention` must be a layer with `project_key` (BahdanauAttention, "
                f"LuongAttention). Received: attention={attention!r}"
            )
        checks.check_positive_int("vocabulary_size", vocabulary_size)
        checks.check_positive_int("embedding_dim", embedding_dim)
        checks.check_choice("attention_style", attention_style, STYLES)
        checks.check_positive_int("attention_layer_size", attention_layer_size, allow_none=True)
        if not isinstance(sampling_probability, (int, float)) or not 0 <= sampling_probability <= 1:
            raise ValueError(
                "`sampling_probability` must be a float in [0, 1]. "
                f"Received: sampling_probability={sampling_probability!r}"
            )
        self.cell = cell
        self.attention = attention
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.attention_style = attention_style
        self.attention_layer_size = attention_layer_size
        self.attention_activation = keras.activations.get(attention_activation)
        self.output_attention = bool(output_attention)
        self.sampling_probability = float(sampling_probability)
        checks.check_number("doubly_stochastic", doubly_stochastic, 0, strict=False)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed) if sampling_probability > 0 else None
        self.doubly_stochastic = float(doubly_stochastic)
        self.initial_state_from_memory = bool(initial_state_from_memory)
        self._takes_query_offset = "query_offset" in inspect.signature(attention.call).parameters
        self._takes_alignment = "previous_alignment" in inspect.signature(attention.call).parameters

    # -- building --------------------------------------------------------------------------------

    def build(self, target_ids_shape, encoder_outputs_shape):
        checks.check_shape_rank("target_ids", target_ids_shape, (2,))
        checks.check_shape_rank("encoder_outputs", encoder_outputs_shape, (3, 4))
        hidden, memory = self.cell.output_size, encoder_outputs_shape[-1]
        encoder_outputs_shape = (encoder_outputs_shape[0], None, memory)  # feature maps are flattened
        self.embedding = keras.layers.Embedding(
            self.vocabulary_size, self.embedding_dim, dtype=self.dtype_policy, name="embedding"
        )
        self.embedding.build(target_ids_shape)
        bahdanau = self.attention_style == "bahdanau"
        if self.attention_layer_size is not None:
            vector_size = self.attention_layer_size
            self.attention_projection = keras.layers.Dense(
                vector_size,
                activation=self.attention_activation,
                use_bias=False,
                dtype=self.dtype_policy,
                name="attention_projection",
            )
            self.attention_projection.build((None, hidden + memory))
        else:
            vector_size = hidden + memory if bahdanau else memory
        feed = memory if bahdanau else vector_size
        self._cell_input_size = self.embedding_dim + feed
        if not self.cell.built:  # (a deserialized cell comes built)
            self.cell.build((None, self._cell_input_size))
        if not self.attention.built:
            self.attention.build((None, hidden), encoder_outputs_shape)
        self.output_projection = keras.layers.Dense(
            self.vocabulary_size, dtype=self.dtype_policy, name="output_projection"
        )
        self.output_projection.build((None, vector_size if self.output_attention else hidden))
        self._vector_size = vector_size
        self.initial_state_layers = []
        if self.initial_state_from_memory:  # one MLP per state tensor, as f_init,h and f_init,c
            for index, size in enumerate(tf.nest.flatten(self.cell.state_size)):
                layer = keras.layers.Dense(
                    size, activation="tanh", dtype=self.dtype_policy, name=f"initial_state_{index}"
                )
                layer.build((None, memory))
                self.initial_state_layers.append(layer)

    # -- decoding state and one step ---------------------------------------------------------------

    def initial_state(self, encoder_outputs, encoder_state=None, encoder_mask=None):
        """The decoding state for a batch of sources: a dict of `"cell"` (the cell's state),
        `"feed"` (the previous cell output, Bahdanau style, or attention vector, Luong style),
        `"attention"` (the last alignment, `(batch, S)`; for monotonic attention, first one-hot
        on the first source position), `"memory"` (the encoder outputs; a feature map's H·W
        positions), `"keys"` (their projection, computed once) and `"mask"` (`(batch, S)`
        boolean). Without `encoder_state`, the cell starts from zeros, or with
        `initial_state_from_memory` from tanh(W mean(memory) + b) per state tensor."""
        if not self.built:
            raise ValueError(
                f"Layer `{self.name}` is not built yet: call it once before `initial_state`. Received: built=False"
            )
        checks.check_rank("encoder_outputs", encoder_outputs, (3, 4))
        if encoder_mask is None:
            encoder_mask = masks.implicit_mask(encoder_outputs)
        encoder_outputs = masks.without_implicit_mask(encoder_outputs)
        checks.check_mask_shape("encoder_mask", encoder_mask, tuple(encoder_outputs.shape[:-1]))
        if len(encoder_outputs.shape) == 4:
            encoder_outputs, encoder_mask = flatten_feature_map(encoder_outputs, encoder_mask)
        batch, source_length = ops.shape(encoder_outputs)[0], ops.shape(encoder_outputs)[1]
        if encoder_mask is None:
            encoder_mask = ops.ones((batch, source_length), "bool")
        encoder_mask = ops.cast(encoder_mask, "bool")
        dtype = self.cell.compute_dtype
        if encoder_state is not None:
            cell_state = tf.nest.map_structure(lambda s: ops.cast(s, dtype), encoder_state)
        elif self.initial_state_layers:
            present = ops.cast(encoder_mask, encoder_outputs.dtype)[..., None]
            mean = ops.sum(encoder_outputs * present, 1) / ops.maximum(ops.sum(present, 1), 1.0)
            cell_state = tf.nest.pack_sequence_as(
                self.cell.get_initial_state(batch), [layer(mean) for layer in self.initial_state_layers]
            )
        else:
            cell_state = self.cell.get_initial_state(batch)
        if self.attention_style == "bahdanau":
            feed = cells.top_hidden(self.cell, cell_state)
            checks.check_dims_match("encoder_state", feed.shape[-1], "cell", self.cell.output_size, "hidden size")
        else:
            feed = ops.zeros((batch, self._vector_size), self.compute_dtype)
        attention = ops.zeros((batch, source_length), self.compute_dtype)
        if getattr(self.attention, "monotonic", False):  # α₀: one-hot on the first source position
            attention = ops.one_hot(ops.zeros((batch,), "int32"), source_length, dtype=self.compute_dtype)
        return {
            "cell": cell_state,
            "feed": feed,
            "attention": attention,
            "memory": ops.convert_to_tensor(encoder_outputs, self.compute_dtype),
            "keys": self.attention.project_key(encoder_outputs),
            "mask": encoder_mask,
        }

    def step(self, token_ids, state, step, training=None):
        """One decoding step: `token_ids (batch,)` -> `(logits (batch, vocabulary_size), new_state)`,
        the step function of `keras_seqattn.decoding.greedy_search`/`beam_search`."""
        return self._step(self.embedding(token_ids), state, step, training)[:2]

    def _step(self, embedded, state, step, training):
        """`(logits, new_state, positions)`: positions, the one-hot positions hard attention read
        (None for soft attention)."""
        extra = {"query_offset": step} if self._takes_query_offset else {}
        if self._takes_alignment and getattr(self.attention, "monotonic", False):
            extra["previous_alignment"] = state["attention"]

        def attend(query):
            context, weights, *positions = self.attention(
                query,
                state["memory"],
                value_mask=state["mask"],
                projected_key=state["keys"],
                return_attention_scores=True,
                training=training,
                **extra,
            )
            return context, weights, positions[0] if positions else None

        if self.attention_style == "bahdanau":
            context, weights, positions = attend(state["feed"])
            output, cell_state = self.cell(ops.concatenate([embedded, context], -1), state["cell"], training=training)
        else:
            output, cell_state = self.cell(
                ops.concatenate([embedded, state["feed"]], -1), state["cell"], training=training
            )
            context, weights, positions = attend(output)
        both = ops.concatenate([output, ops.cast(context, output.dtype)], -1)
        if self.attention_layer_size is not None:
            vector = self.attention_projection(both)
        else:
            vector = both if self.attention_style == "bahdanau" else context
        logits = self.output_projection(vector if self.output_attention else output)
        feed = output if self.attention_style == "bahdanau" else vector
        new_state = {
            **state,
            "cell": cell_state,
            "feed": ops.cast(feed, state["feed"].dtype),
            "attention": ops.cast(weights, state["attention"].dtype),
        }
        return logits, new_state, positions

    # -- teacher forcing ---------------------------------------------------------------------------

    def call(
        self,
        target_ids,
        encoder_outputs,
        encoder_state=None,
        encoder_mask=None,
        return_attention_scores=False,
        training=None,
        targets=None,
        return_alignments=None,
    ):
        if return_alignments is not None:
            deprecation.warn("`AttentionDecoder(...)(return_alignments=...)`", "`return_attention_scores=`")
            return_attention_scores = return_alignments
        checks.check_rank("target_ids", target_ids, (2,))
        checks.check_dims_match(
            "target_ids", target_ids.shape[0], "encoder_outputs", encoder_outputs.shape[0], "batch size"
        )
        sampler = getattr(self.attention, "sampler", None)
        reinforce = bool(training) and sampler is not None and sampler.estimator == "reinforce"
        if reinforce and targets is None:
            raise ValueError(
                "Hard attention trained with the REINFORCE estimator needs `targets`, the tokens "
                "the logits predict (its reward is their log-likelihood). Received: targets=None"
            )
        if targets is not None:
            checks.check_mask_shape("targets", targets, tuple(target_ids.shape))
        state = self.initial_state(encoder_outputs, encoder_state, encoder_mask)
        target_ids = ops.cast(target_ids, "int32")
        sampling = ()
        if training and self.sampling_probability > 0:
            shape = ops.shape(target_ids)
            coins = keras.random.uniform(shape, seed=self.seed_generator) < self.sampling_probability
            uniform = keras.random.uniform(
                (*shape, self.vocabulary_size), minval=1e-20, maxval=1.0, seed=self.seed_generator
            )
            sampling = (coins, -ops.log(-ops.log(uniform)))  # Gumbel noise: argmax samples
        # A tf.while_loop: one graph loop inside `fit` and `tf.function`, XLA-compiled with the
        # caller's `jit_compile` (not a tf.function of its own: a trace cached under Keras's
        # symbolic build would hold the weights as constants).
        logits, alignments, log_prob, entropy = self._teacher_forced(
            target_ids, state, sampling, bool(training), reinforce
        )
        real = ops.cast(target_ids != 0, "float32")  # steps whose input is not padding
        if reinforce:  # the paper's eq. 12, with the captions' negative log-likelihood as the loss
            token_losses = keras.losses.sparse_categorical_crossentropy(targets, logits, from_logits=True)
            loss = ops.sum(ops.cast(token_losses, "float32") * ops.cast(ops.cast(targets, "int32") != 0, "float32"), -1)
            self.add_loss(sampler.score_function_loss(log_prob, entropy, loss, training=True))
        if self.doubly_stochastic:  # λ Σ_i (1 - Σ_t α_ti)², over the attended positions
            coverage = ops.sum(ops.cast(alignments, "float32") * real[..., None], axis=1)
            gap = ops.where(state["mask"], ops.square(1.0 - coverage), 0.0)
            self.add_loss(self.doubly_stochastic * ops.mean(ops.sum(gap, -1)))
        if len(encoder_outputs.shape) == 4:  # weights over the feature map, (batch, T, H, W)
            alignments = ops.reshape(alignments, (*ops.shape(alignments)[:2], *ops.shape(encoder_outputs)[1:3]))
        return (logits, alignments) if return_attention_scores else logits

    def _teacher_forced(self, target_ids, state, sampling, training, reinforce):
        """Logits `(batch, T, vocabulary)`, alignments `(batch, T, S)` and, with `reinforce`, the
        per-sequence sums of log p(s_t) and H[α_t] over the steps whose input is not padding."""
        batch, length = tf.shape(target_ids)[0], tf.shape(target_ids)[1]
        embedded = tf.transpose(self.embedding(target_ids), [1, 0, 2])  # (T, batch, E)
        real = tf.transpose(tf.not_equal(target_ids, 0))  # (T, batch)
        cells.configure_dropout(self.cell, tf.zeros([batch, self._cell_input_size], embedded.dtype), state["cell"])
        if sampling:  # time-major: (T, batch) and (T, batch, vocabulary)
            coins, gumbel = tf.transpose(sampling[0]), tf.transpose(sampling[1], [1, 0, 2])

        def body(t, state, previous_logits, all_logits, all_weights, log_prob, entropy):
            inputs = embedded[t]
            if sampling:
                sampled = tf.argmax(tf.cast(previous_logits, tf.float32) + gumbel[t], -1, tf.int32)
                use = coins[t] & (t > 0)
                inputs = tf.where(use[:, None], self.embedding(sampled), inputs)
            logits, state, positions = self._step(inputs, state, t, training)
            if reinforce:
                log_prob += tf.where(real[t], hard.position_log_prob(state["attention"], positions), 0.0)
                entropy += tf.where(real[t], hard.attention_entropy(state["attention"]), 0.0)
            return (
                t + 1,
                state,
                logits,
                all_logits.write(t, logits),
                all_weights.write(t, state["attention"]),
                log_prob,
                entropy,
            )

        logits_dtype = self.output_projection.compute_dtype
        loop_vars = (
            tf.constant(0),
            state,
            tf.zeros([batch, self.vocabulary_size], logits_dtype),
            tf.TensorArray(logits_dtype, size=length, element_shape=[None, self.vocabulary_size]),
            tf.TensorArray(state["attention"].dtype, size=length, element_shape=state["attention"].shape),
            tf.zeros([batch]),
            tf.zeros([batch]),
        )
        outputs = tf.while_loop(lambda t, *_: t < length, body, loop_vars, maximum_iterations=length)
        cells.reset_dropout(self.cell)
        logits = tf.transpose(outputs[3].stack(), [1, 0, 2])
        alignments = tf.transpose(outputs[4].stack(), [1, 0, 2])
        return logits, alignments, outputs[5], outputs[6]

    def get_config(self):
        config = super().get_config()
        config.update(
            cell=keras.saving.serialize_keras_object(self.cell),
            attention=keras.saving.serialize_keras_object(self.attention),
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            attention_style=self.attention_style,
            attention_layer_size=self.attention_layer_size,
            attention_activation=keras.activations.serialize(self.attention_activation),
            output_attention=self.output_attention,
            sampling_probability=self.sampling_probability,
            seed=self.seed,
            doubly_stochastic=self.doubly_stochastic,
            initial_state_from_memory=self.initial_state_from_memory,
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        for name in ("cell", "attention"):
            config[name] = keras.saving.deserialize_keras_object(config[name])
        return cls(**config)
