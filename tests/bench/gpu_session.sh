#!/usr/bin/env bash
# One GPU session for the training figures (issue 12), in a fixed time budget:
#   1. training speed of the paper-size models (WaveGAN d=64, SpecGAN d=64 128x128, batch 64) and the
#      laptop recipe: fp32 against bf16 against torch.compile (tests/bench/bench_train.py);
#   2. the bundled model's recipe at paper size (WaveGAN d=64, batch 64: --recipe laptop --model-dim 64
#      --batch-size 64 --aux-class 1 --aux-confidence 0.9) for the rest of the budget;
#   3. gesturegan evaluate of its last checkpoints on the GPU (moving average and live weights).
# The built-in corpus (256 a category, seed 0), its cache and the gesture classifier are made on the
# CPU while step 1 runs.
#
#   bash tests/bench/gpu_session.sh OUT [BUDGET_SECONDS]      (default 540)
#
# OUT gets log.txt (everything printed), results.tar.gz (the benchmark JSON, the run's config, losses
# and previews, the evaluate reports and PNGs) and the last evaluate PNG; the corpus, cache, checkpoints
# and unpacked results stay in $WORK (default OUT/work). SMOKE=1 runs the same steps at toy sizes on any machine, to check the script.
set -uo pipefail
out=${1:?usage: gpu_session.sh OUT [BUDGET_SECONDS]}
budget=${2:-540}
source "$(dirname "$0")/gpu_common.sh"

if [ "${SMOKE:-0}" = 1 ]; then
    per_category=16; bench_args=(--quick --steps 1 --warmup 1); compile_configs=wavegan-d16
    run_args=(--model-dim 8 --batch-size 16); eval_n=8; device=cpu
else
    per_category=256; bench_args=(--configs wavegan-d64,specgan-d64 --steps 10 --warmup 3); compile_configs=wavegan-d64,specgan-d64
    run_args=(--model-dim 64 --batch-size 64); eval_n=128; device=cuda
fi
# what is left for training after the benchmarks: evaluation and packing need about 90 s
reserve=90

say "machine: $(uname -m), $(nproc) cores; python $(python3 -c 'import sys; print(sys.version.split()[0])'), torch $(python3 -c 'import torch; print(torch.__version__)')"
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>/dev/null || say "no nvidia-smi"

# -- data and classifier, on the CPU, beside the benchmarks
prepare_data "$per_category" > "$res/prep.log" 2>&1 &
prep=$!

# -- 1. training speed: eager and bf16 first (quick), then torch.compile (compiles in the warm-up steps)
if [ "${SKIP_BENCH:-0}" != 1 ]; then
say "bench: eager and bf16"
timeout 110 python3 tests/bench/bench_train.py "${bench_args[@]}" --variants eager,bf16 --recipes laptop --json "$res/bench-eager.json"
say "bench: torch.compile"
timeout 150 python3 tests/bench/bench_train.py "${bench_args[@]}" --configs "$compile_configs" --variants compile,bf16+compile --json "$res/bench-compile.json"
fi

# -- 2. the bundled model's recipe at paper size, until the budget says stop
while [ ! -f "$work/cache/manifest.json" ] && kill -0 "$prep" 2>/dev/null; do sleep 1; done
run="$work/run-d64"
train_for=$(( $(left) - reserve ))
((train_for < 30)) && train_for=30
say "training the recipe at paper size for $train_for s"
$GG train "$work/cache" --out "$run" --recipe laptop "${run_args[@]}" --aux-class 1 --aux-confidence 0.9 --steps 1000000 \
    --checkpoint-every 250 --keep-checkpoints 40 --preview-every 1000 --device "$device" --seed 0 -q &
trainer=$!
sleep "$train_for"
kill -INT "$trainer" 2>/dev/null; sleep 5; kill "$trainer" 2>/dev/null; wait "$trainer" 2>/dev/null
say "checkpoints (step, written at s since start):"
for f in "$run"/ckpt-*.pt; do [ -f "$f" ] && echo "  $(basename "$f") $(( $(stat -c %Y "$f") - t0 ))"; done

# -- 3. evaluate the last checkpoint (both weights) and the one halfway, on the GPU
while kill -0 "$prep" 2>/dev/null && [ "$(left)" -gt 70 ]; do sleep 1; done
kill -0 "$prep" 2>/dev/null && say "the classifier is still training: stopped" && kill "$prep"
wait "$prep"; say "prep exit $?"; cat "$res/prep.log" "$res/cache.txt" "$res/classifier.txt" 2>/dev/null | tail -n 16
mapfile -t ckpts < <(ls "$run"/ckpt-*.pt 2>/dev/null | sort)
if ((${#ckpts[@]})); then
    last=${ckpts[-1]}; mid=${ckpts[$(( ${#ckpts[@]} / 2 ))]}
    specs=("$last ema" "$last raw")
    [ "$mid" != "$last" ] && specs+=("$mid ema")
    for spec in "${specs[@]}"; do
        set -- $spec
        name="eval-$(basename "$1" .pt)-$2"
        say "evaluate $name"
        timeout 60 $GG evaluate "$1" --weights "$2" --classifier "$work/classifier.pt" --device "$device" -n "$eval_n" \
            --json "$res/$name.json" --png "$res/$name.png" -q > "$res/$name.txt" 2>&1
        cat "$res/$name.txt"
    done
fi

# -- pack: what a reader needs, without the checkpoints
say "packing"
for f in config.json losses.csv losses.png previews; do [ -e "$run/$f" ] && cp -r "$run/$f" "$res/"; done
tar -czf "$out/results.tar.gz" -C "$work" results
[ -n "${last:-}" ] && cp "$res/eval-$(basename "$last" .pt)-ema.png" "$out/" 2>/dev/null
ls -la "$out"
say "done"
