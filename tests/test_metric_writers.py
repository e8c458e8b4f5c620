"""TensorBoard event files of a run and of a sweep, read back byte by byte.

The reader below parses the TFRecord framing (length, masked CRC-32C of the
length, the serialized Event, masked CRC of the data) with the Event
protobuf that tensorboardX ships, so the test checks what TensorBoard
itself would read, independently of the writer.
"""

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboardX.proto import event_pb2

from test_train import tiny_config, tiny_dataset
from vae_jax import driver
from vae_jax import grid as grid_lib
from vae_jax import metric_writers
from vae_jax import sweep


def read_events(directory: Path) -> list:
  """Every Event in the directory's events.out.tfevents.* files (not below)."""
  events = []
  for path in sorted(directory.glob('events.out.tfevents.*')):
    data = path.read_bytes()
    offset = 0
    while offset < len(data):
      (length,) = struct.unpack_from('<Q', data, offset)
      offset += 12  # the length and its CRC
      event = event_pb2.Event()
      event.ParseFromString(data[offset:offset + length])
      offset += length + 4  # the data and its CRC
      events.append(event)
    assert offset == len(data), path
  return events


def scalars(events) -> dict:
  """{tag: {step: value}}."""
  out = {}
  for event in events:
    for value in event.summary.value:
      if value.HasField('simple_value'):
        out.setdefault(value.tag, {})[event.step] = value.simple_value
  return out


def images(events) -> dict:
  """{tag: {step: (height, width)}}."""
  out = {}
  for event in events:
    for value in event.summary.value:
      if value.HasField('image'):
        out.setdefault(value.tag, {})[event.step] = (value.image.height,
                                                      value.image.width)
  return out


def hparams_plugin_data(events) -> list[bytes]:
  return [value.metadata.plugin_data.content for event in events
          for value in event.summary.value
          if value.metadata.plugin_data.plugin_name == 'hparams']


def test_a_run_writes_its_curves_images_and_hparams_for_tensorboard(tmp_path):
  config = tiny_config(num_epochs=3)
  driver.train_and_evaluate(config, str(tmp_path), dataset=tiny_dataset())
  lines = [json.loads(l) for l in
           (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  events = read_events(tmp_path)
  curves = scalars(events)
  for key in ('train_loss', 'test_loss', 'test_recon', 'test_kl',
              'img_per_s'):
    tag = metric_writers._tag(key)
    assert curves[tag] == pytest.approx(
        {l['epoch']: l[key] for l in lines}, rel=1e-6), key
  side = tiny_dataset().image_shape[0]
  assert images(events)['reconstructions'] == {
      epoch: (2 * side, driver.TRACKED_IMAGES * side) for epoch in (1, 2, 3)}
  plugin_data = b''.join(hparams_plugin_data(events))
  assert b'model.latent_size' in plugin_data and b'test/loss' in plugin_data


def test_each_sweep_member_is_a_tensorboard_run(tmp_path):
  config = tiny_config(num_epochs=2)
  config.sweep = grid_lib.product(beta=[1.0, 0.25])
  sweep.run_sweep(config, tmp_path, dataset=tiny_dataset())
  lines = [json.loads(l) for l in
           (tmp_path / 'metrics.jsonl').read_text().splitlines()]
  assert not list(tmp_path.glob('events.out.tfevents.*'))
  for member in (0, 1):
    events = read_events(tmp_path / f'member_{member:03d}')
    expected = {l['epoch']: l['test_loss'] for l in lines
                if l['member'] == member}
    assert scalars(events)['test/loss'] == pytest.approx(expected, rel=1e-6)
    assert sorted(images(events)['reconstructions']) == [1, 2]
    assert b'beta' in b''.join(hparams_plugin_data(events))
  # The two members' curves differ: each file holds its own member.
  losses = [scalars(read_events(tmp_path / f'member_{m:03d}'))['test/loss']
            for m in (0, 1)]
  assert losses[0] != losses[1]


def test_jsonl_writer_rewrites_whole_lines_and_writes_null_for_nan(tmp_path):
  path = tmp_path / 'metrics.jsonl'
  lines = [{'epoch': 1, 'test_loss': 3.0}]  # kept from before a resume
  writer = metric_writers.JsonlWriter(path, lines)
  member = writer.with_fields(member=4)
  member.write_scalars(2, {'test_loss': float('nan'), 'diverged': True})
  writer.flush()
  assert [json.loads(l) for l in path.read_text().splitlines()] == [
      {'epoch': 1, 'test_loss': 3.0},
      {'member': 4, 'epoch': 2, 'test_loss': None, 'diverged': True}]
  assert lines[-1]['member'] == 4 and np.isnan(lines[-1]['test_loss'])
