"""Lists the registered data sets and where their files are found.

  python -m vae_jax.data
"""

from vae_jax import data


def main() -> None:
  for name in data.dataset_names():
    spec = data.dataset_spec(name)
    found = data.find_data_dir(name)
    where = (found if found is not None else
             'not found; downloaded on first use' if spec.mirrors else
             'not found')
    height, width = spec.image_shape
    print(f'{name}: {spec.description}\n'
          f'  {height}x{width}, {spec.num_classes} classes, '
          f'{spec.num_train} train / {spec.num_test} test images\n'
          f'  files: {where}')


if __name__ == '__main__':
  main()
