#!/usr/bin/env bash
# One short GPU check (about 5 minutes on one H100): distillation (embeddings and LoRA, bf16) and
# hypernetwork training on SmolLM2-135M -> a 32k German BPE, on one GPU; prints tokens/s and peak
# GPU memory next to the CPU numbers measured in README. Needs the install line of README.md and
# ../shared (the German corpus); writes bench/out/gpu_check/results.json.
set -euo pipefail
cd "$(dirname "$0")/.."
python bench/gpu_check.py "$@"
