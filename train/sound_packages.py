"""A corpus of real recordings from Debian's own packages: ``gesturegan dataset debian --out DIR``.

The recordings are sound effects and instrument samples that Debian ships for other programs (Sonic Pi's
sample library, LMMS's samples, the freedesktop, KDE Oxygen and Lomiri sound themes, Tux Paint, Pingus and
Frozen Bubble), each filed under the gesture category it plainly is by its name and use: a click is a trigger, a bell a
trigger continuous, a pad or a whoosh a continuous variation, a beat loop a continuous repetition.
Speech, music tracks and drum-kit samples (LMMS's ``drums/``, Sonic Pi's ``drum_``, ``bd_`` and ``sn_``
sets) are left out (drum kits and General MIDI soundfonts are what
the project's independent check uses, so this corpus does not overlap it).

What is written:

- one-shots (trigger, trigger continuous): one second from the first sample above -40 dB re the file's
  peak; the rest of a long ringing tail is dropped, so the clip made from it holds its attack;
- continuous recordings: the whole file, for ``gesturegan dataset build DIR --overlap 0.5`` to cut into
  clips every half second (a ten-second drone gives about twenty). One file per recording keeps the
  classifier's split by recording honest: excerpts of one drone never sit on both sides of it.

Files are rewritten as float WAV (mono or stereo as they were), so a file that cannot be decoded is
found, skipped and reported here rather than later. ``DIR/corpus.json`` records for each file the
package and its version, the source file, the offset, and the copyright holder and licence that the
package's ``debian/copyright`` file states for that file.
The packages are installed with ``--install`` (as root: ``apt-get install``); otherwise missing ones are
named with the command that installs them.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from instrument.files import write_atomic

from .errors import DatasetError

EXCERPT_SECONDS = 1.0  # one-shots: kept from the attack
ONSET_DB = -40.0
MIN_PEAK_DBFS = -50.0  # a file quieter than this is skipped as silent
TRIGGERS = ("trigger", "trigger_continuous")


@dataclass(frozen=True)
class Source:
    package: str
    folder: str  # under the install root, e.g. "usr/share/sonic-pi/samples"
    files: dict[str, tuple[str, ...]]  # category -> file name patterns (fnmatch, without the folder)


SOURCES: tuple[Source, ...] = (
    Source("sonic-pi-samples", "usr/share/sonic-pi/samples", {
        "trigger": ("elec_beep.*", "elec_blip.*", "elec_blip2.*", "elec_blup.*", "elec_bong.*", "elec_flip.*", "elec_fuzz_tom.*",
                    "elec_hi_snare.*", "elec_hollow_kick.*", "elec_lo_snare.*", "elec_mid_snare.*", "elec_plip.*", "elec_pop.*",
                    "elec_snare.*", "elec_soft_kick.*", "elec_tick.*", "elec_twip.*", "elec_wood.*", "elec_ping.*", "perc_snap.*",
                    "perc_snap2.*", "perc_swash.*", "perc_impact1.*", "perc_impact2.*", "tabla_dhec.*", "tabla_ke?.*", "tabla_na.*",
                    "tabla_na_s.*", "tabla_re.*", "tabla_te?.*", "tabla_te_m.*", "tabla_te_ne.*", "tabla_ghe1.*", "tabla_ghe8.*",
                    "bass_hit_c.*", "bass_voxy_hit_c.*", "glitch_perc?.*", "vinyl_scratch.*", "misc_crow.*"),
        "trigger_continuous": ("perc_bell.*", "perc_bell2.*", "elec_chime.*", "elec_bell.*", "elec_triangle.*", "elec_twang.*",
                               "elec_cymbal.*", "guit_em9.*", "guit_e_fifths.*", "guit_harmonics.*", "ambi_piano.*", "tabla_ghe[2-7].*",
                               "tabla_tun?.*", "tabla_na_o.*", "tabla_tas?.*", "bass_drop_c.*", "bass_hard_c.*", "bass_thick_c.*",
                               "bass_woodsy_c.*", "misc_cineboom.*", "perc_till.*", "perc_door.*"),
        "continuous_variation": ("ambi_choir.*", "ambi_dark_woosh.*", "ambi_drone.*", "ambi_glass_hum.*", "ambi_glass_rub.*",
                                 "ambi_haunted_hum.*", "ambi_lunar_land.*", "ambi_sauna.*", "ambi_swoosh.*", "perc_swoosh.*",
                                 "vinyl_rewind.*", "vinyl_backspin.*", "vinyl_hiss.*", "guit_e_slide.*", "bass_voxy_c.*", "bass_trance_c.*",
                                 "glitch_robot?.*", "mehackit_robot?.*"),
        "continuous_repetition": ("loop_*.*", "mehackit_phone?.*", "ambi_soft_buzz.*", "bass_dnb_f.*", "glitch_bass_g.*"),
    }),
    Source("lmms-common", "usr/share/lmms/samples", {
        "trigger": ("basses/*", "instruments/bassslap0?.*", "instruments/violin_pizzicato01.*", "misc/hit0?.*", "misc/snaph01.*",
                    "misc/bass!.*", "effects/explode01.*"),
        "trigger_continuous": ("instruments/piano0?.*", "instruments/e_piano_accord0?.*", "instruments/harpsichord01.*",
                               "instruments/steel_guitar*.*", "latin/latin_guitar0?.*", "misc/dong0?.*", "misc/metalish_dong01.*",
                               "misc/electric_ping01.*", "effects/wind_chimes01.*", "stringsnpads/bell_choir0?.*"),
        "continuous_variation": ("stringsnpads/chorus0?.*", "stringsnpads/heaven_strings01.*", "stringsnpads/juno_pad01.*",
                                 "stringsnpads/korg_poly6_drone01.*", "stringsnpads/nord_ambient01.*", "stringsnpads/orion_string01.*",
                                 "stringsnpads/rave_choir01.*", "stringsnpads/space_strings0?.*", "stringsnpads/strings01.*",
                                 "effects/filter_sweep01.*", "effects/warp0?.*", "effects/start0?.*", "effects/stop01.*",
                                 "effects/chroma_sound_effect01.*", "misc/breath01.*", "instruments/cello01.*", "instruments/flute01.*",
                                 "instruments/violin_fingered01.*", "instruments/violin_double_stop01.*", "instruments/trumpet01.*",
                                 "instruments/church_organ0?.*", "instruments/e_organ01.*"),
        "continuous_repetition": ("beats/*", "bassloops/*", "misc/metronome0?.*", "misc/applause01.*", "misc/raving_crowd01.*",
                                  "misc/buzz!.*", "effects/scratch01.*"),
    }),
    Source("sound-theme-freedesktop", "usr/share/sounds/freedesktop/stereo", {
        "trigger": ("audio-volume-change.*", "camera-shutter.*", "device-added.*", "device-removed.*", "message.*", "power-plug.*",
                    "power-unplug.*", "screen-capture.*", "dialog-information.*", "network-connectivity-*.*", "bell.*"),
        "trigger_continuous": ("complete.*", "service-login.*", "service-logout.*", "message-new-instant.*", "dialog-warning.*",
                               "dialog-error.*", "suspend-error.*", "window-attention.*", "window-question.*"),
        "continuous_variation": ("trash-empty.*",),
        "continuous_repetition": ("alarm-clock-elapsed.*", "phone-incoming-call.*", "phone-outgoing-busy.*", "phone-outgoing-calling.*"),
    }),
    Source("tuxpaint-data", "usr/share/tuxpaint/sounds", {
        "trigger": ("bleep.*", "bubble.*", "click.*", "flip.*", "keyclick.*", "line_end.*", "line_start.*", "mirror.*", "stamp.*",
                    "save.*", "return.*", "italic_o*.*", "paint?.*", "eraser?.*"),
        "trigger_continuous": ("harp.*", "typewriterbell.*"),
        "continuous_variation": ("grow.*", "shrink.*", "thick.*", "thin.*", "fill.*"),
        "continuous_repetition": ("scroll.*",),
    }),
    Source("pingus-data", "usr/share/games/pingus/data/sounds", {
        "trigger": ("chink.*", "plop.*", "plop2.*", "tick.*", "splash.*"),
        "trigger_continuous": ("ting.*",),
        "continuous_repetition": ("digger.*",),
    }),
    Source("frozen-bubble-data", "usr/share/games/frozen-bubble/snd", {
        "trigger": ("launch.*", "rebound.*", "stick.*", "cancel.*", "chatted.*", "menu_change.*", "menu_selected.*", "pause.*",
                    "newroot.*", "malus.*", "noh.*", "hurry.*"),
        "trigger_continuous": ("lose.*", "newroot_solo.*"),
        "continuous_variation": ("snore.*", "destroy_group.*"),
        "continuous_repetition": ("applause.*", "typewriter.*"),
    }),
    # KDE's Oxygen theme: notification chimes that ring on (trigger continuous) and window-action swishes that stop
    Source("oxygen-sounds", "usr/share/sounds", {
        "trigger": tuple(f"Oxygen-Window-{n}.*" for n in ("Close", "Maximize", "Minimize", "Move-Stop", "Shade-Down", "Shade-Up",
                                                          "All-Desktops", "All-Desktops-Not")),
        "trigger_continuous": tuple(f"Oxygen-{n}.*" for n in (
            "Im-Cant-Connect", "Im-Connection-Lost", "Im-Error-On-Connection", "Im-Highlight-Msg", "Im-Internal-Error", "Im-Irc-Event",
            "Im-Low-Priority-Message", "Im-Message-In", "Im-Message-Out", "Im-Network-Problems", "Im-New-Mail", "Im-Nudge",
            "K3B-Finish-Success", "K3B-Insert-Medium", "Sys-App-Message", "Sys-App-Negative", "Sys-App-Positive", "Sys-File-Open-Foes",
            "Sys-List-End", "Sys-List-Match-Multiple", "Sys-List-Match-No", "Sys-Log-Out", "Sys-Special", "Sys-Warning")),
        "continuous_variation": ("Oxygen-Window-Move.*",),
        "continuous_repetition": ("Oxygen-Im-Phone-Ring.*",),
    }),
    # Lomiri's (Ubuntu Touch) notification sounds: struck chimes, a mallet, a jaw harp (the ringtones are melodies: left out)
    Source("lomiri-sounds", "usr/share/sounds/lomiri/notifications", {
        "trigger": ("Blip.*", "Slick.*", "Rhodes.*"),
        "trigger_continuous": ("A440.*", "Amsterdam.*", "Ede.*", "Noti Karinding.*", "Xylo.*"),
    }),
)
PACKAGES = tuple(s.package for s in SOURCES)


def package_version(package: str) -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    status, _, ver = out.stdout.partition("\t")
    return ver if out.returncode == 0 and "ok installed" in status else None


def install_packages(packages: list[str], log=print) -> None:
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise DatasetError(f"packages {', '.join(packages)} are not installed; install them with "
                           f"'apt-get install {' '.join(packages)}' (as root), then run this again")
    log(f"installing {', '.join(packages)} with apt-get")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for args in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages]):
        r = subprocess.run(args, capture_output=True, text=True, env=env)
        if r.returncode != 0 and args[1] == "install":
            raise DatasetError(f"apt-get install {' '.join(packages)} failed: {(r.stderr or r.stdout).strip().splitlines()[-1:]}")


def licences(copyright_text: str) -> list[tuple[str, str, str]]:
    """``(files pattern, copyright, licence)`` stanzas of a machine-readable ``debian/copyright`` file
    (DEP-5), in file order; later stanzas win, as the format says."""
    out = []
    for block in re.split(r"\n\s*\n", copyright_text):
        fields: dict[str, str] = {}
        key = None
        for line in block.splitlines():
            m = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if m:
                key = m.group(1).lower()
                fields[key] = m.group(2).strip()
            elif key and line.startswith((" ", "\t")) and key in ("files", "copyright"):
                fields[key] += " " + line.strip()
        if "files" in fields and "license" in fields:
            out.append((fields["files"], fields.get("copyright", ""), fields["license"].split()[0] if fields["license"] else ""))
    return out


def licence_for(path_in_package: str, stanzas: list[tuple[str, str, str]]) -> tuple[str, str]:
    """The (copyright, licence) of the last stanza whose ``Files`` pattern matches the file. Debian names
    files as they sit in the upstream source, not where they are installed, so a pattern matches by its
    last component (``etc/samples/ambi_choir.flac`` matches ``.../samples/ambi_choir.flac``); ``*`` matches
    everything and ``debian/*`` (the packaging) nothing installed."""
    found = ("", "")
    name = path_in_package.rsplit("/", 1)[-1]
    for patterns, holder, lic in stanzas:
        for pat in patterns.split():
            tail = pat.rsplit("/", 1)[-1]
            if pat == "*" or (not pat.startswith("debian/") and tail != "*" and fnmatch.fnmatch(name, tail)):
                found = (holder, lic)
    return found


def _start(x: np.ndarray, sr: int, one_shot: bool) -> tuple[int, int] | None:
    """``(start, stop)`` samples of ``x : [T]`` (mono) to keep, None for a silent file."""
    peak = float(np.abs(x).max()) if len(x) else 0.0
    if peak <= 0 or 20 * np.log10(peak) < MIN_PEAK_DBFS:
        return None
    if not one_shot:
        return 0, len(x)
    start = int(np.argmax(np.abs(x) >= peak * 10 ** (ONSET_DB / 20)))
    return start, start + int(EXCERPT_SECONDS * sr)


def build_debian_corpus(out: str | Path, root: str | Path = "/", install: bool = False, sources: tuple[Source, ...] = SOURCES,
                        progress: bool = True, log=print) -> dict:
    """Write ``out/<category>/<package>/<name>.wav`` and ``out/corpus.json``; returns the description."""
    root, out = Path(root), Path(out)
    versions = {s.package: package_version(s.package) if str(root) == "/" else "unpacked" for s in sources}
    def absent() -> list[str]:  # a folder that another package also fills (usr/share/sounds) is not enough
        return [s.package for s in sources if not (root / s.folder).is_dir() or versions[s.package] is None]

    missing = absent()
    if missing and install:
        install_packages(missing, log)
        versions.update({p: package_version(p) for p in missing})
        missing = absent()
    if missing:
        raise DatasetError(f"packages {', '.join(missing)} are not installed (no {', '.join(str(root / s.folder) for s in sources if s.package in missing)}); "
                           f"install them with 'apt-get install {' '.join(missing)}' or run with --install as root")
    jobs = []
    for s in sources:
        base = root / s.folder
        names = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file())
        for category, patterns in s.files.items():
            chosen = sorted({n for n in names for pat in patterns if fnmatch.fnmatch(n, pat)})
            if not chosen:
                raise DatasetError(f"{s.package}: no file in {base} matches {patterns} (a newer package version?)")
            jobs += [(s, category, n) for n in chosen]
    bar = None
    if progress:
        bar = tqdm(total=len(jobs), unit="file", desc="debian corpus", dynamic_ncols=True)
    stanzas = {s.package: licences(_read_copyright(root, s.package)) for s in sources}
    if out.exists():
        shutil.rmtree(out)
    clips, skipped = [], []
    for s, category, name in jobs:
        src = root / s.folder / name
        try:
            x, sr = sf.read(src, dtype="float32", always_2d=True)
        except Exception as e:  # libsndfile raises its own types for every broken file
            skipped.append({"file": str(src), "reason": f"{type(e).__name__}: {e}"})
            continue
        holder, lic = licence_for(f"{s.folder}/{name}", stanzas[s.package])
        span = _start(x.mean(axis=1), sr, category in TRIGGERS)
        if span is None:
            skipped.append({"file": str(src), "reason": f"silent (peak below {MIN_PEAK_DBFS:g} dBFS)"})
        else:
            stem = re.sub(r"[^A-Za-z0-9_.-]", "_", name.rsplit(".", 1)[0].replace("/", "_"))
            rel = Path(category) / s.package / f"{stem}.wav"
            (out / rel).parent.mkdir(parents=True, exist_ok=True)
            sf.write(out / rel, x[span[0] : span[1]], sr, subtype="FLOAT")
            clips.append({"path": str(rel), "category": category, "package": s.package, "package_version": versions[s.package],
                          "source": f"/{s.folder}/{name}", "offset_seconds": round(span[0] / sr, 4),
                          "seconds": round((min(span[1], len(x)) - span[0]) / sr, 4), "copyright": holder, "license": lic})
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    counts = {c: sum(1 for k in clips if k["category"] == c) for c in ("trigger", "trigger_continuous", "continuous_variation",
                                                                      "continuous_repetition")}
    desc = {"kind": "debian-sound-packages", "packages": versions, "one_shot_seconds": EXCERPT_SECONDS,
            "build_with": "gesturegan dataset build DIR --out CACHE --overlap 0.5", "counts": counts, "files": clips, "skipped": skipped}
    write_atomic(out / "corpus.json", json.dumps(desc, indent=1))
    return desc


def _read_copyright(root: Path, package: str) -> str:
    p = root / "usr/share/doc" / package / "copyright"
    return p.read_text(errors="replace") if p.is_file() else ""
