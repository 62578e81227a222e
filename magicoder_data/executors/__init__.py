"""Where a stage's CPU-heavy work runs: this machine's processes, or a Ray cluster."""

from .base import BatchFunction, BatchJob, Executor, ExecutorOptions, StoreRows
from .local import LocalExecutor

__all__ = ["BatchFunction", "BatchJob", "Executor", "ExecutorOptions", "LocalExecutor", "StoreRows"]
