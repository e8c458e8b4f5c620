"""Named entries of one kind (models, losses, bounds, data sets, metrics).

Each registry is filled by the modules that define its entries, vae_jax's
own and a user's alike: a saved config refers to an entry by its name, so a
name is taken once, and an unknown name is an error that lists the known
ones. A registry is a dict from name to entry, in registration order.
"""

from __future__ import annotations

from typing import Callable, Generic, Iterable, TypeVar

Entry = TypeVar('Entry')


class UnknownNameError(ValueError):
  """A config or flag names an entry no module has registered."""


class Registry(dict[str, Entry], Generic[Entry]):
  """name -> entry, for entries of one kind.

  Attributes:
    kind: what an entry is, in messages ('model', 'data set', ...).
    config_key: the config field that names an entry, if one does.
    reserved: names no entry may take: choices the config field offers
      besides the entries (the one-sample 'elbo' among the bounds).
  """

  def __init__(self, kind: str, config_key: str | None = None,
               reserved: Iterable[str] = ()):
    super().__init__()
    self.kind = kind
    self.config_key = config_key
    self.reserved = frozenset(reserved)

  def add(self, name: str, entry: Entry,
          same: Callable[[Entry, Entry], bool] = lambda a, b: a is b,
          describe: Callable[[Entry], str] = lambda entry: '') -> Entry:
    """Registers `entry` as `name`; returns it.

    Registering the same entry again (a module imported twice) is allowed:
    `same(known, entry)` says whether it is the same one.

    Raises:
      ValueError: the name is reserved or another entry has it.
    """
    known = self.get(name)
    if name in self.reserved or (known is not None
                                 and not same(known, entry)):
      held_by = describe(known) if known is not None else ''
      raise ValueError(
          f'A {self.kind} named {name!r} is already registered'
          f'{f" ({held_by})" if held_by else ""}; choose another name.')
    self[name] = entry
    return entry

  def copy(self) -> Registry[Entry]:
    """A registry of the same kind holding the same entries."""
    copied = Registry(self.kind, self.config_key, self.reserved)
    copied.update(self)
    return copied

  def names(self) -> tuple[str, ...]:
    """The registered names, in registration order."""
    return tuple(self)

  def lookup(self, name: str) -> Entry:
    """The entry registered as `name`.

    Raises:
      UnknownNameError: nothing is; the message lists what is, and how an
        entry defined outside vae_jax becomes known.
    """
    if name not in self:
      where = f' in {self.config_key}' if self.config_key else ''
      raise UnknownNameError(
          f'Unknown {self.kind} {name!r}{where}; choose one of '
          f'{", ".join((*self.names(), *sorted(self.reserved)))}. A '
          f'{self.kind} defined outside vae_jax '
          'is known once the module that registers it is imported: by the '
          'config file, or by --imports=MODULE for launch.evaluate, which '
          'reads a saved config.json.')
    return self[name]
