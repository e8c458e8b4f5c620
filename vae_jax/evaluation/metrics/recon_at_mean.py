"""recon_at_mean: the test reconstruction loss of the decoded posterior mean."""

import jax

from vae_jax import train
from vae_jax.data import pipeline
from vae_jax.evaluation import registry


@registry.register(
    'recon_at_mean',
    'Test reconstruction loss (config.loss, per image) of the decoded '
    'posterior mean; test_recon decodes a sample.',
    needs=('test_set',), tuning=('batch_size',),
    yields={'test_recon_at_mean': registry.Output(
        'test reconstruction loss of the decoded posterior mean, per image')})
def evaluate(evaluation: registry.MemberEvaluation) -> dict:
  """Next to test_recon (a decoded sample) it shows how much of that term
  the posterior's spread costs."""
  member, test = evaluation.member, evaluation.test
  evaluate_fn = jax.jit(train.make_evaluate(
      member.model, evaluation.settings.batch_size,
      member.config.data.preprocessing,
      train.reconstruction_loss_for(member.config), decode_mean=True))
  metrics = evaluate_fn(member.params, member.hparams,
                        pipeline.device_data(test.test_images,
                                             test.test_labels),
                        member.batch_stats)
  return {'test_recon_at_mean': float(metrics['recon'])}
