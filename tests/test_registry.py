"""The one registry every kind of entry (model, loss, bound, data set,
metric) is kept in."""

import pytest

from vae_jax.registry import Registry


def test_a_name_is_taken_once_unless_the_same_entry_comes_again():
  models = Registry('model', 'config.model.name', reserved=('elbo',))
  first = object()
  assert models.add('a', first) is first
  assert models.add('a', first) is first  # a module imported twice
  with pytest.raises(ValueError, match=r"model named 'a' is already "
                     r'registered \(the first\); choose another name'):
    models.add('a', object(), describe=lambda entry: 'the first')
  with pytest.raises(ValueError, match="'elbo' is already registered"):
    models.add('elbo', object())
  assert models.lookup('a') is first


def test_an_unknown_name_lists_the_known_ones_in_registration_order():
  kinds = Registry('data set', 'config.data.name', reserved=('z',))
  for name in ('b', 'a'):
    kinds.add(name, name.upper())
  with pytest.raises(ValueError, match=r"Unknown data set 'c' in "
                     r'config.data.name; choose one of b, a, z\. A data set '
                     'defined outside vae_jax is known once the module'):
    kinds.lookup('c')
  assert kinds.names() == ('b', 'a')


def test_a_copy_is_a_registry_of_its_own():
  kinds = Registry('metric', reserved=('x',))
  kinds.add('a', 1)
  copied = kinds.copy()
  copied.add('b', 2)
  assert 'b' not in kinds and copied.names() == ('a', 'b')
  with pytest.raises(ValueError):
    copied.add('x', 3)
