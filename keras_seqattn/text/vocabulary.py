"""A token vocabulary that tokenizes and detokenizes inside TensorFlow graphs (tensorflow-text)."""

import collections

import keras
import tensorflow as tf
import tensorflow_text as tf_text

from keras_seqattn import checks

_PUNCTUATION = r"([^\w\s])"  # each punctuation mark is a token of its own


@keras.saving.register_keras_serializable(package="keras_seqattn")
class Vocabulary(tf.Module):
    """Maps text to token ids and back, with the ops of tensorflow-text, so that the tokenization a
    model trains with is the one its SavedModel serves with (`keras_seqattn.export`).

    Ids 0-3 are reserved: `PAD` (0, also the Keras mask value), `START`, `END` and `UNKNOWN` (any
    token outside `tokens`); `tokens[i]` gets id `i + 4`. `ids_to_tokens` names the reserved ids
    `RESERVED_TOKENS` ("[PAD]", "[START]", "[END]", "[UNK]") and `tokens_to_ids` reads them back.
    A vocabulary serialises with `get_config` (its tokens), so a Keras layer that holds one (such as
    `keras_seqattn.text.Tokenizer`) restores it from a `.keras` file.

    Args:
        tokens: the known tokens, distinct strings (single characters with `split="characters"`).
        split: "characters" (`tf_text.UnicodeCharTokenizer`: every Unicode character is a token) or
            "words" (split on white space, with each punctuation mark a token of its own).
        lowercase: lowercase (Unicode-aware, `tf.strings.lower`) before splitting.

    The graph it builds holds only ops of core TensorFlow (tensorflow-text's character tokenizer
    is made of them), so that a SavedModel serving it loads in stock TensorFlow Serving and
    `saved_model_cli`, which have no tensorflow-text ops.

    Invalid UTF-8 is never rejected: each bad byte becomes U+FFFD (then `UNKNOWN`, unless known).

    Example:
    >>> vocabulary = Vocabulary.from_texts(["one two", "two three"], split="words")
    >>> ids = vocabulary.encode(tf.constant(["two one", "four"]))
    >>> vocabulary.tokens, ids.to_list()
    (('two', 'one', 'three'), [[4, 5], [3]])
    >>> vocabulary.decode(tf.constant([[4, 5, 2, 0], [1, 6, 2, 5]])).numpy().tolist()
    [b'two one', b'three']
    >>> vocabulary.ids_to_tokens(tf.constant([1, 4, 2])).numpy().tolist()
    [b'[START]', b'two', b'[END]']
    >>> vocabulary.tokens_to_ids(tf.constant(["three", "four", "[END]"])).numpy().tolist()
    [6, 3, 2]
    """

    PAD, START, END, UNKNOWN = 0, 1, 2, 3
    RESERVED = 4
    RESERVED_TOKENS = ("[PAD]", "[START]", "[END]", "[UNK]")

    def __init__(self, tokens, split="characters", lowercase=False):
        super().__init__()
        checks.check_choice("split", split, ("characters", "words"))
        tokens = list(tokens)
        if not tokens or len(set(tokens)) != len(tokens) or not all(isinstance(t, str) and t for t in tokens):
            raise ValueError(
                f"`tokens` must be a non-empty list of distinct non-empty strings. Received: tokens={tokens!r}"
            )
        if split == "characters" and any(len(t) != 1 for t in tokens):
            raise ValueError(
                "With split='characters', `tokens` must be single characters. "
                f"Received: tokens={[t for t in tokens if len(t) != 1]!r}"
            )
        if set(tokens) & set(self.RESERVED_TOKENS):
            raise ValueError(
                f"`tokens` must not hold the names of the reserved ids {list(self.RESERVED_TOKENS)}. "
                f"Received: tokens holding {sorted(set(tokens) & set(self.RESERVED_TOKENS))!r}"
            )
        self.tokens, self.split, self.lowercase = tuple(tokens), split, lowercase
        ids = tf.range(self.RESERVED, self.RESERVED + len(tokens), dtype=tf.int64)
        keys = [ord(t) for t in tokens] if split == "characters" else tokens
        self._to_id = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(
                tf.constant(keys, tf.int64 if split == "characters" else tf.string), ids
            ),
            self.UNKNOWN,
        )
        self._to_token = tf.constant(["", "", "", "\N{REPLACEMENT CHARACTER}", *tokens])
        self._names = tf.constant([*self.RESERVED_TOKENS, *tokens])
        self._name_to_id = tf.lookup.StaticHashTable(
            tf.lookup.KeyValueTensorInitializer(self._names, tf.range(self.size, dtype=tf.int64)), self.UNKNOWN
        )

    @classmethod
    def from_texts(cls, texts, split="characters", lowercase=False, max_tokens=None):
        """The vocabulary of the tokens of `texts` (Python strings), most frequent first."""
        counts = collections.Counter()
        checks.check_choice("split", split, ("characters", "words"))
        for row in _split(tf.constant(list(texts)), split, lowercase).to_list():
            counts.update(chr(t) if split == "characters" else t.decode() for t in row)
        return cls([t for t, _ in counts.most_common(max_tokens)], split, lowercase)

    @property
    def size(self):
        """The number of ids, the reserved ones included: the vocabulary size of a model."""
        return self.RESERVED + len(self.tokens)

    def encode(self, texts):
        """`texts` `(batch,)` tf.string -> token ids, an int32 RaggedTensor `(batch, None)`."""
        tokens = _split(texts, self.split, self.lowercase)
        return tf.cast(tf.ragged.map_flat_values(self._to_id.lookup, tokens), tf.int32)

    def decode(self, ids):
        """`ids` `(batch, length)` -> `(batch,)` tf.string: the tokens before the first `END`, with
        `PAD` and `START` dropped, joined (with spaces for words)."""
        ids = tf.convert_to_tensor(ids, tf.int32)
        before_end = tf.math.cumsum(tf.cast(tf.equal(ids, self.END), tf.int32), axis=-1) == 0
        keep = before_end & (ids >= self.UNKNOWN)
        tokens = tf.ragged.boolean_mask(tf.gather(self._to_token, ids), keep)
        return tf.strings.reduce_join(tokens, axis=-1, separator="" if self.split == "characters" else " ")

    def tokens_to_ids(self, tokens):
        """Tokens (`tf.string`, any shape, ragged too) -> their int32 ids, `UNKNOWN` for a token
        outside the vocabulary; `RESERVED_TOKENS` give the reserved ids."""
        tokens = tokens if isinstance(tokens, tf.RaggedTensor) else tf.convert_to_tensor(tokens, tf.string)
        return tf.cast(tf.ragged.map_flat_values(self._name_to_id.lookup, tokens), tf.int32)

    def ids_to_tokens(self, ids):
        """Ids (any shape, ragged too) -> their tokens (`tf.string`), `RESERVED_TOKENS` for the
        reserved ids. An id outside `[0, size)` is refused (eagerly with a ValueError)."""
        ids = ids if isinstance(ids, tf.RaggedTensor) else tf.convert_to_tensor(ids)
        if not ids.dtype.is_integer:
            raise ValueError(f"`ids` must hold integer ids. Received: ids.dtype={ids.dtype.name}")
        flat = ids.flat_values if isinstance(ids, tf.RaggedTensor) else ids
        if tf.executing_eagerly() and tf.size(flat) > 0:
            low, high = int(tf.reduce_min(flat)), int(tf.reduce_max(flat))
            if low < 0 or high >= self.size:
                raise ValueError(
                    f"`ids` must be in [0, {self.size}) (the vocabulary's size). Received: ids from {low} to {high}"
                )
        return tf.ragged.map_flat_values(lambda i: tf.gather(self._names, i), ids)

    def get_config(self):
        return {"tokens": list(self.tokens), "split": self.split, "lowercase": self.lowercase}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _split(texts, split, lowercase):
    """Strings -> ragged tokens: code points (int64) for characters, strings for words."""
    texts = tf.strings.unicode_transcode(texts, "UTF-8", "UTF-8", errors="replace")
    if lowercase:
        texts = tf.strings.lower(texts, encoding="utf-8")
    if split == "characters":
        return tf.cast(tf_text.UnicodeCharTokenizer().tokenize(texts), tf.int64)
    return tf.strings.split(tf.strings.regex_replace(texts, _PUNCTUATION, r" \1 "))
