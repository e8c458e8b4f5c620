"""Evaluators: numbers computed from a trained model.

likelihood: IWAE estimates of log p(x). classifier_metrics: Inception Score,
classifier-FID, class histograms and confusion matrices of prior samples,
judged by the project's MNIST classifier. fid: Fréchet distance and feature
statistics. workdir: all of them for a trained run or sweep, from its
checkpoint (the library side of launch.evaluate).
"""
