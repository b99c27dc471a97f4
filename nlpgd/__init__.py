"""nlpgd: generative and discriminative text classifiers, side by side, on spam detection."""

__version__ = "0.1.0"

LABELS = ("ham", "spam")  # ClassLabel order everywhere: 0 = ham, 1 = spam (the positive class)
CHUNK_SIZE = 4096  # messages read, scored and written together when streaming (classify -)
