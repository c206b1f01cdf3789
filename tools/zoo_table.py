"""Print the shipped zoo as a markdown table (for docs/models.md) from the models' own config/recipe files.

    python tools/zoo_table.py > /tmp/table.md
"""

import json
import math

from lm.store.registry import RECIPE_FILE, list_models


def main() -> None:
    print("| model | family | tokenizer | parameters | training time | tokens seen | held-out nats/char | held-out bits/char |")
    print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for info in list_models():
        if info.source != "zoo":
            continue
        file = info.path / (RECIPE_FILE if (info.path / RECIPE_FILE).is_file() else "config.json")
        meta = json.loads(file.read_text(encoding="utf-8"))
        training = meta.get("training", {})
        metrics = meta.get("metrics", {})
        bpc = metrics.get("valid_bits_per_char")
        if training:
            seconds = training.get("seconds", 0)
            time_text = f"{seconds / 60:.1f} min ({training.get('steps', '?')} steps)"
            tokens = f"{training.get('tokens_seen', 0):,}"
        else:
            time_text, tokens = "counted on first use", f"{meta.get('parameters', 0):,} n-grams"
        print(f"| `{info.name}` | {info.variant} | {info.tokenizer} | {meta.get('parameters', 0):,} | {time_text} | "
              f"{tokens} | {bpc * math.log(2):.3f} | {bpc:.3f} |" if bpc else f"| `{info.name}` | … |")


if __name__ == "__main__":
    main()
