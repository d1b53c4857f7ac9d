"""Private helpers behind :mod:`layerwise.data_utils`, and the embedded CIFAR-10 sample file.

``cifar_format`` reads and checks CIFAR-10 python batches (with a restricted unpickler),
``cifar_source`` finds, downloads and extracts the archive, ``splits`` makes the cs231n
train/validation/test split, and ``sample_codec`` encodes and
decodes the small real CIFAR-10 subset shipped as ``cifar10_sample.npz.xz`` in this folder.
"""
