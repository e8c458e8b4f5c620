"""Evaluators: numbers computed from a trained model.

registry: how a metric is declared and registered by name; metrics: the
built-in ones, one module each; driver: all requested metrics of a trained
run or sweep, from its checkpoint (the library side of launch.evaluate).
The helpers they share: likelihood (IWAE estimates of log p(x)),
classifier_metrics (prior samples and reconstructions judged by the
project's MNIST classifier), fid (Fréchet distance and feature statistics).
"""
