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
        return {
            "hidden": tf.constant(hidden),
            "attention": tf.zeros([2, SOURCE]),
            "mask": tf.constant(self.source_mask),
        }

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

    def beam_replay(self, starts, beam_width, max_length, alpha, beta, ranking):
        """Beam search of the batch (input row i starts with `starts[i]`), step by step in NumPy,
        under either ranking rule: "gnmt" scores every candidate with its own token counted in
        |Y| and the coverage penalty; "tensorflow_addons" (BeamSearchDecoder's `_beam_search_step`)
        does not count an end token chosen at this step, and adds the coverage penalty only to
        hypotheses finished before it. As in both, the batch runs until every hypothesis of every
        input has finished, and finished hypotheses are scored again at each step.
        Returns the sequences `(batch, beam, max_length)`, best first, and their last scores."""
        hidden = self.initial_state()["hidden"].numpy().astype(np.float64)
        rows = [
            [
                dict(
                    tokens=[],
                    log_prob=0.0 if k == 0 else -np.inf,
                    length=0,
                    finished=False,
                    coverage=np.zeros(SOURCE),
                    hidden=hidden[row],
                    last=start,
                )
                for k in range(beam_width)
            ]
            for row, start in enumerate(starts)
        ]
        scores = np.zeros((len(starts), beam_width))
        for step in range(max_length):
            if all(beam["finished"] for beams in rows for beam in beams):
                break
            for row, beams in enumerate(rows):
                rows[row], scores[row] = self._replay_step(
                    beams, self.source_mask[row], step, beam_width, alpha, beta, ranking
                )
        sequences = np.array([[b["tokens"] + [END] * (max_length - len(b["tokens"])) for b in beams] for beams in rows])
        return sequences, scores

    def _replay_step(self, beams, mask, step, beam_width, alpha, beta, ranking):
        candidates = []
        for k, beam in enumerate(beams):
            log_probs, hidden, attention = self.numpy_step(beam["last"], beam["hidden"], mask, step)
            if beam["finished"]:
                log_probs, attention = np.where(np.arange(VOCAB) == END, 0.0, -np.inf), np.zeros(SOURCE)
            coverage = beam["coverage"] + attention
            penalty = beta * np.log(np.minimum(coverage[coverage > 0], 1.0)).sum()
            grows = not beam["finished"]
            for token in range(VOCAB):
                if ranking == "gnmt":
                    length, bonus = beam["length"] + grows, penalty
                else:
                    length, bonus = beam["length"] + (grows and token != END), 0.0 if grows else penalty
                total = beam["log_prob"] + log_probs[token]
                candidates.append((total / ((5 + length) / 6) ** alpha + bonus, k, token, total, hidden, coverage))
        order = np.argsort([-c[0] for c in candidates], kind="stable")[:beam_width]
        chosen = []
        for index in order:
            _, k, token, total, hidden, coverage = candidates[index]
            old = beams[k]
            chosen.append(
                dict(
                    tokens=old["tokens"] + [token],
                    log_prob=total,
                    length=old["length"] + (not old["finished"]),
                    finished=old["finished"] or token == END,
                    coverage=coverage,
                    hidden=hidden,
                    last=token,
                )
            )
        return chosen, np.array([candidates[i][0] for i in order])


def search_args(**overrides):
    """The arguments of a valid call of a search (3-token vocabulary, no attention in the state),
    with `overrides`."""
    args = dict(
        step_fn=lambda t, s, i: (tf.zeros([1, 3]), s),
        initial_state={"hidden": tf.zeros([1, 2])},
        start_ids=tf.constant([1]),
        end_id=0,
        max_length=3,
    )
    return {**args, **overrides}
