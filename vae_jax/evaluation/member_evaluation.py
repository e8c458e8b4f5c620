"""What the evaluators of one trained model share: its test set, the
classifier, Inception, the settings and its prior samples, each made once."""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import numpy as np

from vae_jax import classifier as classifier_lib
from vae_jax import data as data_lib
from vae_jax import restore
from vae_jax.evaluation import classifier_metrics
from vae_jax.results_table import Output


@dataclasses.dataclass(frozen=True)
class Settings:
  """How the metrics are computed (launch.evaluate's flags of the same names)."""

  iwae_samples: int = 5000
  iwae_chunk: int = 100  # importance samples evaluated at once
  iwae_batch: int = 100  # test images per IWAE call
  num_images: int | None = None  # first test images for IWAE (None: all)
  num_samples: int = 10_000  # prior samples for the sample metrics
  batch_size: int = 1000  # images per classifier / decoder call
  seed: int = 0
  # The classifier metrics refuse a classifier recorded as less accurate.
  min_classifier_accuracy: float = classifier_lib.MIN_TEST_ACCURACY

  def __post_init__(self):
    for name in ('iwae_samples', 'iwae_chunk', 'iwae_batch', 'num_samples',
                 'batch_size'):
      value = getattr(self, name)
      if not (isinstance(value, int) and value >= 1):
        raise ValueError(f'--{name}={value!r}: give an integer >= 1.')
    if self.num_images is not None and not (
        isinstance(self.num_images, int) and self.num_images >= 1):
      raise ValueError(f'--num_images={self.num_images!r}: give an integer '
                       '>= 1, or leave it out for all test images.')
    if not (isinstance(self.seed, int) and 0 <= self.seed < 2**32):
      raise ValueError(f'--seed={self.seed!r}: give 0 to 2**32 - 1.')
    if not 0.0 <= self.min_classifier_accuracy <= 1.0:
      raise ValueError('--min_classifier_accuracy='
                       f'{self.min_classifier_accuracy!r}: give 0 to 1.')


class Judge(NamedTuple):
  """The classifier and what it needs only once per workdir."""

  model: Any
  params: Any
  sha256: str
  reference: tuple[np.ndarray, np.ndarray]  # classifier-FID statistics


class InceptionReference(NamedTuple):
  """Inception features and the FID statistics of the real test images."""

  feature_fn: Callable[[np.ndarray], np.ndarray]  # [b, H, W] -> [b, 2048]
  statistics: tuple[np.ndarray, np.ndarray]  # mean [2048], cov [2048, 2048]


class MemberEvaluation:
  """What an evaluator receives: one trained model and what its metrics
  need, each made at most once and only when asked for."""

  def __init__(self, member: restore.Member,
               test_set: Callable[[], data_lib.Dataset],
               judge: Judge | None, inception: InceptionReference | None,
               settings: Settings):
    self.member = member
    self._test_set = test_set
    self.judge = judge
    self.inception = inception
    self.settings = settings

  @functools.cached_property
  def test(self) -> data_lib.Dataset:
    """The test images as the member was trained on them."""
    return self._test_set()

  @functools.cached_property
  def samples(self) -> tuple[np.ndarray, np.ndarray | None]:
    """(images [S, H, W], the requested classes [S] of a CVAE, else None):
    Settings.num_samples prior samples (a CVAE's balanced over classes)."""
    model, settings = self.member.model, self.settings
    num_classes = getattr(model, 'num_classes', 0)
    labels, num = None, settings.num_samples
    if num_classes:
      labels = classifier_metrics.balanced_labels(num_classes,
                                                  num // num_classes)
      num = len(labels)
    images = classifier_metrics.prior_samples(
        model, self.member.params, self.member.hparams, num,
        jax.random.fold_in(jax.random.PRNGKey(settings.seed), 1), labels,
        settings.batch_size, self.member.batch_stats)
    return images, labels

  @functools.cached_property
  def sample_probabilities(self) -> np.ndarray:
    """The classifier's class probabilities of the prior samples."""
    return classifier_metrics.classifier_probabilities(
        self.judge.model, self.judge.params, self.samples[0],
        self.settings.batch_size)

  def sample_facts(self, classifier: bool = True) -> dict:
    """The sample count (and the classifier's SHA-256) to store beside a
    number of prior samples."""
    facts = {'sample_count': len(self.samples[0])}
    if classifier:
      facts['classifier_sha256'] = self.judge.sha256
    return facts


# The facts sample_facts() stores beside a number of prior samples, for the
# `yields` of the metrics that store them.
SAMPLE_COUNT = Output('prior samples the numbers were computed from', None)
CLASSIFIER_SHA256 = Output('SHA-256 of the classifier that judged them', None)
