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
    "CleanConfig": ".clean",
    "CleanOptions": ".clean",
    "ConfigError": ".errors",
    "Document": ".records",
    "Drop": ".records",
    "DropReport": ".stage",
    "ExportOptions": ".export.stage",
    "ExportReport": ".export.stage",
    "GenerateConfig": ".config",
    "GenerateOptions": ".generate",
    "GenerateStats": ".generate",
    "HubError": ".errors",
    "InvalidOption": ".errors",
    "LANGUAGES": ".languages",
    "LanguageReport": ".seeds",
    "LintSeqConfig": ".lintseq.stage",
    "LintSeqOptions": ".lintseq.stage",
    "LintSeqReport": ".lintseq.stage",
    "MAGICODER_MIX": ".languages",
    "MagicoderDataError": ".errors",
    "PipelineConfig": ".pipeline",
    "PipelineReport": ".pipeline",
    "Progress": ".stage",
    "ProviderError": ".errors",
    "PushOptions": ".export.stage",
    "PushReport": ".export.stage",
    "Report": ".stage",
    "RunBusyError": ".errors",
    "RunError": ".errors",
    "RunMismatchError": ".errors",
    "RunStatus": ".pipeline",
    "RunStore": ".store",
    "STAGES": ".pipeline",
    "SampleConfig": ".config",
    "SampleOptions": ".seeds",
    "SampleReport": ".seeds",
    "ScanOptions": ".decontam.stage",
    "Seed": ".records",
    "SourceError": ".errors",
    "Stage": ".stage",
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
    from .decontam.stage import ScanOptions
    from .errors import (
        ConfigError,
        HubError,
        InvalidOption,
        MagicoderDataError,
        ProviderError,
        RunBusyError,
        RunError,
        RunMismatchError,
        SourceError,
    )
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
    "CleanConfig",
    "CleanOptions",
    "ConfigError",
    "Document",
    "Drop",
    "DropReport",
    "ExportOptions",
    "ExportReport",
    "GenerateConfig",
    "GenerateOptions",
    "GenerateStats",
    "HubError",
    "InvalidOption",
    "LanguageReport",
    "LintSeqConfig",
    "LintSeqOptions",
    "LintSeqReport",
    "MagicoderDataError",
    "PipelineConfig",
    "PipelineReport",
    "Progress",
    "ProviderError",
    "PushOptions",
    "PushReport",
    "Report",
    "RunBusyError",
    "RunError",
    "RunMismatchError",
    "RunStatus",
    "RunStore",
    "SampleConfig",
    "SampleOptions",
    "SampleReport",
    "ScanOptions",
    "Seed",
    "SourceError",
    "Stage",
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
