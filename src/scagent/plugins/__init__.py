"""MoE-LoRA plugins: training, the versioned registry, and hosting several on one encoder."""

from __future__ import annotations

from ._calibrate import expected_calibration_error, fit_temperature
from ._host import PluginHost, host_for
from ._plugin import KINDS, Plugin, PluginError
from ._reference import tissue_training_cells, train_dataset_plugins, train_reference_plugins
from ._registry import (
    TISSUE_PLUGIN,
    PluginRegistry,
    default_registry,
    resolve_registry,
    shipped_plugins_path,
)
from ._train import TrainConfig, train_plugin

__all__ = [
    "KINDS",
    "TISSUE_PLUGIN",
    "Plugin",
    "PluginError",
    "PluginHost",
    "PluginRegistry",
    "TrainConfig",
    "default_registry",
    "expected_calibration_error",
    "fit_temperature",
    "host_for",
    "resolve_registry",
    "shipped_plugins_path",
    "tissue_training_cells",
    "train_dataset_plugins",
    "train_plugin",
    "train_reference_plugins",
]
