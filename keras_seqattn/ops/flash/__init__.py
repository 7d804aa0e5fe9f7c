"""The flash path: exact attention without the T x S matrix, as TensorFlow loops (online tiles in
`tiles.py`, whole rows in `rows.py`, the block layout they share in `layout.py`). TensorFlow only;
`scaled_dot_product_attention` (ops/attention.py) runs it as the attention policy plans."""

from keras_seqattn.ops.flash.tiles import flash_attention as flash_attention
