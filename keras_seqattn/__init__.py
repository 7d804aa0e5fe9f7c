"""keras_seqattn: drop-in Keras 3 layers for sequence attention on TensorFlow.

Importing the package imports every subpackage, so that every serializable class it defines is
registered with Keras (a `.keras` file holding any of them loads after `import keras_seqattn`).
On an x86 CPU where TensorFlow started with its oneDNN optimisations off although they help there,
it logs once what to set (`keras_seqattn.ops.onednn_advice`); it never changes the setting itself."""

from keras_seqattn import decoding as decoding
from keras_seqattn import deprecation as _deprecation
from keras_seqattn import export as export
from keras_seqattn import ops as ops
from keras_seqattn import seq2seq as seq2seq
from keras_seqattn import text as text
from keras_seqattn import visualization as visualization
from keras_seqattn.layers.alibi_bias import AlibiBias as AlibiBias
from keras_seqattn.layers.attention_pooling import AttentionPooling as AttentionPooling
from keras_seqattn.layers.bahdanau_attention import BahdanauAttention as BahdanauAttention
from keras_seqattn.layers.hard_attention import HardAttention as HardAttention
from keras_seqattn.layers.hierarchical_attention import HierarchicalAttention as HierarchicalAttention
from keras_seqattn.layers.luong_attention import LuongAttention as LuongAttention
from keras_seqattn.layers.memory_attention import MemoryAttention as MemoryAttention
from keras_seqattn.layers.multi_head_attention import MultiHeadAttention as MultiHeadAttention
from keras_seqattn.layers.positional_encoding import PositionalEncoding as PositionalEncoding
from keras_seqattn.layers.rotary_embedding import RotaryEmbedding as RotaryEmbedding
from keras_seqattn.layers.scaled_dot_product import ScaledDotProduct as ScaledDotProduct
from keras_seqattn.layers.transformer_decoder import TransformerDecoder as TransformerDecoder
from keras_seqattn.layers.transformer_encoder import TransformerEncoder as TransformerEncoder
from keras_seqattn.ops.tuning import advise_once as _advise_once
from keras_seqattn.version import __version__ as __version__

_advise_once()


def _hard_sampler():
    from keras_seqattn.layers.hard_attention import HardSampler

    return HardSampler


__getattr__ = _deprecation.deprecated_names(__name__, {"HardSampler": ("keras_seqattn.HardAttention", _hard_sampler)})
