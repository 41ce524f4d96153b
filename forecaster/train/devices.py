"""Devices for one model: a MirroredStrategy over several GPUs (or logical CPUs).

`--devices N` (TrainSettings.devices) trains one model data-parallel on N
devices of this machine: each device takes `batch_size` windows a step, so
the global batch is `batch_size * N`, and the gradients are averaged over
the global batch. With `devices=None` every visible GPU is used when there
are two or more; otherwise training runs on one device, as before.

On a machine without GPUs, `devices=N > 1` splits the CPU into N logical
devices. That gains no speed (they share the same cores); it exists so the
multi-device path can be tested anywhere (tests/test_devices.py).

`quiet_tensorflow` imports TensorFlow with its start-up chatter hidden, for
the commands that train.
"""

from __future__ import annotations

import contextlib
import os
import sys

from forecaster.errors import ForecasterError


def mirrored_strategy(devices: int | None):
    """A `tf.distribute.MirroredStrategy` over `devices` devices, or None for one.

    None when `devices` is 1, or None and fewer than two GPUs are visible.
    Must be called before TensorFlow has run anything when the CPU has to be
    split into logical devices.
    """
    import tensorflow as tf

    if devices is not None and devices < 1:
        raise ForecasterError(
            f"devices must be at least 1. Received: devices={devices}"
        )
    gpus = tf.config.list_physical_devices("GPU")
    if devices is None:
        devices = len(gpus) if len(gpus) > 1 else 1
    if devices == 1:
        return None
    if gpus:
        if len(gpus) < devices:
            raise ForecasterError(
                f"devices={devices} but only {len(gpus)} GPU(s) are visible: ask for "
                f"at most {len(gpus)}, or check CUDA_VISIBLE_DEVICES."
            )
        names = [f"/gpu:{i}" for i in range(devices)]
    else:
        names = [f"/cpu:{i}" for i in range(_split_cpu(tf, devices))]
    return tf.distribute.MirroredStrategy(names)


def replicas(strategy) -> int:
    """How many copies of the model train in step (1 without a strategy)."""
    return 1 if strategy is None else strategy.num_replicas_in_sync


def scope(strategy):
    """The strategy's scope, where a model must be built to be mirrored."""
    return contextlib.nullcontext() if strategy is None else strategy.scope()


def _split_cpu(tf, devices: int) -> int:
    """Make (or find) `devices` logical CPU devices; returns how many there are."""
    [cpu] = tf.config.list_physical_devices("CPU")
    configured = tf.config.get_logical_device_configuration(cpu) or []
    if len(configured) >= devices:
        return devices
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration() for _ in range(devices)]
        )
    except RuntimeError:
        raise ForecasterError(
            f"devices={devices} on a machine without GPUs needs the CPU split into "
            f"{devices} logical devices before TensorFlow starts, and it has already "
            "started in this process: run training in a fresh process, or leave "
            "--devices unset."
        ) from None
    return devices


def quiet_tensorflow() -> None:
    """Import TensorFlow with its C++ start-up chatter (oneDNN, CUDA probing) hidden.

    Those lines are written to file descriptor 2 before TensorFlow's own log
    level applies, so stderr is pointed at /dev/null while it loads. Python
    errors still propagate normally.
    """
    if "tensorflow" in sys.modules:
        return
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
