"""Training, saving and loading the MNIST classifier, identified by the SHA-256 of its weights."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shlex
import shutil
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp

from vae_jax import data as data_lib
from vae_jax import workdir as workdir_lib
from vae_jax.models.classifier import MNISTClassifier

log = logging.getLogger(__name__)
INFO_FILE = workdir_lib.CLASSIFIER_INFO_FILE
WEIGHTS_DIR = workdir_lib.CLASSIFIER_WEIGHTS_DIR
# The lowest recorded test accuracy a classifier may judge samples with:
# vae_jax's reaches about 99% in 5 epochs; one far below reads digits
# wrongly and its IS, FIDs and confusion matrices say nothing of the VAE.
MIN_TEST_ACCURACY = 0.95
# What a classifier is trained with (launch.train_classifier's flags).
SETTINGS = ('epochs', 'batch_size', 'learning_rate', 'seed')
# The data set the classifier learns (launch.train_classifier), and the only
# registered one it can judge: it would read Fashion-MNIST's clothes as
# digits, and its classes, features and scores would say nothing.
TRAINED_ON = 'mnist'
IMAGE_SHAPE = (28, 28)


class ClassifierError(ValueError):
  """A classifier that cannot judge: settings out of range, too weak, or
  images it was not trained on."""


class ClassifierNotFoundError(ClassifierError, FileNotFoundError):
  """No trained classifier where one was looked for."""

  def __init__(self, message: str, directory: Path):
    super().__init__(message)
    self.directory = directory


def train_command(directory: str | Path, data_dir: str | None = None) -> str:
  """The command that trains the classifier into `directory`."""
  command = ('python -m launch.train_classifier '
             f'--workdir={shlex.quote(str(directory))}')
  return command + (f' --data_dir={shlex.quote(str(data_dir))}'
                    if data_dir else '')


def check_judges(dataset_name: str, image_shape: tuple[int, ...],
                 purpose: str) -> None:
  """Raises ClassifierError unless the classifier can judge these images.

  Refused: another image shape, or a registered data set other than
  TRAINED_ON. An unregistered, in-memory data set is judged by its shape.

  purpose: what needs the classifier, to start the message.
  """
  other_data_set = (dataset_name in data_lib.dataset_names()
                    and dataset_name != TRAINED_ON)
  if tuple(image_shape) == IMAGE_SHAPE and not other_data_set:
    return
  raise ClassifierError(
      f'{purpose} use the classifier trained on {TRAINED_ON} '
      f'({data_lib.dataset_spec(TRAINED_ON).description}); it cannot judge '
      f'{dataset_name} ({image_shape[0]}x{image_shape[1]} images): what it '
      'says of them would mean nothing.')


def weights_sha256(params) -> str:
  """SHA-256 over every parameter's path, shape, dtype and float32 bytes."""
  digest = hashlib.sha256()
  for path, leaf in sorted(jax.tree_util.tree_leaves_with_path(params),
                           key=lambda item: jax.tree_util.keystr(item[0])):
    array = np.asarray(leaf, np.float32)
    digest.update(f'{jax.tree_util.keystr(path)}:{array.shape}'.encode())
    digest.update(array.tobytes())
  return digest.hexdigest()


def accuracy(model: MNISTClassifier, params, images: np.ndarray,
             labels: np.ndarray, batch_size: int = 1000) -> float:
  """Fraction of uint8 images [N, H, W] classified as their labels [N]."""
  predict = jax.jit(lambda x: jnp.argmax(
      model.apply({'params': params}, x.astype(jnp.float32) / 255), -1))
  correct = sum(int(np.sum(np.asarray(predict(images[i:i + batch_size]))
                           == labels[i:i + batch_size]))
                for i in range(0, len(images), batch_size))
  return correct / len(images)


