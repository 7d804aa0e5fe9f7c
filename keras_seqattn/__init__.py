"""keras_seqattn: drop-in Keras 3 layers for sequence attention on TensorFlow."""

from keras_seqattn import ops as ops
from keras_seqattn.layers.bahdanau_attention import BahdanauAttention as BahdanauAttention
from keras_seqattn.layers.luong_attention import LuongAttention as LuongAttention
from keras_seqattn.layers.multi_head_attention import MultiHeadAttention as MultiHeadAttention
from keras_seqattn.layers.positional_encoding import PositionalEncoding as PositionalEncoding
from keras_seqattn.layers.scaled_dot_product import ScaledDotProduct as ScaledDotProduct
from keras_seqattn.layers.transformer_decoder import TransformerDecoder as TransformerDecoder
from keras_seqattn.layers.transformer_encoder import TransformerEncoder as TransformerEncoder

__version__ = "0.1.0"
