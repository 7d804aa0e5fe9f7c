"""Decoding: a sampler per strategy (greedy, random, beam) over one loop, as keras-hub's samplers,
for any step function (an RNN decoder step, a cached Transformer step); one-line search functions
over them; key/value caches for generation. The step-function contract:
`keras_seqattn.decoding.contract`. The samplers and searches are TensorFlow loops: on other backends
they raise a ValueError naming the backend; `self_attention_caches` runs on every backend."""

from keras_seqattn import deprecation
from keras_seqattn.decoding.beam_sampler import BeamSampler as BeamSampler
from keras_seqattn.decoding.caches import self_attention_caches as self_attention_caches
from keras_seqattn.decoding.greedy_sampler import GreedySampler as GreedySampler
from keras_seqattn.decoding.random_sampler import RandomSampler as RandomSampler
from keras_seqattn.decoding.results import Decoded as Decoded
from keras_seqattn.decoding.sampler import Sampler as Sampler
from keras_seqattn.decoding.searches import beam_search as beam_search
from keras_seqattn.decoding.searches import greedy_search as greedy_search
from keras_seqattn.decoding.searches import sample_search as sample_search
from keras_seqattn.decoding.serialization import deserialize as deserialize
from keras_seqattn.decoding.serialization import get as get
from keras_seqattn.decoding.serialization import serialize as serialize

__getattr__ = deprecation.deprecated_names(
    __name__,
    {
        "DecodedWithAlignments": ("keras_seqattn.decoding.Decoded", lambda: Decoded),
        "Generated": ("keras_seqattn.decoding.Decoded", lambda: Decoded),
    },
)
