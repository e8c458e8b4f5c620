"""classifier_fid: the Frechet distance of the classifier's features of
prior samples to those of the test images."""

from vae_jax.evaluation import classifier_metrics
from vae_jax.evaluation import member_evaluation
from vae_jax.evaluation import registry


@registry.register(
    'classifier_fid',
    'Frechet distance of the classifier\'s penultimate features, prior '
    'samples against the test images.',
    needs=('prior', 'classifier'),
    yields={
        'classifier_fid': registry.Output(
            'Frechet distance of classifier features, samples to test images',
            better='lower'),
        'sample_count': member_evaluation.SAMPLE_COUNT,
        'classifier_sha256': member_evaluation.CLASSIFIER_SHA256,
    })
def evaluate(evaluation: registry.MemberEvaluation) -> dict:
  judge = evaluation.judge
  return {**evaluation.sample_facts(),
          'classifier_fid': classifier_metrics.classifier_fid(
              judge.model, judge.params, evaluation.samples[0],
              judge.reference, evaluation.settings.batch_size)}
