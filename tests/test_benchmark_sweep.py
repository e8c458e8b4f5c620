"""benchmarks.run --mode=sweep --sweep_groups on a tiny grid of real MNIST."""

import numpy as np

from benchmarks import sweep as sweep_benchmark
from configs import default
from vae_jax import grid


def test_every_group_is_timed_against_its_members_one_after_another(
    mnist_dir):
  config = default.get_config()
  config.data.dir = str(mnist_dir.parent)
  config.model.encoder_widths = config.model.decoder_widths = (32,)
  # Two members that share a program, one that changes the batch size.
  config.sweep = grid.concat(grid.product(beta=[1.0, 0.5]),
                             grid.product(batch_size=[64]))
  result = sweep_benchmark.benchmark_groups(config, rounds=3,
                                            train_images=512)
  groups = result['groups']
  assert [len(g['members']) for g in groups] == [2, 1]
  assert groups[1]['members'] == ['batch_size=64']
  for group in groups:
    assert len(group['round_ratios']) == 3
    assert group['median_ratio'] == np.median(group['round_ratios'])
    assert group['group_img_per_s'] > 0 and group['serial_img_per_s'] > 0
  table = sweep_benchmark.groups_markdown(result)
  assert table.count('\n| ') == 1 + len(groups)  # header and one row each
