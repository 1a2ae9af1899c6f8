# Sourced by gpu_session.sh and gpu_sweep.sh after they set $out and $budget: the work folders, the
# clock, logging to OUT/log.txt, the gesturegan command line and the data both need. Not run on its own.
out=$(mkdir -p "$out" && cd "$out" && pwd)
work=${WORK:-$out/work}
res=$work/results  # what comes back, packed: reports, PNGs, logs
mkdir -p "$res"
cd "$(dirname "${BASH_SOURCE[0]}")/../.." || exit 1
t0=$(date +%s)
elapsed() { echo $(( $(date +%s) - t0 )); }
left() { echo $(( budget - $(elapsed) )); }
say() { echo "[$(elapsed) s] $*"; }
exec > >(tee -a "$out/log.txt") 2>&1
GG=${GESTUREGAN:-gesturegan}  # a command line; "python3 -m instrument" where the package is not installed

# The built-in corpus (seed 0), its cache and the gesture classifier, in $work; the classifier's report in $res.
prepare_cache() {
    $GG dataset synth --out "$work/corpus" --per-category "$1" --seed 0 -j 8 -q &&
        $GG dataset build "$work/corpus" --out "$work/cache" -j 8 -q > "$res/cache.txt"
}
prepare_classifier() { $GG classifier train "$work/cache" --out "$work/classifier.pt" --seed 0 -q > "$res/classifier.txt"; }
prepare_data() { prepare_cache "$1" && prepare_classifier; }
