"""Training: data preparation, tokenizers, the training loop, hyperparameter search."""
