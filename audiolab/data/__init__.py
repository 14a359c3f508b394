"""Data: one module per kind of data (keywords, emotional speech, music, images, synthetic speech), each
with a registry of the corpora it reads, plus the data-root and dataset-choice helpers in ``common``."""
