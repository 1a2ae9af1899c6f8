#!/usr/bin/env bash
# A recipe sweep on one GPU in a fixed time budget: several laptop-size runs (d=16) at once, each 2,000
# steps from seed 0 on the built-in corpus, then `gesturegan evaluate` of each (moving average and live
# weights) and one table. On an NVIDIA H200 the laptop recipe alone runs 19.7 steps/s; small models leave
# the GPU mostly idle, so 6-8 of them share it (tests/bench/README.md, "On a GPU").
#
#   bash tests/bench/gpu_sweep.sh OUT [BUDGET_SECONDS] [VARIANTS_FILE]      (default 540, the list below)
#
# VARIANTS_FILE: one run a line, "NAME ARGS..." (the options `gesturegan train` takes after --recipe
# laptop; `#` starts a comment). A NAME starting with "real-" trains on the cache $REAL_CACHE and is
# judged by the classifier $REAL_CLASSIFIER (both made elsewhere, e.g. the Debian corpus, which a
# machine without the network cannot build); those runs start at once, before the built-in corpus is
# made. OUT gets log.txt, summary.md (one row a run and weights) and results.tar.gz (every evaluate
# report and PNG, every run's losses and config); the corpus, cache and checkpoints stay in $WORK
# (default OUT/work). SMOKE=1 runs the same steps at toy sizes on any machine.
set -uo pipefail
out=${1:?usage: gpu_sweep.sh OUT [BUDGET_SECONDS] [VARIANTS_FILE]}
budget=${2:-540}
variants=${3:-}
[ -n "$variants" ] && variants=$(cd "$(dirname "$variants")" && pwd)/$(basename "$variants")
source "$(dirname "$0")/gpu_common.sh"

if [ "${SMOKE:-0}" = 1 ]; then
    per_category=16; steps=4; size=(--model-dim 4 --batch-size 8); eval_n=8; device=cpu
else
    per_category=256; steps=${STEPS:-2000}; size=(); eval_n=128; device=cuda
fi
default_variants="P --aux-class 1 --aux-confidence 0.9
P-ms-late --aux-class 1 --aux-confidence 0.9 --mode-seeking 0.02 --mode-seeking-from 1000
P-aux0.5 --aux-class 0.5 --aux-confidence 0.9
P-lines --aux-class 1 --aux-confidence 0.9 --line-penalty 0.0003
P-tied --aux-class 1 --aux-confidence 0.9 --upsample tied
P-b64 --aux-class 1 --aux-confidence 0.9 --batch-size 64"

say "machine: $(nproc) cores; torch $(python3 -c 'import torch; print(torch.__version__)')"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null || say "no nvidia-smi"
# -- every variant at once, each with a few CPU threads; stopped at the budget whatever step it reached
# (explicit pids everywhere: a bare `wait` would also wait for the log's tee, which never ends)
names=() pids=() lines=()
while read -r name args; do
    [ -z "$name" ] || [ "${name:0:1}" = "#" ] && continue
    if [ "${name:0:5}" = real- ] && [ -z "${REAL_CACHE:-}" ]; then say "$name: skipped (no REAL_CACHE)"; continue; fi
    lines+=("$name $args")
