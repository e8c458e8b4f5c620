"""The built-in data sets, one module each, registered when imported."""

# Imported for their registrations.
from vae_jax.data.catalog import fashion_mnist  # pylint: disable=unused-import
from vae_jax.data.catalog import mnist  # pylint: disable=unused-import
from vae_jax.data.catalog import usps  # pylint: disable=unused-import
