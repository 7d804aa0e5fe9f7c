"""Serving: the vocabulary that tokenizes in the graph, and string-producing SavedModels (text to
text, image to text)."""

from keras_seqattn.export.captioner import export_captioner as export_captioner
from keras_seqattn.export.translator import export_translator as export_translator
from keras_seqattn.export.vocabulary import Vocabulary as Vocabulary
