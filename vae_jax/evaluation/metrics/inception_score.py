"""inception_score: the Inception Score of prior samples, judged by the
MNIST classifier in Inception's place."""

from vae_jax.evaluation import classifier_metrics
from vae_jax.evaluation import member_evaluation
from vae_jax.evaluation import registry


@registry.register(
    'inception_score',
    'Inception Score of prior samples, the MNIST classifier in Inception\'s '
    'place.',
    needs=('prior', 'classifier'),
    yields={
        'inception_score': registry.Output(
            'Inception Score of prior samples (1 to 10)', better='higher'),
        'inception_score_std': registry.Output(
            'its standard deviation over splits of the samples', None),
        'sample_count': member_evaluation.SAMPLE_COUNT,
        'classifier_sha256': member_evaluation.CLASSIFIER_SHA256,
    })
def evaluate(evaluation: registry.MemberEvaluation) -> dict:
  score, std = classifier_metrics.inception_score(
      evaluation.sample_probabilities)
  return {**evaluation.sample_facts(), 'inception_score': score,
          'inception_score_std': std}
