"""RNN encoder-decoder attention: the attention decoder around any Keras RNN cell. TensorFlow only."""

from keras_seqattn.seq2seq.attention_decoder import AttentionDecoder as AttentionDecoder
