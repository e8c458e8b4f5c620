"""confusion and reconstruction_confusion: which digits the classifier reads
in prior samples, and in reconstructions of the test images.

Each writes its record (confusion.json, reconstruction_confusion.json) and
figure into the model's directory (member_NNN/ for a sweep member).
"""

from pathlib import Path

import numpy as np

from vae_jax import workdir as workdir_lib
from vae_jax.evaluation import classifier_metrics
from vae_jax.evaluation import member_evaluation
from vae_jax.evaluation import registry


@registry.register(
    'confusion',
    'CVAE: requested against predicted class of prior samples; VAE: '
    'histogram of predicted classes. Saved as confusion.json and its figure.',
    needs=('prior', 'classifier'),
    yields={
        'sample_class_accuracy': registry.Output(
            'CVAE: share of prior samples classified as the class requested',
            '.3f', better='higher'),
        'sample_count': member_evaluation.SAMPLE_COUNT,
        'classifier_sha256': member_evaluation.CLASSIFIER_SHA256,
    })
def evaluate_confusion(evaluation: registry.MemberEvaluation) -> dict:
  probabilities = evaluation.sample_probabilities
  _, labels = evaluation.samples
  predicted = np.argmax(probabilities, axis=-1)
  classes = probabilities.shape[-1]
  numbers = evaluation.sample_facts()
  record = {'classifier_sha256': evaluation.judge.sha256,
            'num_samples': len(predicted), 'seed': evaluation.settings.seed}
  if labels is not None:
    matrix = classifier_metrics.confusion_matrix(labels, predicted, classes)
    accuracy = float(np.trace(matrix) / len(predicted))
    record.update(kind='requested_vs_predicted', matrix=matrix.tolist(),
                  accuracy=accuracy)
    numbers['sample_class_accuracy'] = accuracy
  else:
    record.update(kind='predicted_histogram', histogram=
                  classifier_metrics.class_histogram(predicted,
                                                     classes).tolist())
  _write(record, evaluation.member.directory, workdir_lib.CONFUSION_FILE)
  return numbers


@registry.register(
    'reconstruction_confusion',
    'True digit of each test image against the classifier\'s digit for its '
    'reconstruction (decoded posterior mean). Saved as '
    'reconstruction_confusion.json and its figure.',
    needs=('test_set', 'classifier'),
    yields={
        'recon_class_accuracy': registry.Output(
            'share of test reconstructions classified as their true digit',
            '.3f', better='higher'),
        'classifier_sha256': member_evaluation.CLASSIFIER_SHA256,
    })
def evaluate_reconstruction_confusion(
    evaluation: registry.MemberEvaluation) -> dict:
  member, test, judge = evaluation.member, evaluation.test, evaluation.judge
  batch_size = evaluation.settings.batch_size
  images = test.test_images.astype(np.float32) / 255
  conditional = getattr(member.model, 'num_classes', 0)
  reconstructed = classifier_metrics.reconstructions(
      member.model, member.params, member.hparams, images,
      test.test_labels if conditional else None, batch_size,
      member.batch_stats)
  predicted = np.argmax(classifier_metrics.classifier_probabilities(
      judge.model, judge.params, reconstructed, batch_size), axis=-1)
  matrix = classifier_metrics.confusion_matrix(test.test_labels, predicted)
  accuracy = float(np.trace(matrix) / len(predicted))
  _write({'kind': 'true_vs_reconstruction', 'matrix': matrix.tolist(),
          'accuracy': accuracy, 'num_images': len(predicted),
          'classifier_sha256': judge.sha256},
         member.directory, workdir_lib.RECONSTRUCTION_CONFUSION_FILE)
  return {'recon_class_accuracy': accuracy, 'classifier_sha256': judge.sha256}


def plot_confusion(confusion: dict, directory: Path) -> Path:
  """confusion_matrix.png (CVAE: requested vs predicted digit),
  class_histogram.png (VAE: predicted digits of prior samples) or
  reconstruction_confusion.png (true digit vs digit read in the
  reconstruction)."""
  from vae_jax import plots  # matplotlib only when figures are drawn
  if confusion['kind'] == 'true_vs_reconstruction':
    return plots.plot_confusion_matrix(
        np.asarray(confusion['matrix']),
        directory / 'reconstruction_confusion.png',
        f'{confusion["num_images"]:,} test reconstructions: '
        f'{confusion["accuracy"]:.1%} read as their digit',
        row_label='true digit of the test image', count_label='test images')
  count = confusion['num_samples']
  if confusion['kind'] == 'requested_vs_predicted':
    return plots.plot_confusion_matrix(
        np.asarray(confusion['matrix']), directory / 'confusion_matrix.png',
        f'{count:,} class-conditional samples: '
        f'{confusion["accuracy"]:.1%} classified as requested')
  return plots.plot_class_histogram(
      np.asarray(confusion['histogram']), directory / 'class_histogram.png',
      f'What the classifier sees in {count:,} prior samples')


def _write(record: dict, directory: Path, name: str) -> None:
  directory.mkdir(exist_ok=True)
  workdir_lib.atomic_write_json(directory / name, record)
  plot_confusion(record, directory)
