"""Samplers by name or config, as keras-hub's `samplers.get`. TensorFlow only."""

import keras

from keras_seqattn.decoding.beam_sampler import BeamSampler
from keras_seqattn.decoding.greedy_sampler import GreedySampler
from keras_seqattn.decoding.random_sampler import RandomSampler
from keras_seqattn.decoding.sampler import Sampler

NAMES = {  # keras-hub's names, with its defaults (top-k 5, beams 5) but a 0.9 nucleus
    "greedy": lambda: GreedySampler(),
    "random": lambda: RandomSampler(),
    "top_k": lambda: RandomSampler(top_k=5),
    "top_p": lambda: RandomSampler(top_p=0.9),
    "beam": lambda: BeamSampler(beam_width=5),
}


def serialize(sampler):
    """A sampler's Keras config (`{"class_name": ..., "config": ...}`).

    Example:
    >>> ksa.decoding.serialize(ksa.decoding.RandomSampler(top_p=0.5))["config"]["top_p"]
    0.5
    """
    return keras.saving.serialize_keras_object(sampler)


def deserialize(config):
    """The sampler of a config written by `serialize`.

    Example:
    >>> config = ksa.decoding.serialize(ksa.decoding.BeamSampler(beam_width=3, length_penalty=0.6))
    >>> ksa.decoding.deserialize(config).get_config()["length_penalty"]
    0.6
    """
    return keras.saving.deserialize_keras_object(config)


def get(identifier):
    """A sampler from a name ("greedy", "random", "top_k", "top_p", "beam"), a config written by
    `serialize`, or a sampler (returned as it is).

    Example:
    >>> ksa.decoding.get("top_k").get_config()["top_k"]
    5
    >>> type(ksa.decoding.get(ksa.decoding.serialize(ksa.decoding.BeamSampler(3)))).__name__
    'BeamSampler'
    """
    if isinstance(identifier, Sampler):
        return identifier
    if isinstance(identifier, dict):
        sampler = deserialize(identifier)
    elif isinstance(identifier, str) and identifier in NAMES:
        sampler = NAMES[identifier]()
    else:
        raise ValueError(
            f"`identifier` must be a sampler, one of {sorted(NAMES)} or a sampler's config. "
            f"Received: identifier={identifier!r}"
        )
    if not isinstance(sampler, Sampler):
        raise ValueError(f"`identifier` must describe a sampler. Received: identifier={identifier!r}")
    return sampler
