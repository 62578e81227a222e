"""magicoder-data: build, clean, decontaminate and publish OSS-Instruct code-instruction datasets.

The library is the product; the `magicoder-data` command only turns options into these configs.
Run the whole pipeline with `run_pipeline("config.yaml")` (or a dict of the YAML's shape), one
stage with `run_stage("clean", "runs/demo", {"min_problem": 20})`. The public surface is what
``__all__`` lists; everything else may change between releases.
"""

import importlib as _importlib
import typing as _typing

__version__ = "0.1.0"

#: Where each public name lives. Imported on first use, so a worker process that needs one
#: stage (spawned for `sample --workers`) does not pay for the whole library (openai, sklearn).
_EXPORTS = {
    "BatchJob": ".executors",
    "Check": ".execution.sandbox",
    "CleanConfig": ".clean",
    "CleanOptions": ".clean",
    "ConfigError": ".errors",
    "DecontaminateOptions": ".decontam.stage",
    "Document": ".records",
    "Drop": ".records",
    "DropReport": ".stage",
    "Executor": ".executors",
    "ExecutorOptions": ".executors",
    "ExportOptions": ".export.stage",
    "ExportReport": ".export.stage",
    "GenerateConfig": ".config",
    "GenerateOptions": ".generate",
    "GenerateStats": ".generate",
    "HubError": ".errors",
    "InvalidOption": ".errors",
    "Job": ".execution.sandbox",
    "LANGUAGES": ".languages",
    "LanguageReport": ".seeds",
    "Limits": ".execution.sandbox",
    "LintSeqConfig": ".lintseq.stage",
    "LocalExecutor": ".executors",
    "LintSeqOptions": ".lintseq.stage",
    "LintSeqReport": ".lintseq.stage",
    "MAGICODER_MIX": ".languages",
    "MagicoderDataError": ".errors",
    "Outcome": ".execution.sandbox",
    "PipelineConfig": ".pipeline",
    "PipelineReport": ".pipeline",
    "Progress": ".stage",
    "ProviderError": ".errors",
    "PushOptions": ".export.stage",
    "PushReport": ".export.stage",
    "Report": ".stage",
    "Result": ".execution.sandbox",
    "RunBusyError": ".errors",
    "RunError": ".errors",
    "RunMismatchError": ".errors",
    "RunStatus": ".pipeline",
    "RunStore": ".store",
    "STAGES": ".pipeline",
    "SampleConfig": ".config",
    "SampleOptions": ".seeds",
    "SampleReport": ".seeds",
    "Sandbox": ".execution.sandbox",
    "SandboxError": ".errors",
    "ScanOptions": ".decontam.stage",
    "Seed": ".records",
    "SourceError": ".errors",
    "Stage": ".stage",
    "StoreRows": ".executors",
    "VerifyOptions": ".verify",
    "VerifyReport": ".verify",
    "bundled_corpus": ".corpus",
    "draw_seeds": ".seeds",
    "funnel": ".pipeline",
    "load_pipeline": ".pipeline",
    "open_source": ".corpus",
    "run_pipeline": ".pipeline",
    "run_stage": ".pipeline",
    "run_status": ".pipeline",
}

if _typing.TYPE_CHECKING:
    from .clean import CleanConfig, CleanOptions
    from .config import GenerateConfig, SampleConfig
    from .corpus import bundled_corpus, open_source
    from .decontam.stage import DecontaminateOptions, ScanOptions
    from .errors import (
        ConfigError,
        HubError,
        InvalidOption,
        MagicoderDataError,
        ProviderError,
        RunBusyError,
        RunError,
        RunMismatchError,
        SandboxError,
        SourceError,
    )
    from .execution.sandbox import Check, Job, Limits, Outcome, Result, Sandbox
    from .executors import BatchJob, Executor, ExecutorOptions, LocalExecutor, StoreRows
    from .export.stage import ExportOptions, ExportReport, PushOptions, PushReport
    from .generate import GenerateOptions, GenerateStats
    from .languages import LANGUAGES, MAGICODER_MIX
    from .lintseq.stage import LintSeqConfig, LintSeqOptions, LintSeqReport
    from .pipeline import (
        STAGES,
        PipelineConfig,
        PipelineReport,
        RunStatus,
        funnel,
        load_pipeline,
        run_pipeline,
        run_stage,
        run_status,
    )
    from .records import Document, Drop, Seed
    from .seeds import LanguageReport, SampleOptions, SampleReport, draw_seeds
    from .stage import DropReport, Progress, Report, Stage
    from .store import RunStore
    from .verify import VerifyOptions, VerifyReport


def __getattr__(name: str) -> _typing.Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'magicoder_data' has no attribute {name!r}")
    value = getattr(_importlib.import_module(_EXPORTS[name], __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "LANGUAGES",
    "MAGICODER_MIX",
    "STAGES",
    "BatchJob",
    "Check",
    "CleanConfig",
    "CleanOptions",
    "ConfigError",
    "DecontaminateOptions",
    "Document",
    "Drop",
    "DropReport",
    "Executor",
    "ExecutorOptions",
    "ExportOptions",
    "ExportReport",
    "GenerateConfig",
    "GenerateOptions",
    "GenerateStats",
    "HubError",
    "InvalidOption",
    "Job",
    "LanguageReport",
    "Limits",
    "LintSeqConfig",
    "LintSeqOptions",
    "LintSeqReport",
    "LocalExecutor",
    "MagicoderDataError",
    "Outcome",
    "PipelineConfig",
    "PipelineReport",
    "Progress",
    "ProviderError",
    "PushOptions",
    "PushReport",
    "Report",
    "Result",
    "RunBusyError",
    "RunError",
    "RunMismatchError",
    "RunStatus",
    "RunStore",
    "SampleConfig",
    "SampleOptions",
    "SampleReport",
    "Sandbox",
    "SandboxError",
    "ScanOptions",
    "Seed",
    "SourceError",
    "Stage",
    "StoreRows",
    "VerifyOptions",
    "VerifyReport",
    "__version__",
    "bundled_corpus",
    "draw_seeds",
    "funnel",
    "load_pipeline",
    "open_source",
    "run_pipeline",
    "run_stage",
    "run_status",
]
