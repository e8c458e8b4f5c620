"""iwae: the importance-weighted estimate of the test negative log-likelihood."""

import jax

from vae_jax.evaluation import likelihood
from vae_jax.evaluation import registry


@registry.register(
    'iwae',
    'IWAE estimate of the test NLL -log p(x) in nats (Bernoulli decoders), '
    'with --iwae_samples importance samples per image.',
    needs=('test_set', 'likelihood'),
    settings=('iwae_samples', 'num_images', 'seed'),
    tuning=('iwae_chunk', 'iwae_batch'),
    yields={
        'iwae_nll': registry.Output(
            'IWAE estimate of -log p(x) on the test images, nats per image',
            better='lower'),
        'iwae_samples': registry.Output(
            'importance samples per test image', None),
        'iwae_num_images': registry.Output(
            'test images the estimate averages over', None),
    })
def evaluate(evaluation: registry.MemberEvaluation) -> dict:
  member, test, settings = (evaluation.member, evaluation.test,
                            evaluation.settings)
  count = settings.num_images or len(test.test_images)
  nll = likelihood.iwae_nll(
      member.model, member.params, member.hparams, test.test_images[:count],
      test.test_labels[:count],
      jax.random.fold_in(jax.random.PRNGKey(settings.seed), 0),
      settings.iwae_samples, settings.iwae_chunk,
      member.config.data.preprocessing, member.config.loss,
      settings.iwae_batch, member.batch_stats)
  return {'iwae_nll': nll, 'iwae_samples': settings.iwae_samples,
          'iwae_num_images': count}
