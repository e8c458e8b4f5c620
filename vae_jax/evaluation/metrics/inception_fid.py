"""fid: the Inception FID (pytorch-fid's network and weights) of prior
samples against the test images."""

import numpy as np

from vae_jax.evaluation import fid as fid_lib
from vae_jax.evaluation import member_evaluation
from vae_jax.evaluation import registry


@registry.register(
    'fid',
    'Inception FID (pytorch-fid\'s network and weights) of prior samples '
    'against the test images; needs the weights (see '
    'vae_jax.evaluation.inception_weights).',
    needs=('prior', 'inception'),
    yields={
        'fid': registry.Output(
            'Inception FID of prior samples against the test images',
            better='lower'),
        'sample_count': member_evaluation.SAMPLE_COUNT,
    })
def evaluate(evaluation: registry.MemberEvaluation) -> dict:
  return {**evaluation.sample_facts(classifier=False),
          'fid': inception_fid(evaluation.samples[0], evaluation.inception,
                               evaluation.settings.batch_size)}


def inception_fid(images: np.ndarray,
                  inception: member_evaluation.InceptionReference,
                  batch_size: int) -> float:
  """Inception FID of images [N, H, W] in [0, 1] against the test images."""
  statistics = fid_lib.accumulate_statistics(inception.feature_fn, images,
                                             batch_size,
                                             progress='Inception FID samples')
  return fid_lib.frechet_distance(*statistics, *inception.statistics)
