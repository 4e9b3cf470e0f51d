"""A recipe's results as ``report.md`` and PNG plots, and the command lines that reproduce them."""

from __future__ import annotations

import shlex
from pathlib import Path



def fewer_tokens(before: int, after: int) -> str:
    share = 1 - after / max(before, 1)
    return f"{abs(share):.0%} {'fewer' if share >= 0 else 'more'} tokens"


def command_line(words) -> str:
    return " ".join(shlex.quote(str(w)) for w in words)


def render_report(r: dict) -> str:
    from transplant.table import markdown_table

    t = r["text"]
    tok = r["tokenizer"]
    lines = [f"# {r['name']} ({r['language']}): {r['model']} on a new tokenizer" + (" (--quick)" if r["quick"] else ""), ""]
    lines.append(f"Text: {t['source']}; {t['train_lines']:,} training lines ({t['train_bytes']:,} bytes, {t['repeated_lines_removed']} repeated lines removed, "
                 f"{t['held_out_lines_removed_from_train']} held-out lines removed from training); held out: {t['held_out_bytes']:,} bytes ({t['split']}).")
    if r["text_note"]:
        lines.append(r["text_note"])
    lines += ["", "## Results", ""]
    lines.append(f"Bits per byte on the held-out text (lower is better), zero-shot unless distilled; default method **{r['default_method']}**.")
    lines.append("")
    headers = ["model", "bits/byte", "vs original", "bytes/token", "tokens", "convert s", "score s"]
    table = []
    for row in r["rows"]:
        name = row["model"] + (" (default)" if row["default"] else "")
        table.append([name, row["bits_per_byte"], None if row["method"] is None else f"{row['delta']:+.4f}", row["bytes_per_token"], row["tokens"],
                      None if row["convert_s"] is None else f"{row['convert_s']:.1f}", f"{row['score_s']:.1f}"])
    lines.append(markdown_table(headers, table))
    lines += ["", f"Tokenizer: {tok['vocab']:,} tokens" + (f" (given: {tok['given']})" if tok["given"] else f" ({'SuperBPE' if tok.get('type') == 'superbpe' else 'BPE'} trained on the training lines in the model's style)")
              + f"; bytes per token on the held-out text {tok['original']['bytes_per_token']:.3f} (original, {tok['source_vocab']:,} tokens) -> "
              f"{tok['new']['bytes_per_token']:.3f} ({fewer_tokens(tok['original']['tokens'], tok['new']['tokens'])}); tokens per word {tok['original']['tokens_per_word']:.3f} -> {tok['new']['tokens_per_word']:.3f}.", ""]
    if tok.get("quality"):
        from transplant.tokenizer_report import HEADERS

        lines.append("Tokenizer quality on the held-out text (`transplant tokenizer-report`; vocab used = distinct tokens seen / vocabulary):")
        lines.append("")
        sizes = {"original": tok["source_vocab"], "new": tok["vocab"]}
        lines.append(markdown_table(HEADERS, [[q["tokenizer"], q["text"], sizes[q["tokenizer"]], q["bytes_per_token"], q["fertility"], q["continued_words"],
                                               q["whole_word_tokens"], q["vocabulary_used"]] for q in tok["quality"]]))
        lines.append("")
    lines.append("How each method set the new tokens' rows (input embeddings):")
    lines.append("")
    for row in r["rows"]:
        if row["rules"]:
            lines.append(f"- {row['model']}: " + ", ".join(f"{k} {v}" for k, v in sorted(row["rules"].items(), key=lambda kv: -kv[1])))
    lines += ["", "![bits per byte](bits_per_byte.png) ![bytes per token](bytes_per_token.png)", "", "## Wall times", ""]
    lines.append(markdown_table(["step", "seconds", "this run"], [[s["step"], f"{s['seconds']:.1f}", "reused" if s["reused"] else "built"] for s in r["steps"]]))
    built = sum(s["seconds"] for s in r["steps"])
    reused = sum(1 for s in r["steps"] if s["reused"])
    threads = f" on {r['threads']} CPU thread{'s' if r['threads'] > 1 else ''}" if r["threads"] else ""
    timing = (f"All steps: {built:.0f} s when built{threads} (a reused step shows the time it took when it was built); "
              f"this run: {r['wall_s']:.0f} s, {reused} of {len(r['steps'])} steps reused.")
    lines += ["", timing, ""]
    lines += ["## Commands", "", "The recipe, as run:", "", "```", r["command"], "```", "", "The same steps as `transplant` commands:", "", "```", *r["commands"], "```", ""]
    lines += [f"`model/` is the final checkpoint ({next(row['model'] for row in r['rows'] if row['final'])}); the other checkpoints and every step are in `{r['work_dir']}/`.", ""]
    return "\n".join(lines)


def plot_results(r: dict, directory: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = r["rows"]
    names = [row["model"] for row in rows][::-1]
    colors = ["#888" if row["method"] is None else "#3a7" if row["final"] else "#69c" for row in rows][::-1]
    title = f"{r['model']} -> {r['tokenizer']['vocab']:,}-token {r['name']} tokenizer; {rows[0]['bytes']:,} held-out bytes"
    tok = r["tokenizer"]
    charts = (
        ("bits per byte on held-out text (lower is better)", "bits_per_byte.png", names, [row["bits_per_byte"] for row in rows][::-1], colors),
        ("bytes per token on held-out text (higher: fewer tokens)", "bytes_per_token.png",
         [f"new ({tok['vocab']:,} tokens)", f"original ({tok['source_vocab']:,} tokens)"], [tok["new"]["bytes_per_token"], tok["original"]["bytes_per_token"]], ["#3a7", "#888"]),
    )
    for xlabel, file, names, values, colors in charts:
        figure, axis = plt.subplots(figsize=(8, 0.45 * len(values) + 1.3))
        bars = axis.barh(names, values, color=colors)
        axis.bar_label(bars, fmt="%.3f", padding=3)
        axis.set_xlabel(xlabel)
        axis.set_title(title, fontsize=9)
        axis.set_xlim(0, max(values) * 1.18)
        figure.tight_layout()
        figure.savefig(directory / file, dpi=110)
        plt.close(figure)
