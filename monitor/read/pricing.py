"""Token prices: the bundled table (prices.json), a user's override file, and cost from usage.

A price is US dollars per million tokens, for input, output, cache reads and cache writes.
A model that is not in the table has no price: its cost is None (unknown), never 0.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from monitor.errors import InvalidInput

ENV_VAR = "MONITOR_PRICES"
KINDS = ("input", "output", "cache_read", "cache_write")
_DATE_SUFFIX = re.compile(r"[-@](\d{8}|\d{4}-\d{2}-\d{2}|latest|v\d+(:\d+)?)$")


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_read: float
    cache_write: float


@dataclass
class PriceTable:
    """Prices per model name; `date` says when the prices were taken, `sources` which files."""

    models: dict[str, Price] = field(default_factory=dict)
    date: str | None = None
    sources: list[str] = field(default_factory=list)

    def lookup(self, model: str | None) -> Price | None:
        """The price of `model`: an exact name, else the name without a date or version suffix
        ('claude-sonnet-4-5-20250929' -> 'claude-sonnet-4-5', 'gpt-4o-2024-08-06' -> 'gpt-4o').
        None when the model is unknown: no guessing from a prefix (claude-opus-4-6 is not
        claude-opus-4)."""
        if not model:
            return None
        name = model.strip().lower()
        if name.startswith(("anthropic/", "openai/")):
            name = name.split("/", 1)[1]
        if name in self.models:
            return self.models[name]
        return self.models.get(_DATE_SUFFIX.sub("", name))

    def cost(self, model: str | None, input_tokens: int | None = 0, output_tokens: int | None = 0,
             cache_read_tokens: int | None = 0, cache_write_tokens: int | None = 0) -> float | None:
        """Dollars for this usage, or None when the model has no price."""
        price = self.lookup(model)
        if price is None:
            return None
        total = ((input_tokens or 0) * price.input + (output_tokens or 0) * price.output
                 + (cache_read_tokens or 0) * price.cache_read
                 + (cache_write_tokens or 0) * price.cache_write)
        return round(total / 1_000_000, 8)

    def rows(self) -> list[dict]:
        return [{"model": name, **{f"{k}_per_mtok_usd": getattr(p, k) for k in KINDS}}
                for name, p in sorted(self.models.items())]


def _parse(text: str, source: str) -> tuple[dict[str, Price], str | None]:
    try:
        data = json.loads(text)
        models = data["models"]
        if not isinstance(models, dict):
            raise TypeError("'models' must be an object")
        parsed = {}
        for name, entry in models.items():
            values = {k: float(entry.get(k, entry.get("input", 0) if k == "cache_write" else 0))
                      for k in KINDS}
            if any(v < 0 for v in values.values()):
                raise ValueError(f"negative price for {name}")
            parsed[name.lower()] = Price(**values)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInput(
            f"{source} is not a price file ({exc}): it needs {{\"date\": ..., \"models\": "
            f"{{\"model-name\": {{\"input\": 3.0, \"output\": 15.0, \"cache_read\": 0.3, "
            f"\"cache_write\": 3.75}}}}}} in dollars per million tokens"
        ) from None
    return parsed, data.get("date")


def load_prices(path: str | os.PathLike[str] | None = None) -> PriceTable:
    """The bundled table, with the user's file (path, else $MONITOR_PRICES) laid over it:
    a model in the user's file replaces the bundled price, new models are added."""
    bundled = (Path(__file__).parent / "prices.json").read_text(encoding="utf-8")
    models, date = _parse(bundled, "the bundled prices.json")
    table = PriceTable(models, date, ["bundled"])
    user = path or os.environ.get(ENV_VAR)
    if user:
        user_path = Path(user)
        try:
            text = user_path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidInput(f"cannot read the price file {user_path}: {exc.strerror or exc}") from None
        user_models, user_date = _parse(text, str(user_path))
        table.models.update(user_models)
        table.date = user_date or table.date
        table.sources.append(str(user_path))
    return table
