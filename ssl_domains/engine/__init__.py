"""Training engine: pre-training, fine-tuning, evaluation and prediction loops."""
