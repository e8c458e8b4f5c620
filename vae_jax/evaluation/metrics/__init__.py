"""The built-in metrics, one module each, registered when this package is
imported (vae_jax.evaluation.registry has the interface).

Their order here is the order in which a model's metrics are computed and
the order of their columns in results tables. A new built-in metric is a
module here and one line below (docs/extending.md, "A metric").
"""

from vae_jax.evaluation.metrics import recon_at_mean
from vae_jax.evaluation.metrics import iwae
from vae_jax.evaluation.metrics import active_units
from vae_jax.evaluation.metrics import inception_score
from vae_jax.evaluation.metrics import classifier_fid
from vae_jax.evaluation.metrics import inception_fid
from vae_jax.evaluation.metrics import confusion
