"""Serving: the vocabulary that tokenizes in the graph, and string-to-string SavedModel export."""

from keras_seqattn.export.translator import export_translator as export_translator
from keras_seqattn.export.vocabulary import Vocabulary as Vocabulary
