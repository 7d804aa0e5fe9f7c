"""Greedy search, random sampling and beam search over any step function (an RNN decoder step, a
cached Transformer step): a `Sampler` per strategy over one loop (as keras-hub's samplers), and a
function per strategy. The step-function contract: `keras_seqattn.decoding.contract`. TensorFlow
only: on other backends they raise a ValueError naming the backend."""

from keras_seqattn.decoding.beam_search import BeamSampler as BeamSampler
from keras_seqattn.decoding.beam_search import beam_search as beam_search
from keras_seqattn.decoding.caches import self_attention_caches as self_attention_caches
from keras_seqattn.decoding.contract import Decoded as Decoded
from keras_seqattn.decoding.contract import DecodedWithAlignments as DecodedWithAlignments
from keras_seqattn.decoding.contract import Generated as Generated
from keras_seqattn.decoding.greedy_search import GreedySampler as GreedySampler
from keras_seqattn.decoding.greedy_search import greedy_search as greedy_search
from keras_seqattn.decoding.sample_search import RandomSampler as RandomSampler
from keras_seqattn.decoding.sample_search import sample_search as sample_search
from keras_seqattn.decoding.sampler import Sampler as Sampler