done < <(if [ -n "$variants" ]; then cat "$variants"; else echo "$default_variants"; fi)
alive() { local n=0 p; for p in "$@"; do kill -0 "$p" 2>/dev/null && n=$((n + 1)); done; echo "$n"; }
launch() {  # NAME ARGS...: one training run in the background
    local name=$1 cache=$work/cache; shift
    [ "${name:0:5}" = real- ] && cache=$REAL_CACHE
    names+=("$name")
    $GG train "$cache" --out "$work/run-$name" --recipe laptop "${size[@]}" "$@" --steps "$steps" --seed 0 \
        --checkpoint-every $(( steps >= 5 ? steps / 5 : 1 )) --keep-checkpoints 5 --preview-every 0 --device "$device" --threads "${THREADS:-2}" -q \
        > "$res/train-$name.log" 2>&1 &
    pids+=($!)
}
# shellcheck disable=SC2086 -- ARGS are options, split on purpose
for line in "${lines[@]}"; do [ "${line:0:5}" = real- ] && launch $line; done
reuse=0; [ -e "$work/cache/manifest.json" ] && [ -e "$work/classifier.pt" ] && reuse=1  # a second sweep in the same WORK
[ $reuse = 1 ] && say "reusing the corpus, cache and classifier in $work"
[ $reuse = 1 ] || prepare_cache "$per_category" || { say "the built-in corpus or its cache failed"; exit 1; }
# shellcheck disable=SC2086
for line in "${lines[@]}"; do [ "${line:0:5}" = real- ] || launch $line; done
[ $reuse = 1 ] || prepare_classifier || { say "the classifier failed"; exit 1; }  # needed by the evaluations only: trained beside the runs
head -n 1 "$res/classifier.txt"
say "training ${#names[@]} runs at once: ${names[*]}"
deadline=$(( budget - ${EVAL_RESERVE:-150} ))  # evaluation and packing need about 150 s
while [ "$(alive "${pids[@]}")" -gt 0 ] && [ "$(elapsed)" -lt "$deadline" ]; do sleep 2; done
if [ "$(alive "${pids[@]}")" -gt 0 ]; then say "budget reached: stopping the runs still training"; kill "${pids[@]}" 2>/dev/null; fi
wait "${pids[@]}" 2>/dev/null

# -- evaluate each run's last EVAL_LAST checkpoints (default 1), both weights, 8 at once
pids=()
for name in "${names[@]}"; do
    ckpts=$(ls "$work/run-$name"/ckpt-*.pt 2>/dev/null | sort | tail -n "${EVAL_LAST:-1}")
    [ -n "$ckpts" ] || { say "$name: no checkpoint (see train-$name.log)"; tail -n 3 "$res/train-$name.log"; continue; }
    for last in $ckpts; do
    s=$(basename "$last" .pt); s=$((10#${s#ckpt-}))
    for w in ema raw; do
        clf=$work/classifier.pt
        [ "${name:0:5}" = real- ] && clf=$REAL_CLASSIFIER
        timeout 90 $GG evaluate "$last" --weights "$w" --classifier "$clf" --device "$device" -n "$eval_n" \
            --json "$res/eval-$name-$s-$w.json" --png "$res/eval-$name-$s-$w.png" -q > "$res/eval-$name-$s-$w.txt" 2>&1 &
        pids+=($!)
        while [ "$(alive "${pids[@]}")" -ge 8 ]; do sleep 1; done
    done
    done
done
[ ${#pids[@]} -gt 0 ] && wait "${pids[@]}" 2>/dev/null

python3 - "$res" "${names[@]}" > "$out/summary.md" <<'PY'
import json, sys
from pathlib import Path
res, names = Path(sys.argv[1]), sys.argv[2:]
print("| run | step | weights | accuracy per category | mean | IS (real) | diversity per category | artefact excess |")
print("|---|---|---|---|---|---|---|---|")
for name in names:
    mine = [f for f in res.glob(f"eval-{name}-*.json") if "-".join(f.stem.split("-")[1:-2]) == name]
    for f in sorted(mine, key=lambda f: (int(f.stem.split("-")[-2]), f.stem.split("-")[-1])):
        w = f.stem.split("-")[-1]
        d = json.loads(f.read_text())
        acc = " / ".join(f"{100 * v:.0f}" for v in d["category_accuracy"].values())
        div = " / ".join(f"{100 * v:.0f}" for v in d["diversity"]["per_category"].values())
        print(f"| {name} | {d['step']} | {w} | {acc}% | {100 * d['category_accuracy_mean']:.0f}% | "
              f"{d['inception_score_generated']:.2f} ({d['inception_score_real']:.2f}) | {div}% | "
              f"{d['periodic_artefact_db']['excess']:+.1f} dB |")
PY
cat "$out/summary.md"
for name in "${names[@]}"; do
    for f in config.json losses.csv losses.png; do [ -e "$work/run-$name/$f" ] && cp "$work/run-$name/$f" "$res/$name-$f"; done
done
tar -czf "$out/results.tar.gz" -C "$work" results
say "done"
