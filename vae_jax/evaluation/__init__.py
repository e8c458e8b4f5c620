"""Evaluators: numbers computed from a trained model (classifier metrics, ...)."""
