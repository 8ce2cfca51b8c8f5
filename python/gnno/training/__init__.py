"""Training: ``Trainer`` and its parts.

* ``trainer``: the loop (data → sampler → model scores → loss), evaluation,
  logs and exactly resumable checkpoints;
* ``batches``: which positives each step sees (pairs or per-user groups);
* ``optim``: RowAdam (lazy Adam) for sparse embeddings, Adam for the rest, the L2
  penalty on the batch's rows;
* ``selection``: the best epoch's weights and early stopping;
* ``checkpoint``: the checkpoint file, its format and version.
"""

from gnno.training.checkpoint import NAME as CHECKPOINT_NAME
from gnno.training.optim import RowAdam
from gnno.training.trainer import LOSSES, Trainer, TrainResult, train

__all__ = ["Trainer", "TrainResult", "train", "RowAdam", "CHECKPOINT_NAME", "LOSSES"]
