#!/usr/bin/env bash
# Installs everything GestureGAN's test suite needs on a fresh Debian/Ubuntu machine, then runs it.
#   - system packages (PortAudio, JACK, gcc for the engine's C core, liblo's oscsend/oscdump, SuperCollider's sclang and Pure Data's pd,
#     the real OSC clients the example patches are tested with, and Chromium for the control page's browser
#     test, driven by Playwright) through apt-get when run as root and
#     missing; otherwise it says which are missing and the tests that need them skip with that reason;
#   - a virtual environment in .venv with gesturegan installed editable, with its [train,test] extras;
#   - a JACK server on the dummy driver (48 kHz, 128 frames) for the audio tests, stopped at the end;
#   - pytest over tests/ (benchmarks in tests/bench are run separately, see tests/bench/README.md).
# Exit status: pytest's, except that "no tests collected" (pytest's 5) is a failure too.
set -euo pipefail
cd "$(dirname "$0")/.."

SYSTEM_PACKAGES=(libportaudio2 jackd2 gcc liblo-tools supercollider-language puredata-core chromium)
missing=()
for p in "${SYSTEM_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
# Chromium is Debian's package; where it is not one (Ubuntu ships a snap), its test skips rather than the install failing
browser=()
if [[ " ${missing[*]} " == *" chromium "* ]]; then
    missing=("${missing[@]/chromium/}"); missing=(${missing[@]}); browser=(chromium)
fi
if ! python3 -c 'import ensurepip, venv' 2>/dev/null; then missing+=(python3-venv); fi
if ((${#missing[@]} + ${#browser[@]})); then
    missing_all=("${missing[@]}" "${browser[@]}")
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing system packages: ${missing_all[*]}"
        export DEBIAN_FRONTEND=noninteractive
        echo "jackd2 jackd/tweak_rt_limits boolean false" | debconf-set-selections 2>/dev/null || true
        apt-get update -qq
        if ((${#missing[@]})); then apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; fi
        if ((${#browser[@]})); then
            apt-get install -y -qq --no-install-recommends "${browser[@]}" >/dev/null ||
                echo "warning: could not install chromium; the control page's browser test will skip" >&2
        fi
    else
        echo "warning: missing system packages ${missing_all[*]} (run as root to install them); tests that need them will skip" >&2
    fi
fi

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[train,test]"
# the engine's real-time core (instrument/core.c), compiled once into ~/.cache/gesturegan; says where, or why not
.venv/bin/python -c 'import instrument.ccore as c; c.main()'

# The audio tests play through a real PortAudio stream on JACK's dummy driver (paced in real time, no
# sound card): start a server for them unless one is running, and stop it afterwards.
# Real-time scheduling where the machine allows it (as on a musician's JACK setup), else --no-realtime.
# (jack_wait -c exits 0 either way: read what it says.)
if command -v jackd >/dev/null && [ "$(jack_wait -c 2>/dev/null)" != running ]; then
    jackd_log="${TMPDIR:-/tmp}/gesturegan-jackd.log"
    for mode in -R --no-realtime; do
        jackd "$mode" -d dummy -r 48000 -p 128 >"$jackd_log" 2>&1 &
        jackd_pid=$!
        if jack_wait -w -t 10 >/dev/null 2>&1 && kill -0 "$jackd_pid" 2>/dev/null; then break; fi
        kill "$jackd_pid" 2>/dev/null || true
        wait "$jackd_pid" 2>/dev/null || true
        jackd_pid=
    done
    if [ -n "$jackd_pid" ]; then
        trap 'kill "$jackd_pid" 2>/dev/null || true; wait "$jackd_pid" 2>/dev/null || true' EXIT
    else
        echo "warning: jackd did not start (see $jackd_log); the audio tests will try again themselves" >&2
    fi
fi

set +e
export PATH="$PWD/.venv/bin:$PATH"  # the gesturegan console script, as a user would run it
.venv/bin/python -m pytest "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$status"
