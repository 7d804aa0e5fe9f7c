import keras
from keras import ops

from keras_seqattn import checks
from keras_seqattn.ops.attention import masked_softmax

TYING = ("adjacent", "layer_wise")


@keras.saving.register_keras_serializable(package="keras_seqattn")
class MemoryAttention(keras.layers.Layer):
    """End-to-end memory network (Sukhbaatar et al., 2015): a question attends over a memory of
    sentences for several hops, each hop refining the query.

    m_i = Σ_j l_j ∘ A x_ij + T_A(i),   c_i = Σ_j l_j ∘ C x_ij + T_C(i),   u¹ = Σ_j l_j ∘ B q_j
    p_i = softmax_i(uᵏᵀ mᵏ_i),   oᵏ = Σ_i p_i cᵏ_i,   uᵏ⁺¹ = uᵏ + oᵏ  (or H uᵏ + oᵏ)

    x_ij is word j of memory sentence i and q_j word j of the question (ids; 0 pads), A, B, C the
    `(vocabulary_size, embedding_dim)` embeddings, T_A, T_C the temporal encodings `(max_memories,
    embedding_dim)` (row i for memory slot i), and l_j the position encoding of the paper (section
    4.1), l_kj = (1 - j/J) - (k/d)(1 - 2j/J) for word j = 1..J of a J-word sentence and dimension
    k = 1..d (all ones without `position_encoding`: a bag of words). Weight tying (section 2.2):
    "adjacent", Aᵏ⁺¹ = Cᵏ and B = A¹ (K + 1 embeddings for K hops); "layer_wise", A¹ = ... = Aᴷ,
    C¹ = ... = Cᴷ, B its own, with the linear map H in the query update.

    Args:
        vocabulary_size: the number of word ids (0 is padding).
        embedding_dim: d.
        hops: the number of hops K.
        weight_tying: "adjacent" or "layer_wise".
        position_encoding: weight the words of a sentence by l_j (else sum them).
        max_memories: with it, the temporal encodings T_A and T_C for up to this many memories;
            None: no temporal encoding.
        query_mapping: use uᵏ⁺¹ = H uᵏ + oᵏ; default: True for "layer_wise", False for "adjacent",
            as in the paper.
        embeddings_initializer: of A, B, C and T (the paper: normal, σ = 0.1).

    Call arguments:
        story: `(batch, memories, words)` int ids; a memory whose words are all 0 is padding and
            gets zero weight (a story with none pools to o = 0).
        query: `(batch, words)` int ids.
        return_attention_scores: also return every hop's weights p, `(batch, hops, memories)`.

    Returns u^{K+1} `(batch, embedding_dim)` (the paper's answer is softmax(W u^{K+1}): put a
    `Dense(answers)` on it), and the weights when asked.

    Example:
    >>> story = keras.ops.convert_to_tensor([[[3, 4, 5], [6, 7, 0], [0, 0, 0]]])  # 2 facts, 1 pad
    >>> query = keras.ops.convert_to_tensor([[8, 3]])
    >>> state, weights = MemoryAttention(10, 16, hops=3, max_memories=3)(
    ...     story, query, return_attention_scores=True)
    >>> state.shape, weights.shape, float(weights[0, 0, 2])
    (TensorShape([1, 16]), TensorShape([1, 3, 3]), 0.0)

    Reference: Sukhbaatar, Szlam, Weston & Fergus, "End-To-End Memory Networks", NeurIPS 2015,
    sections 2 and 4.1.
    """

    def __init__(
        self,
        vocabulary_size,
        embedding_dim,
        hops=3,
        weight_tying="adjacent",
        position_encoding=True,
        max_memories=None,
        query_mapping=None,
        embeddings_initializer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        checks.check_positive_int("vocabulary_size", vocabulary_size)
        checks.check_positive_int("embedding_dim", embedding_dim)
        checks.check_positive_int("hops", hops)
        checks.check_choice("weight_tying", weight_tying, TYING)
        checks.check_positive_int("max_memories", max_memories, allow_none=True)
        if query_mapping is not None and not isinstance(query_mapping, bool):
            raise ValueError(f"`query_mapping` must be None, True or False. Received: query_mapping={query_mapping!r}")
        self.vocabulary_size = vocabulary_size
        self.embedding_dim = embedding_dim
        self.hops = hops
        self.weight_tying = weight_tying
        self.position_encoding = bool(position_encoding)
        self.max_memories = max_memories
        self.query_mapping = weight_tying == "layer_wise" if query_mapping is None else query_mapping
        self.embeddings_initializer = keras.initializers.get(
            embeddings_initializer or keras.initializers.RandomNormal(stddev=0.1)
        )

    def build(self, story_shape, query_shape):
        checks.check_shape_rank("story", story_shape, (3,))
        checks.check_shape_rank("query", query_shape, (2,))
        table = lambda name, rows: self.add_weight(
            name=name, shape=(rows, self.embedding_dim), initializer=self.embeddings_initializer
        )
        count = self.hops + 1 if self.weight_tying == "adjacent" else 2
        self.memory_embeddings = [table(f"memory_embedding_{i}", self.vocabulary_size) for i in range(count)]
        self.temporal_encodings = (
            [table(f"temporal_encoding_{i}", self.max_memories) for i in range(count)] if self.max_memories else []
        )
        if self.weight_tying == "layer_wise":
            self.query_embedding = table("query_embedding", self.vocabulary_size)
        if self.query_mapping:
            self.query_kernel = self.add_weight(
                name="query_kernel", shape=(self.embedding_dim, self.embedding_dim), initializer="glorot_uniform"
            )

    def _tables(self, hop):
        """The indices of (A, C) of hop `hop` (0-based) into the embeddings and temporal encodings."""
        return (hop, hop + 1) if self.weight_tying == "adjacent" else (0, 1)

    def call(self, story, query, return_attention_scores=False):
        checks.check_rank("story", story, (3,))
        checks.check_rank("query", query, (2,))
        checks.check_dims_match("story", story.shape[0], "query", query.shape[0], "batch size")
        memories = story.shape[1]
        if self.max_memories and memories is not None and memories > self.max_memories:
            raise ValueError(
                f"The story has more memories than `max_memories={self.max_memories}`. Received: "
                f"story.shape={tuple(story.shape)}"
            )
        story, query = ops.cast(story, "int32"), ops.cast(query, "int32")
        story_weights = self._word_weights(story)  # (batch, memories, words, d)
        memory_mask = ops.any(story > 0, axis=-1)  # (batch, memories)
        if self.weight_tying == "adjacent":
            query_table = self.memory_embeddings[0]
        else:
            query_table = self.query_embedding
        u = ops.sum(ops.take(query_table, query, axis=0) * self._word_weights(query), axis=-2)  # (batch, d)
        all_weights = []
        for hop in range(self.hops):
            a, c = self._tables(hop)
            m = self._embed_memories(story, story_weights, a)
            out = self._embed_memories(story, story_weights, c)
            scores = ops.einsum("bd,bmd->bm", u, m)
            p = masked_softmax(scores, memory_mask)
            o = ops.einsum("bm,bmd->bd", ops.cast(p, out.dtype), out)
            u = (ops.matmul(u, self.query_kernel) if self.query_mapping else u) + o
            all_weights.append(ops.cast(p, self.compute_dtype))
        if not return_attention_scores:
            return u
        return u, ops.stack(all_weights, axis=1)

    def _embed_memories(self, story, word_weights, table):
        """Σ_j l_j ∘ E x_ij + T(i) for every memory: `(batch, memories, d)`."""
        embedded = ops.sum(ops.take(self.memory_embeddings[table], story, axis=0) * word_weights, axis=-2)
        if self.temporal_encodings:
            embedded = embedded + self.temporal_encodings[table][None, : ops.shape(story)[1]]
        return embedded

    def _word_weights(self, ids):
        """l_j for every word of `ids` `(..., words)`: `(..., words, d)`, 0 on padding words."""
        present = ops.cast(ids > 0, self.compute_dtype)[..., None]
        if not self.position_encoding:
            return present
        length = ops.maximum(ops.sum(present, axis=-2, keepdims=True), 1.0)  # J, (..., 1, 1)
        j = ops.cast(ops.arange(1, ops.shape(ids)[-1] + 1), self.compute_dtype)[:, None]  # (words, 1)
        k = ops.cast(ops.arange(1, self.embedding_dim + 1), self.compute_dtype)[None, :] / self.embedding_dim
        return ((1.0 - j / length) - k * (1.0 - 2.0 * j / length)) * present

    def compute_output_spec(self, story, query, return_attention_scores=False):
        state = keras.KerasTensor((story.shape[0], self.embedding_dim), dtype=self.compute_dtype)
        if not return_attention_scores:
            return state
        return state, keras.KerasTensor((story.shape[0], self.hops, story.shape[1]), dtype=self.compute_dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocabulary_size=self.vocabulary_size,
            embedding_dim=self.embedding_dim,
            hops=self.hops,
            weight_tying=self.weight_tying,
            position_encoding=self.position_encoding,
            max_memories=self.max_memories,
            query_mapping=self.query_mapping,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config
