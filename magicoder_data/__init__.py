"""magicoder-data: build, clean, decontaminate and publish OSS-Instruct code-instruction datasets.

The public surface is what ``__all__`` lists; everything else may change between releases.
"""

from .config import SampleConfig
from .corpus import bundled_corpus, open_source
from .errors import (
    ConfigError,
    HubError,
    MagicoderDataError,
    ProviderError,
    RunError,
    RunMismatchError,
    SourceError,
)
from .languages import LANGUAGES, MAGICODER_MIX
from .records import Document, Drop, Seed
from .seeds import LanguageReport, sample
from .store import RunStore

__version__ = "0.1.0"

__all__ = [
    "LANGUAGES",
    "MAGICODER_MIX",
    "ConfigError",
    "Document",
    "Drop",
    "HubError",
    "LanguageReport",
    "MagicoderDataError",
    "ProviderError",
    "RunError",
    "RunMismatchError",
    "RunStore",
    "SampleConfig",
    "Seed",
    "SourceError",
    "__version__",
    "bundled_corpus",
    "open_source",
    "sample",
]