def train_classifier(dataset: data_lib.Dataset, num_epochs: int = 5,
                     batch_size: int = 64, learning_rate: float = 1e-3,
                     seed: int = 0):
  """Adam on cross-entropy, one compiled epoch at a time; returns (model, params)."""
  model = MNISTClassifier()
  params = model.init(jax.random.PRNGKey(seed),
                      jnp.zeros((1, *dataset.image_shape)))['params']
  optimizer = optax.adam(learning_rate)
  opt_state = optimizer.init(params)
  images = jnp.asarray(dataset.train_images)
  labels = jnp.asarray(dataset.train_labels)

  def step(carry, batch_indices):
    params, opt_state = carry
    x = images[batch_indices].astype(jnp.float32) / 255

    def loss_fn(params):
      logits = model.apply({'params': params}, x)
      return optax.softmax_cross_entropy_with_integer_labels(
          logits, labels[batch_indices]).mean()

    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return (optax.apply_updates(params, updates), opt_state), loss

  @jax.jit
  def epoch(params, opt_state, key):
    num_steps = images.shape[0] // batch_size
    order = jax.random.permutation(key, images.shape[0])
    batches = order[:num_steps * batch_size].reshape(num_steps, batch_size)
    (params, opt_state), losses = jax.lax.scan(step, (params, opt_state),
                                               batches)
    return params, opt_state, losses.mean()

  for e in range(1, num_epochs + 1):
    start = time.perf_counter()
    params, opt_state, loss = epoch(params, opt_state,
                                    jax.random.PRNGKey(seed * 1000 + e))
    loss = float(loss)  # waits for the epoch, so the timing is honest
    seconds = time.perf_counter() - start
    log.info('classifier epoch %d/%d  loss %.4f  %.0f img/s  %.1f s%s', e,
             num_epochs, loss, len(dataset.train_images) / seconds, seconds,
             ' (compilation included)' if e == 1 else '')
  return model, params


def save_classifier(directory: str | Path, params, info: dict) -> str:
  """Writes the weights (orbax) and then classifier.json with their SHA-256;
  returns it. classifier.json is written last: a directory without it holds
  no classifier, and weights left there by a killed save are replaced."""
  directory = Path(directory).absolute()
  if (directory / INFO_FILE).exists():
    raise FileExistsError(f'{directory} already holds a classifier; choose '
                          'another directory or delete it first.')
  directory.mkdir(parents=True, exist_ok=True)
  if workdir_lib.marked_kind(directory) is None:
    workdir_lib.mark(directory, 'classifier')
  if (directory / WEIGHTS_DIR).exists():
    shutil.rmtree(directory / WEIGHTS_DIR)  # a save killed before its json
  sha = weights_sha256(params)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(directory / WEIGHTS_DIR, params)
  workdir_lib.atomic_write_json(directory / INFO_FILE, dict(info, sha256=sha))
  return sha


def check_settings(num_train: int, epochs: int, batch_size: int,
                   learning_rate: float, seed: int) -> None:
  """Raises ClassifierError, naming the flag, on a value that cannot train."""
  problems = []
  if not (isinstance(epochs, int) and epochs >= 1):
    problems.append(f'--epochs={epochs}: give 1 or more')
  if not (isinstance(batch_size, int) and 1 <= batch_size <= num_train):
    problems.append(f'--batch_size={batch_size}: give 1 to {num_train} (the '
                    'training images)')
  if not (isinstance(learning_rate, (int, float)) and
          math.isfinite(learning_rate) and learning_rate > 0):
    problems.append(f'--learning_rate={learning_rate}: give a finite number '
                    '> 0')
  if not (isinstance(seed, int) and 0 <= seed < 2**32):
    problems.append(f'--seed={seed}: give 0 to 2**32 - 1')
  if problems:
    raise ClassifierError('Cannot train the classifier: '
                          + '; '.join(problems) + '.')


