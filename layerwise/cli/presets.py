"""Named sets of settings: ``layerwise train --preset NAME`` starts from one, and a ``--config``
file or options given beside it win, setting by setting."""

from __future__ import annotations

from typing import Any

PRESETS: dict[str, dict[str, Any]] = {
    # The best CNN a CPU trains in minutes (benchmarks/bench_best_cnn.py): five 3x3 conv - batchnorm -
    # ReLU blocks, three of them pooled, a global max pool, and a modern small-CNN recipe.
    "best-cnn": {
        "model": "convnet",
        "blocks": "32,64p,64,128p,128p",
        "normalization": "batchnorm",
        "global_pool": "max",
        "weight_scale": "pytorch",
        "label_smoothing": 0.1,
        "update_rule": "sgd_nesterov",
        "learning_rate": 0.2,
        "optim_config": {"momentum": 0.9, "coupled_weight_decay": 5e-4},
        "lr_schedule": {"name": "one_cycle", "max_lr": 0.2},
        "augment": "crop-flip",
        "normalize": "channel",
        "batch_size": 256,
        "epochs": 8,
        "num_test": 10000,
        "test_flip": True,
    },
}

