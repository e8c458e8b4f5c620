"""The MNIST classifier: learns, exposes its features, saves and loads hash-verified."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from vae_jax import classifier
from vae_jax import data
from vae_jax.models.classifier import MNISTClassifier, max_pool_2x2


def bars(count=640, seed=0) -> data.Dataset:
  """28x28 images whose label (0..3) is the quadrant holding a bright square."""
  rng = np.random.default_rng(seed)
  labels = rng.integers(0, 4, count).astype(np.int32)
  images = rng.integers(0, 40, (count, 28, 28)).astype(np.uint8)
  for i, label in enumerate(labels):
    top, left = 14 * (label // 2) + rng.integers(0, 6), 14 * (label % 2) + rng.integers(0, 6)
    images[i, top:top + 8, left:left + 8] = 255
  return data.Dataset('bars', images[:512], labels[:512], images[512:],
                      labels[512:], 'synthetic')


def test_max_pool_matches_numpy():
  x = np.random.default_rng(0).normal(size=(2, 6, 6, 3)).astype(np.float32)
  expected = x.reshape(2, 3, 2, 3, 2, 3).max(axis=(2, 4))
  np.testing.assert_array_equal(max_pool_2x2(jnp.asarray(x)), expected)


def test_features_have_the_documented_shapes():
  model = MNISTClassifier()
  params = model.init(jax.random.PRNGKey(0), jnp.zeros((1, 28, 28)))['params']
  features = model.apply({'params': params}, jnp.zeros((3, 28, 28)),
                         method=model.features)
  assert features['relu2'].shape == (3, 28, 28, 32)
  assert features['relu4'].shape == (3, 14, 14, 64)
  assert features['penultimate'].shape == (3, 128)
  assert features['logits'].shape == (3, 10)


def test_classifier_learns_and_round_trips(tmp_path):
  dataset = bars()
  model, params = classifier.train_classifier(dataset, num_epochs=3,
                                              batch_size=32)
  assert classifier.accuracy(model, params, dataset.test_images,
                             dataset.test_labels) > 0.9
  sha = classifier.save_classifier(tmp_path / 'clf', params, {'note': 'test'})
  _, loaded, info = classifier.load_classifier(tmp_path / 'clf')
  assert info['sha256'] == sha == classifier.weights_sha256(loaded)
  jax.tree.map(np.testing.assert_array_equal, loaded, params)
  with pytest.raises(FileExistsError):
    classifier.save_classifier(tmp_path / 'clf', params, {})
  # Another model's weights under the recorded hash are refused.
  info_path = tmp_path / 'clf' / classifier.INFO_FILE
  info['sha256'] = '0' * 64
  info_path.write_text(json.dumps(info))
  with pytest.raises(data.ChecksumError, match='SHA-256'):
    classifier.load_classifier(tmp_path / 'clf')


def test_missing_classifier_says_how_to_train_one(tmp_path):
  with pytest.raises(FileNotFoundError, match='launch.train_classifier'):
    classifier.load_classifier(tmp_path)


@pytest.mark.slow
def test_classifier_reaches_99_percent_on_mnist(real_mnist):
  model, params = classifier.train_classifier(real_mnist)  # 5 epochs, Adam 1e-3, batch 64
  assert classifier.accuracy(model, params, real_mnist.test_images,
                             real_mnist.test_labels) >= 0.99


def test_confusion_matrix_counts_requested_against_predicted():
  from vae_jax.evaluation.classifier_metrics import confusion_matrix
  requested = np.array([0, 0, 1, 2, 2, 2])
  predicted = np.array([0, 1, 1, 2, 0, 2])
  expected = np.zeros((3, 3), int)
  for r, p in zip(requested, predicted):
    expected[r, p] += 1
  np.testing.assert_array_equal(confusion_matrix(requested, predicted, 3),
                                expected)
