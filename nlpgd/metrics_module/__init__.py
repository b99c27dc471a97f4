"""The spam metrics as a Hugging Face ``evaluate`` module (see :mod:`nlpgd.metrics`)."""
