"""Serving: the vocabulary that tokenizes in the graph, and string-producing SavedModels (text to
text, image to text, prompt to continuation). TensorFlow only: the export functions raise a ValueError naming any other
Keras backend; `Vocabulary` runs TensorFlow ops whatever the Keras backend."""

from keras_seqattn.export.captioner import export_captioner as export_captioner
from keras_seqattn.export.generator import export_generator as export_generator
from keras_seqattn.export.translator import export_translator as export_translator
from keras_seqattn.export.vocabulary import Vocabulary as Vocabulary
