"""Greedy search, random sampling and beam search over any step function (an RNN decoder step, a
cached Transformer step)."""

from keras_seqattn.decoding.beam_search import beam_search as beam_search
from keras_seqattn.decoding.greedy_search import greedy_search as greedy_search
from keras_seqattn.decoding.sample_search import sample_search as sample_search
