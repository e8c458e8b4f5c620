"""Training, saving and loading the MNIST classifier, identified by the SHA-256 of its weights."""

from __future__ import annotations

import hashlib
import json
import logging
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
INFO_FILE = 'classifier.json'


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
  """Writes the weights (orbax) and classifier.json with their SHA-256; returns it."""
  directory = Path(directory).absolute()
  if (directory / INFO_FILE).exists():
    raise FileExistsError(f'{directory} already holds a classifier; choose '
                          'another directory or delete it first.')
  sha = weights_sha256(params)
  with ocp.StandardCheckpointer() as checkpointer:
    checkpointer.save(directory / 'weights', params)
  workdir_lib.atomic_write_json(directory / INFO_FILE, dict(info, sha256=sha))
  return sha


def load_classifier(directory: str | Path):
  """(model, params, info) from save_classifier's directory, hash-verified."""
  directory = Path(directory).absolute()
  info_path = directory / INFO_FILE
  if not info_path.exists():
    raise FileNotFoundError(
        f'No trained classifier in {directory} ({INFO_FILE} missing). Train '
        'one: python -m launch.train_classifier --workdir=' + str(directory))
  info = json.loads(info_path.read_text())
  model = MNISTClassifier()
  like = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))['params']
  with ocp.StandardCheckpointer() as checkpointer:
    params = checkpointer.restore(directory / 'weights', like)
  sha = weights_sha256(params)
  if sha != info['sha256']:
    raise data_lib.ChecksumError(
        f'Classifier weights in {directory} have SHA-256 {sha}, but '
        f'{INFO_FILE} records {info["sha256"]}: the files are corrupted or '
        'were replaced. Retrain with launch.train_classifier.')
  return model, params, info
