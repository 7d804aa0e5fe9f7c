"""Text-pipeline helpers: ids packed with start and end tokens for teacher forcing, and a
tokenizer layer that keeps its vocabulary in the model. TensorFlow ops: they run in tf.data
pipelines, Keras models on the TensorFlow backend and exported SavedModels."""

from keras_seqattn.text.start_end_packer import StartEndPacker as StartEndPacker
from keras_seqattn.text.tokenizer import Tokenizer as Tokenizer
from keras_seqattn.text.vocabulary import Vocabulary as Vocabulary
