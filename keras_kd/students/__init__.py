"""Students beyond plain CNNs: soft decision tree, early exits, slimmable widths."""

from keras_kd.students.difficulty import (
    cascade_curve,
    exit_curve,
    first_confident,
    plot_accuracy_compute,
    stage_points,
    width_curve,
)
from keras_kd.students.early_exit import EarlyExit
from keras_kd.students.exit_loss import ExitDistillation
from keras_kd.students.macs import count_macs
from keras_kd.students.slimmable import SlimmableModel, at_width, make_slimmable_cnn
from keras_kd.students.slimmable_layers import (
    SlimmableConv2D,
    SlimmableDense,
    SwitchableBatchNormalization,
    active_units,
)
from keras_kd.students.tree import SoftDecisionTree, SoftDecisionTreeLayer

__all__ = [
    "EarlyExit",
    "ExitDistillation",
    "SlimmableConv2D",
    "SlimmableDense",
    "SlimmableModel",
    "SoftDecisionTree",
    "SoftDecisionTreeLayer",
    "SwitchableBatchNormalization",
    "active_units",
    "at_width",
    "cascade_curve",
    "count_macs",
    "exit_curve",
    "first_confident",
    "make_slimmable_cnn",
    "plot_accuracy_compute",
    "stage_points",
    "width_curve",
]
