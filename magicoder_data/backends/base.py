"""What every backend is: something that sends a run's pending seeds and stores every answer.

`generate` chooses a backend (see `choose_backend`), lets it shape the run's config, checks it
before anything is recorded, and hands it one `SendRequest`; it never knows which one it drives.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ..config import GenerateConfig
    from ..generate import GenerateOptions, GenerateStats, SendOptions
    from ..llm import ClientSettings
    from ..prompts import PromptTemplate
    from ..stage import Progress
    from ..store import RunStore


@dataclass(frozen=True)
class SendRequest:
    """What to send: the run's config and prompt, how much of it now, and the known prices."""

    config: GenerateConfig
    template: PromptTemplate
    options: SendOptions
    #: US$ per million (input, output) tokens by model, as the backend charges them.
    prices: Mapping[str, tuple[float, float]]

    def body(self, messages: list[dict[str, str]], seed_id: int) -> dict[str, Any]:
        """The request body for one seed, whichever way it travels: the model, the messages,
        the request seed (`seed` + the seed's id) and the run's sampling parameters."""
        config = self.config
        body: dict[str, Any] = {
            "model": config.model,
            "messages": messages,
            "seed": config.seed + seed_id,
            "temperature": config.temperature,
            "max_tokens": config.max_tokens,
        }
        if config.top_p is not None:
            body["top_p"] = config.top_p
        if config.grammar is not None:
            body["grammar"] = config.grammar
        return body


class Backend(ABC):
    """Who answers `generate`'s requests."""

    #: The name `--backend` (a run config's `generate.backend`) chooses it by.
    name: ClassVar[str]
    #: Whether it constrains answers with the template's grammar (`grammar.gbnf`), which a
    #: tiny model needs to keep to the template's sections.
    grammars: ClassVar[bool] = False

    @classmethod
    @abstractmethod
    def from_options(
        cls, options: GenerateOptions, settings: ClientSettings, api_key: str
    ) -> Backend:
        """The backend for `options`, given the endpoint settings and the key (empty when the
        environment has none); raises ConfigError for what it cannot work without."""

    def defaults(self) -> dict[str, Any]:
        """GenerateConfig values this backend implies unless given or stored."""
        return {}

    def overrides(self) -> dict[str, Any]:
        """GenerateConfig values this backend imposes over given and stored ones (what it
        serves), so a run never mixes its answers with another model's."""
        return {}

    def prices(self, listed: Mapping[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
        """What this backend charges, given the `listed` prices (the known and given ones), so
        that --max-cost and the stored spend are right."""
        return dict(listed)

    def check(self) -> None:  # noqa: B027 (a hook: most backends have nothing to check)
        """Fail now, before the stage records anything, on what would fail every request."""

    @abstractmethod
    def send(
        self, store: RunStore, request: SendRequest, progress: Progress | None = None
    ) -> GenerateStats:
        """Send the pending seeds of `store` and store every answer as it arrives.

        A first Ctrl-C (SIGINT) stops sending and stores the answers that arrive within the
        grace period; a second one stops waiting. The returned stats then say `interrupted`.
        """
