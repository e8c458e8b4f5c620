"""A trained VAE back from its workdir: NumPy arrays in, NumPy arrays out.

  model = vae_jax.load_model('workdirs/default')           # a run
  model = vae_jax.load_model('workdirs/study_d', member=3)  # a sweep member
  codes = model.encode(images)        # [B, latent_size] posterior means
  decoded = model.decode(codes)       # [B, H, W]

Images, given and returned, are floats in [0, 1] of shape [B, H, W] (the
data sets hold uint8 grey levels: divide them by 255). The parameters are
those of the checkpoint the workdir's results.json was written from
(vae_jax.restore), so the model is the one its results describe.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jax
import numpy as np

from vae_jax import data as data_lib
from vae_jax import objectives
from vae_jax import restore
from vae_jax import results_table
from vae_jax import train
from vae_jax import workdir as workdir_lib


class TrainedModel:
  """One trained VAE: a run, or one member of a sweep.

  Attributes:
    config: the config it was trained with (a sweep member's own).
    member: its index in the sweep; None for a run.
    epoch: the epoch of the checkpoint it was restored from.
    directory: its own files (the run's workdir, or the member's
      member_NNN/ of the sweep).
    image_shape: (H, W) of the images it encodes and decodes.
    latent_size: the width of its codes.
    num_classes: 0, or the number of labels a conditional VAE takes.
  """

  def __init__(self, member: restore.Member, image_shape: tuple[int, int]):
    self.config = member.config
    self.member = member.index
    self.epoch = member.epoch
    self.directory = member.directory
    self.image_shape = tuple(image_shape)
    self.latent_size = member.config.model.latent_size
    self.num_classes = member.config.model.num_classes
    self._model = member.model
    self._params = member.params
    # A BatchNorm model normalises with its running averages.
    self._batch_stats = member.batch_stats
    self._hparams = member.hparams
    # A sweep member lives in its group's model, built at the group's
    # largest latent size; its own dimensions are the first latent_size,
    # the rest masked to 0 (vae_jax.train.Hyperparams.latent_mask).
    self._capacity = member.hparams.latent_mask.shape[-1]
    model = member.model
    variables = train.model_variables
    self._encode = jax.jit(lambda params, stats, images, labels: model.apply(
        variables(params, stats), images, labels, method=model.encode).mean)
    self._decode = jax.jit(lambda params, stats, z, labels: jax.nn.sigmoid(
        model.apply(variables(params, stats), z, labels,
                    method=model.decode)))
    self._reconstruct = jax.jit(train.make_reconstruct(model))
    self._sample = jax.jit(
        lambda params, stats, hparams, key, labels: jax.nn.sigmoid(
            model.apply(variables(params, stats), objectives.sample_prior(
                key, labels.shape[0], hparams.prior_mean, hparams.prior_std,
                hparams.latent_mask), labels, method=model.decode)))

  def __repr__(self) -> str:
    where = (str(self.directory) if self.member is None
             else f'member {self.member} of {self.directory.parent}')
    return (f'TrainedModel({self.config.model.name}, latent_size='
            f'{self.latent_size}, images {self.image_shape[0]}x'
            f'{self.image_shape[1]}, epoch {self.epoch}, {where})')

  def encode(self, images, labels=None) -> np.ndarray:
    """The posterior means of `images`: float32 [B, latent_size].

    images: floats in [0, 1], [B, H, W]. labels: int [B], a conditional
    VAE's classes (only for one).
    """
    images = self._checked_images(images, 'encode')
    labels = self._checked_labels(labels, len(images), 'encode')
    means = self._encode(self._params, self._batch_stats, images, labels)
    return np.asarray(means)[:, :self.latent_size]

  def decode(self, codes, labels=None) -> np.ndarray:
    """The decoder's pixel means of latent codes: float32 [B, H, W] in
    [0, 1] (the sigmoid of its logits).

    codes: [B, latent_size] (encode's output, or points of the latent
    space). labels: as for `encode`.
    """
    codes = np.asarray(codes)
    if (codes.ndim != 2 or codes.shape[1] != self.latent_size
        or not np.issubdtype(codes.dtype, np.number)):
      raise ValueError(
          f'decode: codes must be numbers of shape [B, {self.latent_size}] '
          f'(this model\'s latent size), got {codes.dtype} {codes.shape}.')
    labels = self._checked_labels(labels, len(codes), 'decode')
    padded = np.zeros((len(codes), self._capacity), np.float32)
    padded[:, :self.latent_size] = codes
    return np.asarray(self._decode(self._params, self._batch_stats, padded, labels))

  def sample(self, num: int, seed: int = 0, labels=None) -> np.ndarray:
    """`num` images decoded from codes drawn from the prior the model was
    trained with: float32 [num, H, W] in [0, 1]. The same seed gives the
    same images.

    labels: int [num], a conditional VAE's classes (only for one).
    """
    if not self.config.model.variational:
      raise ValueError('sample: this model is a plain autoencoder '
                       '(config.model.variational = False), whose codes '
                       'follow no prior to sample from; decode codes of '
                       'your own instead.')
    if not (isinstance(num, (int, np.integer)) and num >= 1):
      raise ValueError(f'sample: num = {num!r}; give the number of images, '
                       'an integer >= 1.')
    if not (isinstance(seed, (int, np.integer)) and 0 <= seed < 2**32):
      raise ValueError(f'sample: seed = {seed!r}; give an integer from 0 to '
                       '2**32 - 1.')
    labels = self._checked_labels(labels, int(num), 'sample')
    return np.asarray(self._sample(self._params, self._batch_stats,
                                   self._hparams, jax.random.PRNGKey(seed),
                                   labels))

  def reconstruct(self, images, labels=None) -> np.ndarray:
    """`images` through the model: the decoded posterior means, float32
    [B, H, W] in [0, 1], as the run's reconstruction figures show them
    (decode(encode(images)))."""
    images = self._checked_images(images, 'reconstruct')
    labels = self._checked_labels(labels, len(images), 'reconstruct')
    return np.asarray(self._reconstruct(self._params, self._hparams, images,
                                        labels, self._batch_stats))

  def elbo(self, images, labels=None) -> np.ndarray:
    """Each image's bound, minus its training loss: float32 [B], nats.

    The objective the config trains: reconstruction + beta * KL for
    config.objective 'elbo' (with beta = 1 and the 'bce' loss, the ELBO,
    a lower bound on log p(x)), the k-sample bound for 'vae' and 'iwae'.
    One posterior sample per image, drawn as the run's evaluation draws
    them (batches of config.eval_batch_size, keys from the seed): for the
    run's test images in their order, the mean is minus the test loss of
    its metrics.jsonl. A 'dynamic_binarized' run's images are binarised
    as its evaluation binarises them; give a 'static_binarized' run
    binary images, as its test set was.
    """
    images = self._checked_images(images, 'elbo')
    labels = self._checked_labels(labels, len(images), 'elbo')
    terms = self._evaluate_terms(self._params, self._hparams,
                                 {'images': images, 'labels': labels},
                                 self._batch_stats)
    return -np.asarray(terms.loss)

  @functools.cached_property
  def _evaluate_terms(self):
    # Built on first use: a perceptual loss loads the MNIST classifier, which
    # encoding or sampling does not need.
    return jax.jit(train.make_evaluate_terms(
        self._model, self.config.eval_batch_size,
        self.config.data.preprocessing,
        train.reconstruction_loss_for(self.config),
        **train.objective_options(self.config)))

  def _checked_images(self, images, method: str) -> np.ndarray:
    """images as float32 [B, H, W], or one error saying what is wrong."""
    images = np.asarray(images)
    height, width = self.image_shape
    if not np.issubdtype(images.dtype, np.floating):
      given = ('uint8 grey levels: divide them by 255'
               if images.dtype == np.uint8 else str(images.dtype))
      raise ValueError(f'{method}: images must be floats in [0, 1], got '
                       f'{given}.')
    if images.shape == self.image_shape:
      raise ValueError(f'{method}: images must be a batch [B, {height}, '
                       f'{width}], got one image {images.shape}: pass '
                       'images[None].')
    if images.ndim != 3 or images.shape[1:] != self.image_shape:
      raise ValueError(f'{method}: images must be [B, {height}, {width}] '
                       f'(the {height}x{width} images the model was trained '
                       f'on), got {images.shape}.')
    if images.size and not (np.all(np.isfinite(images))
                            and images.min() >= 0 and images.max() <= 1):
      raise ValueError(f'{method}: images must be in [0, 1], got values from '
                       f'{images.min()} to {images.max()}.')
    return images.astype(np.float32)

  def _checked_labels(self, labels, count: int, method: str) -> np.ndarray:
    """The labels the model's functions take: int32 [count] (zeros, which
    an unconditional model ignores, when it is not conditional)."""
    if not self.num_classes:
      if labels is not None:
        raise ValueError(f'{method}: this model is not conditional '
                         '(config.model.num_classes = 0); leave labels out.')
      return np.zeros(count, np.int32)
    if labels is None:
      raise ValueError(f'{method}: this model is a conditional VAE of '
                       f'{self.num_classes} classes; pass labels, int [{count}]'
                       f' in 0 .. {self.num_classes - 1}.')
    labels = np.asarray(labels)
    if (labels.shape != (count,) or not np.issubdtype(labels.dtype, np.integer)
        or (count and not 0 <= labels.min() <= labels.max()
            < self.num_classes)):
      raise ValueError(f'{method}: labels must be int [{count}] in 0 .. '
                       f'{self.num_classes - 1}, got {labels.dtype} '
                       f'{labels.shape}.')
    return labels.astype(np.int32)


def load_model(workdir: str | Path, member: int | None = None
               ) -> TrainedModel:
  """The trained model of a finished run's workdir, or of one member of a
  sweep's (`member`: its index, as results.md lists them).

  Raises:
    FileNotFoundError: workdir holds no run or sweep, or no results yet.
    ValueError: `member` is missing for a sweep, given for a run, out of
      range, or names a member that diverged or has not trained yet.
  """
  workdir = Path(workdir)
  config = restore.load_run_config(workdir)
  results_path = workdir / workdir_lib.RESULTS_FILE
  if not results_path.exists():
    raise FileNotFoundError(
        f'{workdir} has no {results_path.name} yet: its training has not '
        'finished. Run the same command (or call) again to finish it.')
  results = json.loads(results_path.read_text())
  if 'sweep' in config:
    count = len(config.sweep)
    if member is None:
      raise ValueError(f'{workdir} is a sweep of {count} members: pass '
                       f'member=0 .. {count - 1} (its results.md lists them).')
    if not (isinstance(member, (int, np.integer)) and 0 <= member < count):
      raise ValueError(f'member = {member!r}: {workdir} is a sweep of {count} '
                       f'members; pass 0 .. {count - 1}.')
    status = {r['member']: r for r in results}[member].get('status',
                                                           'finished')
    if status != 'finished':
      what = ('has not trained yet: run the sweep again to finish it'
              if status == results_table.PENDING
              else 'holds no trained model')
      raise ValueError(f'Member {member} of {workdir} {what} ({status}).')
    skip = frozenset(range(count)) - {int(member)}
  else:
    if member is not None:
      raise ValueError(f'{workdir} is a single run, not a sweep: leave '
                       f'member out (got member={member!r}).')
    if results.get('status') == 'diverged':
      raise ValueError(f'{workdir} holds no trained model: '
                       f'{results.get("message", "its training diverged.")}')
    skip = frozenset()
  image_shape = _image_shape(workdir, config)
  restored = restore.restore_members(workdir, config, image_shape, skip)
  return TrainedModel(next(m for m in restored if m.index == member),
                      image_shape)


def _image_shape(workdir: Path, config) -> tuple[int, int]:
  """The (H, W) the workdir's data.json records, else that of the data set
  its config names (a workdir written before data.json held the shape)."""
  recorded = workdir_lib.recorded_image_shape(workdir)
  if recorded is not None:
    return recorded
  name = config.data.name
  if name not in data_lib.dataset_names():
    raise ValueError(f'{workdir} records no image shape and trained on '
                     f'{name!r}, which is not a registered data set; '
                     'register it (vae_jax.data.register_dataset) first.')
  return tuple(data_lib.dataset_spec(name).image_shape)
