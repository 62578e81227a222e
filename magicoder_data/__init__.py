"""magicoder-data: build, clean, decontaminate and publish OSS-Instruct code-instruction datasets.

The library is the product; the `magicoder-data` command only turns options into these configs.
Run the whole pipeline with `run_pipeline("config.yaml")` (or a dict of the YAML's shape), one
stage with `run_stage("clean", "runs/demo", {"min_problem": 20})`. The public surface is what
``__all__`` lists; everything else may change between releases.
"""

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

__version__ = "0.1.0"

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
