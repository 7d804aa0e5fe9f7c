import keras
from keras import ops

from keras_seqattn import checks, deprecation
from keras_seqattn.ops import hard

ESTIMATORS = ("straight_through", "reinforce")
INFERENCE = ("argmax", "expectation")


@keras.saving.register_keras_serializable(package="keras_seqattn")
class HardAttention(keras.layers.Layer):
    """Hard ("stochastic") attention (Xu et al., 2015, section 4.1): the positions an attention
    layer reads, drawn from its weights. Pass `sampling=HardAttention(...)` (or `sampling="hard"` for
    the defaults) to `BahdanauAttention`, `LuongAttention` or `ScaledDotProduct`.

    s ~ Multinoulli(α),  ẑ = Σ_i s_i v_i   (while training; masked positions are never drawn)

    The gradient of the draw comes from one of two estimators:
    - "straight_through": the forward pass is exactly one-hot, the backward pass that of the
      Gumbel-softmax softmax((log α + g) / τ), g Gumbel noise, τ = `temperature` (Jang et al.,
      2017). Training needs nothing else.
    - "reinforce": the score-function estimator of the paper (eq. 11-12): no gradient flows
      through the draw; the layer whose loss L the draw affected adds
      `score_function_loss(log_prob, entropy, loss)` = λ_r · mean[(L - b) · Σ log p(s)] - λ_e · mean[H],
      with b a moving average of L (the baseline), so that its gradient is
      λ_r (L - b) ∇ log p(s) - λ_e ∇ H[s]. `AttentionDecoder` does this itself, given the targets.

    At inference the position is the argmax of α (`inference="argmax"`) or the context the
    expectation Σ_i α_i v_i (`"expectation"`, soft attention).

    Args:
        estimator: "straight_through" or "reinforce".
        temperature: τ of the straight-through estimator, > 0.
        inference: "argmax" or "expectation".
        reward_weight: λ_r of the REINFORCE term.
        entropy_weight: λ_e of the entropy term (it keeps the draws exploring).
        baseline_decay: b ← decay · b + (1 - decay) · mean(L) at each training call, in [0, 1).
        expectation_probability: while training, each row reads the expectation Σ_i α_i v_i
            (soft attention, with its exact gradient) instead of a draw with this probability;
            Xu et al. use 0.5 with REINFORCE ("to further improve the robustness"). Such rows add
            nothing to the REINFORCE term.
        seed: seed of the draws: an int makes training reproducible.

    Call arguments:
        weights: `(..., S)` attention weights (probabilities; 0 = masked).
        training: draw while True; the inference rule otherwise.

    Returns the selection `(..., S)` float32: one-hot (a draw, or the argmax), all zeros for a row
    with no position, or the weights themselves with `inference="expectation"` at inference.

    Example:
    >>> sampler = HardAttention(seed=0)
    >>> weights = keras.ops.convert_to_tensor([[0.1, 0.7, 0.2, 0.0]])
    >>> sampler(weights, training=False).numpy().tolist()
    [[0.0, 1.0, 0.0, 0.0]]
    >>> float(keras.ops.sum(sampler(weights, training=True)))  # one position, drawn
    1.0

    Reference: Xu et al., "Show, Attend and Tell: Neural Image Caption Generation with Visual
    Attention", ICML 2015, section 4.1; Jang, Gu & Poole, "Categorical Reparameterization with
    Gumbel-Softmax", ICLR 2017.
    """

    def __init__(
        self,
        estimator="straight_through",
        temperature=1.0,
        inference="argmax",
        reward_weight=1.0,
        entropy_weight=0.01,
        baseline_decay=0.9,
        expectation_probability=0.0,
        seed=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        checks.check_choice("estimator", estimator, ESTIMATORS)
        checks.check_number("temperature", temperature, 0, strict=True)
        checks.check_choice("inference", inference, INFERENCE)
        checks.check_number("reward_weight", reward_weight, 0, strict=False)
        checks.check_number("entropy_weight", entropy_weight, 0, strict=False)
        if (
            not isinstance(baseline_decay, (int, float))
            or isinstance(baseline_decay, bool)
            or not 0 <= baseline_decay < 1
        ):
            raise ValueError(
                f"`baseline_decay` must be a number in [0, 1). Received: baseline_decay={baseline_decay!r}"
            )
        self.estimator = estimator
        self.temperature = float(temperature)
        self.inference = inference
        self.reward_weight = float(reward_weight)
        self.entropy_weight = float(entropy_weight)
        self.baseline_decay = float(baseline_decay)
        if (
            not isinstance(expectation_probability, (int, float))
            or isinstance(expectation_probability, bool)
            or not 0 <= expectation_probability <= 1
        ):
            raise ValueError(
                "`expectation_probability` must be a number in [0, 1]. "
                f"Received: expectation_probability={expectation_probability!r}"
            )
        self.expectation_probability = float(expectation_probability)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.baseline = self.add_weight(name="baseline", shape=(), initializer="zeros", trainable=False)

    def call(self, weights, training=None):
        if not training:
            return hard.argmax_positions(weights) if self.inference == "argmax" else ops.cast(weights, "float32")
        if self.estimator == "straight_through":
            positions = hard.straight_through_positions(weights, self.temperature, self.seed_generator)
        else:
            positions = hard.sample_positions(weights, self.seed_generator)
        if self.expectation_probability:  # some rows read the expectation (soft attention) instead
            soft = (
                keras.random.uniform(ops.shape(weights)[:-1], seed=self.seed_generator) < self.expectation_probability
            )
            positions = ops.where(soft[..., None], ops.cast(weights, "float32"), positions)
        return positions

    def score_function_loss(self, log_prob, entropy, loss, training=True):
        """The REINFORCE surrogate of the paper, per example: `log_prob` Σ log p(s) of the draws,
        `entropy` Σ H[s] of their distributions, `loss` the loss L the draws led to (to minimize;
        no gradient is taken through it). Updates the baseline when `training`."""
        loss = ops.stop_gradient(ops.cast(loss, "float32"))
        advantage = loss - ops.cast(self.baseline, "float32")
        surrogate = self.reward_weight * ops.mean(advantage * log_prob) - self.entropy_weight * ops.mean(entropy)
        if training:
            self.baseline.assign(self.baseline_decay * self.baseline + (1.0 - self.baseline_decay) * ops.mean(loss))
        return surrogate

    def compute_output_shape(self, weights_shape):
        return weights_shape

    def get_config(self):
        config = super().get_config()
        config.update(
            estimator=self.estimator,
            temperature=self.temperature,
            inference=self.inference,
            reward_weight=self.reward_weight,
            entropy_weight=self.entropy_weight,
            baseline_decay=self.baseline_decay,
            expectation_probability=self.expectation_probability,
            seed=self.seed,
        )
        return config


@keras.saving.register_keras_serializable(package="keras_seqattn")
class HardSampler(HardAttention):
    """Deprecated: `HardAttention` (the same layer under its old name, so that files saved with it
    still load)."""

    def __init__(self, *args, **kwargs):
        deprecation.warn("`keras_seqattn.HardSampler`", "`keras_seqattn.HardAttention`")
        super().__init__(*args, **kwargs)


def get_hard_attention(sampling, seed=None):
    """`sampling` ("soft", "hard", a HardAttention or its serialized config) as a HardAttention, or
    None for soft attention."""
    if isinstance(sampling, dict):
        sampling = keras.saving.deserialize_keras_object(sampling)
    if isinstance(sampling, HardAttention):
        return sampling
    checks.check_choice("sampling", sampling, ("soft", "hard"))
    return HardAttention(seed=seed) if sampling == "hard" else None


def serialize_hard_attention(sampler):
    return "soft" if sampler is None else keras.saving.serialize_keras_object(sampler)