def train_into(directory: str | Path, dataset: data_lib.Dataset,
               epochs: int = 5, batch_size: int = 64,
               learning_rate: float = 1e-3, seed: int = 0,
               overwrite: bool = False) -> dict:
  """Trains the classifier into `directory` under the workdir rules; returns
  its classifier.json.

  The directory must be new, empty or a classifier workdir (marker, lock).
  One trained with the same settings is kept as it is; one with other
  settings is replaced only with `overwrite`. A save killed before its
  classifier.json is started over.

  Raises:
    ClassifierError: a setting out of range (before anything is written).
    workdir.WorkdirError: the directory is not a classifier's, is in use,
      or holds another classifier and overwrite is False.
  """
  directory = Path(directory).absolute()
  check_settings(len(dataset.train_images), epochs, batch_size, learning_rate,
                 seed)
  settings = {'epochs': epochs, 'batch_size': batch_size,
              'learning_rate': learning_rate, 'seed': seed}
  lock, _ = workdir_lib.claim(directory, 'classifier')
  try:
    info_path = directory / INFO_FILE
    if info_path.exists():
      info = json.loads(info_path.read_text())
      differences = [f'{k}: {info.get(k)!r} -> {v!r}'
                     for k, v in settings.items() if info.get(k) != v]
      if not differences:
        log.info('%s already holds a classifier trained with these settings '
                 '(test accuracy %.2f%%).', directory,
                 100 * info.get('test_accuracy', float('nan')))
        return info
      if not overwrite:
        raise workdir_lib.WorkdirError(
            f'{directory} holds a classifier trained with other settings:\n  '
            + '\n  '.join(differences) + '\nChoose a new --workdir, or pass '
            '--overwrite to replace it.')
      workdir_lib.delete_owned(directory, 'classifier')
    model, params = train_classifier(dataset, epochs, batch_size,
                                     learning_rate, seed)
    test_accuracy = accuracy(model, params, dataset.test_images,
                             dataset.test_labels)
    log.info('Classifier test accuracy %.2f%%.', 100 * test_accuracy)
    info = dict(settings, test_accuracy=test_accuracy)
    sha = save_classifier(directory, params, info)
    return dict(info, sha256=sha)
  finally:
    lock.release()


def check_accuracy(info: dict, directory: str | Path,
                   minimum: float = MIN_TEST_ACCURACY) -> None:
  """Raises ClassifierError when the recorded test accuracy is below
  `minimum` (or not recorded)."""
  recorded = info.get('test_accuracy')
  if minimum <= 0 or (isinstance(recorded, (int, float))
                      and recorded >= minimum):
    return
  shown = ('no test accuracy recorded' if recorded is None
           else f'test accuracy {100 * recorded:.2f}%')
  raise ClassifierError(
      f'The classifier in {directory} has {shown}, below the '
      f'{100 * minimum:.0f}% it needs to judge digits: metrics from it would '
      'not mean anything. Train one with `python -m launch.train_classifier` '
      '(5 epochs reach about 99%), or lower --min_classifier_accuracy if you '
      'mean to use this one.')


def load_classifier(directory: str | Path):
  """(model, params, info) from save_classifier's directory, hash-verified."""
  directory = Path(directory).absolute()
  info_path = directory / INFO_FILE
  if not info_path.exists():
    raise ClassifierNotFoundError(
        f'No trained classifier in {directory} ({INFO_FILE} missing). Train '
        f'one (about 10 minutes on 2 CPU cores): {train_command(directory)}',
        directory)
  info = json.loads(info_path.read_text())
  model = MNISTClassifier()
  like = model.init(jax.random.PRNGKey(0),
                    jnp.zeros((1, *IMAGE_SHAPE)))['params']
  with ocp.StandardCheckpointer() as checkpointer:
    params = checkpointer.restore(directory / 'weights', like)
  sha = weights_sha256(params)
  if sha != info['sha256']:
    raise data_lib.ChecksumError(
        f'Classifier weights in {directory} have SHA-256 {sha}, but '
        f'{INFO_FILE} records {info["sha256"]}: the files are corrupted or '
        'were replaced. Retrain with launch.train_classifier.')
  return model, params, info
