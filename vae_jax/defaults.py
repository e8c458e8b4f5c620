"""The default config: every field of a run, with what it means.

An MLP VAE as pytorch/examples `vae/main.py` trains it: 784-400-20, batch
128, Adam 1e-3, grey MNIST in [0, 1], a Bernoulli decoder (BCE summed over
pixels) and KL to N(0, I). It lives in the package so that
`vae_jax.default_config()` works wherever vae_jax is installed;
configs/default.py (the launchers' `--config=configs/default.py`) returns it,
and the other configs change a few of its fields.
"""

import ml_collections


def default_config() -> ml_collections.ConfigDict:
  """A new copy of the default config (every field, with what it means)."""
  config = ml_collections.ConfigDict()

  config.data = ml_collections.ConfigDict()
  # A registered data set (vae_jax/data/catalog/; `python -m vae_jax.data`
  # lists them).
  config.data.name = 'mnist'
  config.data.source = 'files'  # 'files' (IDX / LIBSVM) | 'tfds'
  # Where the files are; None looks in $VAE_JAX_DATA_DIR, then the cache,
  # then where a system package installs them.
  config.data.dir = ml_collections.config_dict.placeholder(str)
  config.data.cache_dir = ml_collections.config_dict.placeholder(str)
  config.data.download = True
  # 'grey' (intensities in [0, 1]), 'dynamic_binarized' (resampled every
  # epoch) or 'static_binarized' (one fixed binarisation).
  config.data.preprocessing = 'grey'
  # Use only the first N training images (None: all); for quick runs.
  config.data.train_subset = ml_collections.config_dict.placeholder(int)
  # Evaluate on only the first N test images (None: all); for quick runs.
  config.data.test_subset = ml_collections.config_dict.placeholder(int)
  # False: every epoch visits the training images in file order.
  config.data.shuffle = True

  config.model = ml_collections.ConfigDict()
  config.model.name = 'mlp_vae'
  config.model.latent_size = 20
  config.model.encoder_widths = (400,)
  config.model.decoder_widths = ml_collections.config_dict.placeholder(tuple)
  config.model.activation = 'relu'
  config.model.init_scheme = 'torch_default'
  # > 0 makes a conditional VAE: the one-hot label joins the encoder's input
  # and the latent (mlp_vae).
  config.model.num_classes = 0
  # Convolutions: 'auto' (patches @ kernel on CPU, XLA's elsewhere),
  # 'matmul' or 'xla'. Used by conv models only.
  config.model.conv_impl = 'auto'
  # Channels of 3x3 stride-2 convolutions before mlp_vae's dense encoder
  # layers (Study B's CNN encoder); () for a pure MLP.
  config.model.encoder_conv_channels = ()
  # Width of conv_fc_vae's dense bottleneck (Study A).
  config.model.hidden_size = 47
  # False: a plain autoencoder (decodes the code, no KL term).
  config.model.variational = True
  # mlp_vae and two_layer_vae: 'log_variance' or 'log_std' (what the second
  # Gaussian head gives), and the decoder's starting output bias: 'init' (the
  # init scheme's) or 'data_mean' (logit of the mean training pixel).
  config.model.posterior_scale = 'log_variance'
  config.model.output_bias = 'init'
  # two_layer_vae (Burda et al.'s two stochastic layers): units of the
  # first layer h1 (latent_size is the top layer's), and the hidden widths
  # between h1 and h2 (encoder_widths lie between x and h1).
  config.model.first_latent_size = 100
  config.model.inner_widths = (100, 100)

  # The objective: reconstruction + beta * KL(q(z|x) || N(mean, std^2)).
  # 'bce' | 'mse' | 'mae' (summed over pixels), or 'perceptual',
  # 'perceptual+bce', 'perceptual+mse' (see config.perceptual).
  config.loss = 'bce'
  # 'elbo' (one sample, closed-form KL), or a bound over num_samples = k
  # draws of z (Burda et al., 2016; needs loss 'bce'): 'vae', the mean of
  # the k log weights, or 'iwae', log of the mean of the k weights.
  config.objective = 'elbo'
  config.num_samples = 1
  config.beta = 1.0
  config.prior_mean = 0.0
  config.prior_std = 1.0

  # Perceptual loss: summed squared differences of the MNIST classifier's
  # features (after its 2nd and 4th ReLU) between reconstruction and input.
  config.perceptual = ml_collections.ConfigDict()
  config.perceptual.classifier_dir = ml_collections.config_dict.placeholder(str)
  config.perceptual.layers = ('relu2', 'relu4')
  config.perceptual.weight = 0.01  # of the perceptual term in 'perceptual+X'

  # 'adam' | 'rmsprop' | 'adagrad' | 'sgd' | 'burda_adam' (the IWAE code's)
  config.optimizer = 'adam'
  config.learning_rate = 1e-3
  # 'constant', or 'burda': 8 stages of 3^i epochs at learning_rate *
  # 10^(-i/7) (vae_jax.optimizers).
  config.lr_schedule = 'constant'
  config.batch_size = 128
  config.eval_batch_size = 1000
  config.num_epochs = 10
  config.seed = 0
  # Training steps per iteration of the compiled epoch's loop (lax.scan's
  # unroll). Speed only: the steps are the same. 2 lets XLA overlap one
  # step's small kernels with the next's on CPU; it pays for some models
  # (configs/study_d.py) and not for this one (docs/cpu_kernels.md).
  config.scan_unroll = 1

  config.checkpoint = ml_collections.ConfigDict()
  config.checkpoint.keep_latest = 2

  config.plots = True
  return config
