"""A toy decoder for the search tests: a tanh RNN over a tiny vocabulary, written twice, in
TensorFlow (the step function the searches call) and in NumPy (for the hand-written references).
Its state is a dict with the hidden state and this step's attention over a padded source."""

import itertools

import numpy as np
import tensorflow as tf

VOCAB, HIDDEN, SOURCE, END = 4, 3, 5, 0


class ToyDecoder:
    def __init__(self, seed=0):
        rng = np.random.default_rng(seed)
        self.embed = rng.normal(size=(VOCAB, HIDDEN)).astype("float32")
        self.recur = rng.normal(size=(HIDDEN, HIDDEN)).astype("float32")
        self.out = (2 * rng.normal(size=(HIDDEN, VOCAB))).astype("float32")
        self.step_bias = rng.normal(size=(16, VOCAB)).astype("float32")
        self.attend = rng.normal(size=(HIDDEN, SOURCE)).astype("float32")
        # Batch of 2: the second source has two padded positions.
        self.source_mask = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]], bool)

    def initial_state(self):
        hidden = np.array([[0.5, -0.3, 0.1], [-0.4, 0.2, 0.7]], "float32")
        return {"hidden": tf.constant(hidden), "attention": tf.zeros([2, SOURCE]),
                "mask": tf.constant(self.source_mask)}

    def step_fn(self, token_ids, state, step):
        hidden = tf.tanh(tf.gather(self.embed, token_ids) + state["hidden"] @ self.recur)
        scores = tf.where(state["mask"], hidden @ self.attend, -1e9)
        attention = tf.nn.softmax(scores) * tf.cast(state["mask"], tf.float32)
        logits = hidden @ self.out + tf.gather(self.step_bias, step)
        return logits, {"hidden": hidden, "attention": attention, "mask": state["mask"]}

    def numpy_step(self, token, hidden, mask, step):
        hidden = np.tanh(self.embed[token] + hidden @ self.recur)
        scores = np.where(mask, hidden @ self.attend, -np.inf)
        attention = np.exp(scores - scores.max()) * mask
        attention /= attention.sum()
        logits = hidden @ self.out + self.step_bias[step]
        log_probs = logits - logits.max() - np.log(np.exp(logits - logits.max()).sum())
        return log_probs, hidden, attention

    def hypotheses(self, row, start, max_length, alpha=0.0, beta=0.0):
        """Every distinct hypothesis of input `row` with its GNMT score, best first."""
        hidden0 = self.initial_state()["hidden"].numpy()[row]
        mask = self.source_mask[row]
        found = {}
        for tokens in itertools.product(range(VOCAB), repeat=max_length):
            length = tokens.index(END) + 1 if END in tokens else max_length
            prefix = tokens[:length]
            if prefix in found:
                continue
            hidden, previous, log_prob, coverage = hidden0, start, 0.0, np.zeros(SOURCE)
            for step, token in enumerate(prefix):
                log_probs, hidden, attention = self.numpy_step(previous, hidden, mask, step)
                log_prob += log_probs[token]
                coverage += attention
                previous = token
            score = log_prob / ((5 + length) / 6) ** alpha
            score += beta * np.log(np.minimum(coverage[mask], 1.0)).sum()
            found[prefix] = score
        ranked = sorted(found.items(), key=lambda item: -item[1])
        padded = [list(prefix) + [END] * (max_length - len(prefix)) for prefix, _ in ranked]
        return np.array(padded), np.array([score for _, score in ranked])


def search_args(**overrides):
    """The arguments of a valid call of a search (3-token vocabulary, no attention in the state),
    with `overrides`."""
    args = dict(step_fn=lambda t, s, i: (tf.zeros([1, 3]), s), initial_state={"hidden": tf.zeros([1, 2])},
                start_ids=tf.constant([1]), end_id=0, max_length=3)
    return {**args, **overrides}
