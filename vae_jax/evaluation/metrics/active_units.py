"""active_units: latent units the posterior mean uses (Burda et al., 2016)."""

import jax
import numpy as np

from vae_jax.data import pipeline
from vae_jax.evaluation import registry

# Burda et al. (2016), section 5.2: a latent unit is active when the
# variance over 500 training images of its posterior mean exceeds 0.01.
IMAGES = 500
THRESHOLD = 1e-2


@registry.register(
    'active_units',
    f'Latent units whose posterior mean varies over {IMAGES} training '
    f'images by more than {THRESHOLD} (Burda et al., 2016).',
    needs=('test_set',), settings=('seed',),
    yields={'active_units': registry.Output(
        f'latent units whose posterior mean has variance > {THRESHOLD}', 'd')})
def evaluate(evaluation: registry.MemberEvaluation) -> dict:
  """The first IMAGES training images are binarised as trained, from the
  seed; units masked off (a smaller member of a sweep group) never count."""
  member, data = evaluation.member, evaluation.test
  images = data.train_images[:IMAGES]
  x = pipeline.to_model_input(
      jax.numpy.asarray(images), member.config.data.preprocessing,
      jax.random.fold_in(jax.random.PRNGKey(evaluation.settings.seed), 3))
  posterior = member.model.apply(
      member.variables, x,
      jax.numpy.asarray(data.train_labels[:IMAGES]),
      method=member.model.encode)
  variance = np.var(np.asarray(posterior.mean, np.float64), axis=0)
  active = (variance > THRESHOLD) & (np.asarray(member.hparams.latent_mask) > 0)
  return {'active_units': int(np.sum(active))}
