"""Where a stage's CPU-heavy work runs: this machine's processes, or a Ray cluster."""

from .base import BatchFunction, Executor, ExecutorOptions, Job, StoreRows
from .local import LocalExecutor

__all__ = ["BatchFunction", "Executor", "ExecutorOptions", "Job", "LocalExecutor", "StoreRows"]
