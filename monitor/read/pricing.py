"""Token prices: a snapshot of the genai-prices data set, a user's file over it, and cost from usage.

A price is US dollars per million tokens, for input, output, cache reads, 5-minute cache writes
(`cache_write`) and 1-hour cache writes (`cache_write_1h`), with long-context tiers where the
provider has them. A model with no price has cost None (unknown), never 0.

Where the prices come from, in order:
1. the user's file (`--prices FILE`, `$MONITOR_PRICES`): exact model names (or names without a
   date suffix), laid over everything else;
2. `prices.json` beside this module: a snapshot of the genai-prices package's data (Anthropic,
   OpenAI, Google), with its match rules, written by `python -m monitor.read.pricing`; fast
   enough for the hook (a small JSON file, no import of genai-prices);
3. the installed genai-prices package itself (`GenaiPrices`), for what 1 and 2 do not know: slow
   to import (about 0.3 s), so only commands use it (`monitor prices refresh`, `monitor cost`),
   never the hook. A model it learns of after a session was recorded is priced then.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import InvalidInput

ENV_VAR = "MONITOR_PRICES"
KINDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h")
SNAPSHOT = Path(__file__).parent / "prices.json"
SNAPSHOT_PROVIDERS = ("anthropic", "openai", "google")
_DATE_SUFFIX = re.compile(r"[-@](\d{8}|\d{4}-\d{2}-\d{2}|latest|v\d+(:\d+)?)$")


@dataclass(frozen=True)
class Price:
    """Dollars per million tokens. cache_write is the 5-minute write; tiers are (more than N input
    tokens in the request, the prices then) in ascending order."""

    input: float
    output: float
    cache_read: float = 0.0
    cache_write: float | None = None
    cache_write_1h: float | None = None
    tiers: tuple[tuple[int, Price], ...] = ()
    source: str = "bundled"

    def at(self, request_input_tokens: int | None) -> Price:
        """The price for a request with this many input tokens (cache reads and writes included):
        the highest tier it passes; the base price when the count is unknown (None)."""
        if request_input_tokens is None:
            return self
        for start, tier in reversed(self.tiers):
            if request_input_tokens > start:
                return tier
        return self

    def dollars(self, input_tokens: int, output_tokens: int, cache_read_tokens: int, cache_write_tokens: int,
                cache_write_1h_tokens: int) -> float:
        cache_write = self.input * 1.25 if self.cache_write is None else self.cache_write
        cache_write_1h = self.input * 2 if self.cache_write_1h is None else self.cache_write_1h
        total = (input_tokens * self.input + output_tokens * self.output + cache_read_tokens * self.cache_read
                 + cache_write_tokens * cache_write + cache_write_1h_tokens * cache_write_1h)
        return round(total / 1_000_000, 8)

    def row(self) -> dict:
        """The prices charged (an omitted cache write at its default), keyed '<kind>_per_mtok_usd'."""
        charged = {"cache_write": self.input * 1.25 if self.cache_write is None else self.cache_write,
                   "cache_write_1h": self.input * 2 if self.cache_write_1h is None else self.cache_write_1h}
        return {f"{k}_per_mtok_usd": charged.get(k, getattr(self, k)) for k in KINDS}


def _match(clause: object, name: str) -> bool:
    """genai-prices' match rules, as the snapshot stores them ({"starts_with": "claude-opus-4-6"},
    {"or": [...]}, ...)."""
    if not isinstance(clause, dict) or len(clause) != 1:
        return False
    (kind, value), = clause.items()
    if kind == "or":
        return any(_match(c, name) for c in value)
    if kind == "and":
        return all(_match(c, name) for c in value)
    if kind == "starts_with":
        return name.startswith(value.lower())
    if kind == "ends_with":
        return name.endswith(value.lower())
    if kind == "contains":
        return value.lower() in name
    if kind == "equals":
        return name == value.lower()
    if kind == "regex":
        return re.search(value, name) is not None
    return False


@dataclass
class PriceTable:
    """Prices per model name (the user's, exact) and the snapshot's providers (by match rule);
    `date` says when the prices were taken, `sources` which files."""

    models: dict[str, Price] = field(default_factory=dict)
    date: str | None = None
    sources: list[str] = field(default_factory=list)
    providers: list[dict] = field(default_factory=list)
    _found: dict[str, Price | None] = field(default_factory=dict, repr=False)

    def lookup(self, model: str | None) -> Price | None:
        """The price of `model`: the user's file by exact name or without a date suffix
        ('claude-sonnet-4-5-20250929' -> 'claude-sonnet-4-5'), else the first snapshot model whose
        genai-prices match rule takes the name. None when unknown: never a guess of ours."""
        if not model:
            return None
        name = model.strip().lower()
        if name in self._found:
            return self._found[name]
        if name.startswith(("anthropic/", "openai/", "google/")):
            name = name.split("/", 1)[1]
        found = self.models.get(name) or self.models.get(_DATE_SUFFIX.sub("", name))
        if found is None:
            for provider in self.providers:
                if provider.get("match") and not _match(provider["match"], name):
                    continue
                found = next((m["price"] for m in provider["models"] if _match(m["match"], name)), None)
                if found is not None:
                    break
        self._found[model.strip().lower()] = found
        return found

    def cost(self, model: str | None, input_tokens: int | None = 0, output_tokens: int | None = 0,
             cache_read_tokens: int | None = 0, cache_write_tokens: int | None = 0,
             cache_write_1h_tokens: int | None = 0, *, requests: int | None = None) -> float | None:
        """Dollars for this usage, or None when the model has no price. cache_write_tokens are
        5-minute writes, cache_write_1h_tokens 1-hour writes. With requests=1 the usage is one
        request and a long-context tier applies when its input passes the tier's start; otherwise
        (several requests summed, or an unknown number) the base prices apply."""
        price = self.lookup(model)
        if price is None:
            return None
        counts = [n or 0 for n in (input_tokens, output_tokens, cache_read_tokens, cache_write_tokens,
                                   cache_write_1h_tokens)]
        if requests == 1:
            price = price.at(counts[0] + counts[2] + counts[3] + counts[4])
        return price.dollars(*counts)

    def rows(self) -> list[dict]:
        """Every model with a price: the user's file's first, then the snapshot's."""
        found = [{"model": name, **p.row(), "tiers": len(p.tiers), "source": p.source}
                 for name, p in sorted(self.models.items())]
        for provider in self.providers:
            for m in provider["models"]:
                p = m["price"]
                found.append({"model": m["id"], **p.row(), "tiers": len(p.tiers), "source": p.source})
        return found


def _price(entry: dict, name: str, source: str) -> Price:
    values = {}
    for kind in KINDS:
        value = entry.get(kind)
        if value is None and kind == "cache_read":
            value = 0
        if value is None and kind == "cache_write":
            value = entry.get("input", 0)  # a user's file: an omitted cache write costs as input
        values[kind] = None if value is None else float(value)
        if values[kind] is not None and values[kind] < 0:  # type: ignore[operator]
            raise ValueError(f"negative price for {name}")
    tiers = tuple((int(t["above"]), _price({**entry, "tiers": [], **t}, name, source))
                  for t in entry.get("tiers") or [])
    return Price(values["input"] or 0.0, values["output"] or 0.0, values["cache_read"] or 0.0,
                 values["cache_write"], values["cache_write_1h"], tiers, source)


def _parse(text: str, source: str, label: str | None) -> tuple[dict[str, Price], list[dict], str | None]:
    """(models by name, providers, date) of a price file; label names where its prices come from
    (None: the file's own "source" and "date")."""
    try:
        data = json.loads(text)
        label = label or f"{data.get('source', 'bundled')} ({data.get('date')})"
        models = data.get("models", {})
        if not isinstance(models, dict):
            raise TypeError("'models' must be an object")
        parsed = {name.lower(): _price(entry, name, label) for name, entry in models.items()}
        providers = []
        for provider in data.get("providers", []):
            providers.append({"id": provider["id"], "match": provider.get("match"),
                              "models": [{"id": m["id"], "match": m.get("match") or {"equals": m["id"]},
                                          "price": _price(m, m["id"], label)} for m in provider["models"]]})
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise InvalidInput(
            f"{source} is not a price file ({exc}): it needs {{\"date\": ..., \"models\": "
            f"{{\"model-name\": {{\"input\": 3.0, \"output\": 15.0, \"cache_read\": 0.3, "
            f"\"cache_write\": 3.75, \"cache_write_1h\": 6.0}}}}}} in dollars per million tokens"
        ) from None
    return parsed, providers, data.get("date")


def load_prices(path: str | os.PathLike[str] | None = None) -> PriceTable:
    """The bundled snapshot, with the user's file (path, else $MONITOR_PRICES) laid over it:
    a model in the user's file replaces the snapshot's price, new models are added."""
    models, providers, date = _parse(SNAPSHOT.read_text(encoding="utf-8"), "the bundled prices.json", None)
    table = PriceTable(models, date, ["bundled"], providers)
    user = path or os.environ.get(ENV_VAR)
    if user:
        user_path = Path(user)
        try:
            text = user_path.read_text(encoding="utf-8")
        except (OSError, ValueError) as exc:  # ValueError: a NUL in the name
            raise InvalidInput(f"cannot read the price file {user_path}: {getattr(exc, 'strerror', None) or exc}"
                               ) from None
        user_models, user_providers, user_date = _parse(text, str(user_path), str(user_path))
        table.models.update(user_models)
        table.providers[:0] = user_providers
        table.date = user_date or table.date
        table.sources.append(str(user_path))
    return table


def price_list(path: str | os.PathLike[str] | None = None, model: str | None = None) -> tuple[list[dict], str]:
    """(rows, a note on the sources): every model's price, or the one that applies to `model`
    (from the installed genai-prices when neither the user's file nor the snapshot knows it)."""
    table = load_prices(path)
    data = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    genai = GenaiPrices()
    genai_note = "not installed"
    if genai._load():
        genai_note = f"{genai.version}, used for models neither knows"
    note = (f"Prices: {', '.join(['your file ' + s for s in table.sources[1:]] + [''])}"
            f"the bundled snapshot of {data.get('source')} taken {data.get('date')}; installed genai-prices:"
            f" {genai_note}. USD per million tokens.").replace(": , ", ": ")
    if model is None:
        return table.rows(), note
    price = table.lookup(model)
    if price is not None:
        return [{"model": model, **price.row(), "tiers": len(price.tiers), "source": price.source}], note
    rows = []
    if genai._load():
        one = genai.cost(model, 1_000_000, 0, 0, 0, 0)
        if one is not None:
            per = {k: genai.cost(model, *[1_000_000 if i == n else 0 for i in range(5)])  # type: ignore[arg-type]
                   for n, k in enumerate(KINDS)}
            rows = [{"model": model, **{f"{k}_per_mtok_usd": v for k, v in per.items()}, "tiers": None,
                     "source": f"genai-prices {genai.version} (installed)"}]
    return rows, note


# -- the genai-prices package itself ------------------------------------------------------------

class GenaiPrices:
    """Prices from the installed genai-prices package (imported on first use: it is slow), for
    models the snapshot does not know. cost() is None when the package is missing or does not
    know the model."""

    def __init__(self) -> None:
        self._module: Any = None
        self.version: str | None = None
        self.available: bool | None = None

    def _load(self) -> bool:
        if self.available is None:
            try:
                import genai_prices

                self._module, self.version, self.available = genai_prices, genai_prices.__version__, True
            except Exception:  # noqa: BLE001 - not installed, or broken: no price from it
                self.available = False
        return self.available

    def cost(self, model: str | None, input_tokens: int, output_tokens: int, cache_read_tokens: int,
             cache_write_tokens: int, cache_write_1h_tokens: int, when: str | None = None) -> float | None:
        if not model or not self._load():
            return None
        import warnings
        from datetime import datetime

        genai_prices = self._module
        usage = genai_prices.Usage(
            input_tokens=input_tokens + cache_read_tokens + cache_write_tokens + cache_write_1h_tokens,
            output_tokens=output_tokens, cache_read_tokens=cache_read_tokens,
            cache_write_tokens=cache_write_tokens + cache_write_1h_tokens,
            cache_write_1h_tokens=cache_write_1h_tokens)
        timestamp = None
        if when:
            try:
                timestamp = datetime.fromisoformat(when.replace("Z", "+00:00"))
            except ValueError:
                timestamp = None
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                found = genai_prices.calc_price(usage, model, genai_request_timestamp=timestamp)
        except (LookupError, ValueError):
            return None
        return round(float(found.total_price), 8)


# -- writing the snapshot ---------------------------------------------------------------------

def _clause(clause: object) -> dict:
    kind = type(clause).__name__
    if kind == "ClauseOr":
        return {"or": [_clause(c) for c in clause.or_]}  # type: ignore[attr-defined]
    if kind == "ClauseAnd":
        return {"and": [_clause(c) for c in clause.and_]}  # type: ignore[attr-defined]
    for attr in ("starts_with", "ends_with", "contains", "equals", "regex"):
        if hasattr(clause, attr):
            return {attr: getattr(clause, attr)}
    raise ValueError(f"unknown match clause {clause!r}")


def snapshot_from_genai_prices(today: str | None = None) -> dict:
    """The prices.json document: genai-prices' providers of SNAPSHOT_PROVIDERS, each model with its
    match rule and the prices in force today (dated conditional prices resolved), token prices only."""
    from datetime import date, datetime, timezone

    import genai_prices
    from genai_prices import data

    when = datetime.fromisoformat(today or date.today().isoformat()).replace(tzinfo=timezone.utc)
    names = {"input": "input_mtok", "output": "output_mtok", "cache_read": "cache_read_mtok",
             "cache_write": "cache_write_mtok", "cache_write_1h": "cache_write_1h_mtok"}

    def number(value: object) -> float:
        return float(value)  # type: ignore[arg-type]

    providers = []
    for provider in data.providers:
        if provider.id not in SNAPSHOT_PROVIDERS:
            continue
        models = []
        for model in provider.models:
            price = model.get_prices(when)
            if getattr(price, "input_mtok", None) is None or getattr(price, "output_mtok", None) is None:
                continue
            entry: dict = {"id": model.id, "match": _clause(model.match)}
            starts: set[int] = set()
            for kind, attr in names.items():
                value = getattr(price, attr, None)
                if value is None:
                    continue
                if hasattr(value, "tiers"):
                    entry[kind] = number(value.base)
                    starts.update(t.start for t in value.tiers)
                else:
                    entry[kind] = number(value)
            tiers = []
            for start in sorted(starts):
                tier: dict = {"above": start}
                for kind, attr in names.items():
                    value = getattr(price, attr, None)
                    if value is not None and hasattr(value, "tiers"):
                        passed = [t.price for t in value.tiers if t.start <= start]
                        tier[kind] = number(passed[-1] if passed else value.base)
                tiers.append(tier)
            if tiers:
                entry["tiers"] = tiers
            models.append(entry)
        providers.append({"id": provider.id, "match": _clause(provider.model_match) if provider.model_match else None,
                          "models": models})
    return {"date": when.date().isoformat(), "source": f"genai-prices {genai_prices.__version__}",
            "currency": "USD", "unit": "dollars per million tokens",
            "note": "Written by `python -m monitor.read.pricing` from the genai-prices package (Anthropic, OpenAI,"
                    " Google; prices in force on the date above; cache_write is the 5-minute cache write,"
                    " cache_write_1h the 1-hour one; tiers apply when a request's input passes 'above' tokens)."
                    " Override or extend with your own file: --prices FILE or $MONITOR_PRICES.",
            "models": {}, "providers": providers}


def write_snapshot(path: Path = SNAPSHOT, today: str | None = None) -> int:
    """Rewrite prices.json from the installed genai-prices; return how many models it holds."""
    document = snapshot_from_genai_prices(today)
    lines = ["{"]
    head = {k: v for k, v in document.items() if k != "providers"}
    lines += [f"  {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()]
    lines.append('  "providers": [')
    for i, provider in enumerate(document["providers"]):
        lines.append(f'    {{"id": {json.dumps(provider["id"])}, "match": {json.dumps(provider["match"])}, "models": [')
        models = [f"      {json.dumps(m)}" for m in provider["models"]]
        lines.append(",\n".join(models))
        lines.append("    ]}" + ("," if i < len(document["providers"]) - 1 else ""))
    lines += ["  ]", "}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sum(len(p["models"]) for p in document["providers"])


if __name__ == "__main__":
    import sys

    print(f"{write_snapshot(today=sys.argv[1] if len(sys.argv) > 1 else None)} models written to {SNAPSHOT}")
