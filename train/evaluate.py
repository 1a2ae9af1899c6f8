"""``gesturegan evaluate``: how good is a trained generator, in numbers a composer can read.

- **Category accuracy**: generate N clips per requested category; the gesture classifier says which
  category each sounds like. "Does a trigger request sound like a trigger?", per category.
- **Inception score** of the generated clips next to the same score of held-out real clips (the
  classifier's test split): the real data's score is the ceiling to compare with.
- **Mixtures**: for each neighbouring pair of categories (a, b) and weights 0, 0.25, 0.5, 0.75, 1 of b,
  the classifier's share ``P(b) / (P(a) + P(b))``. Rising with the weight means mixtures sound between
  the two; jumping straight from 0 to 1 means the morph is a switch, not an interpolation.
- **Nearest neighbour (copying check)**: distance in the classifier's embedding from each generated clip
  to the closest training clip, against the same distance for held-out real clips. Generated clips much
  closer to the training set than new real recordings are would be memorised copies.
- **Diversity**: per category, the mean pairwise distance between generated clips in the classifier's
  embedding, as a fraction of the same for real clips of that category. 1 means as varied as the data;
  a collapsed generator (one sound whatever the latent) approaches 0.
- **Periodic artefact**: how much louder the average spectrum is at multiples of fs/16 (where WaveGAN's
  strides put checkerboard tones) than the bins around them, in dB, for generated clips and for real
  clips. Generated above real means the model adds a buzz the data does not have.
- **Spectral lines**: the same question at every frequency, not only fs/16's multiples. Each clip's
  periodogram bin against the bins 5-40 away, averaged over clips (:func:`train.losses.line_contrast`):
  a line that every generated clip has at the same frequency and the real clips do not (the upsampling
  grid's buzz: multiples of fs/4, fs/16, fs/256) counts, with its excess in dB; partials that move
  from clip to clip average away. 0 bins means no such line. Both are also reported per category, each
  category's generated clips against its own real clips: a tone that only one category makes is thinned
  to its share in the averages over all clips.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from instrument.picture import write_spectrogram_png

from .cache import DatasetCache
from .checkpoint import load_synthesizer
from .classifier import load_classifier
from .debuzz import PERIOD as DEBUZZ_PERIOD
from .errors import CheckpointError
from .losses import LINE_MARGIN, line_contrast
from .metrics import inception_score, mean_pairwise_distance, nearest_neighbour_distances, periodic_artefact_db
from .models import sample_latents
from .previews import render

MIX_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)


def evaluate(checkpoint: str | Path, classifier_path: str | Path, cache_dir: str | Path | None = None, per_category: int = 128,
             seed: int = 0, bank_size: int = 2000, png: Path | None = None, device: str = "cpu", weights: str = "auto",
             progress: bool = False, debuzz: int | None = None) -> dict:
    dev = torch.device("cuda" if device == "auto" and torch.cuda.is_available() else ("cpu" if device == "auto" else device))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CheckpointError(f"--device {device} asked for CUDA, but PyTorch sees no GPU here; use --device cpu or auto")
    synth, spec, state = load_synthesizer(checkpoint, dev, weights, debuzz)
    clf = load_classifier(classifier_path, dev)
    if clf.sample_rate != spec.sample_rate:
        raise CheckpointError(f"the classifier works at {clf.sample_rate} Hz, the generator at {spec.sample_rate} Hz; "
                              "train a classifier on a cache at the generator's rate")
    cache_dir = Path(cache_dir or state["dataset"]["cache"])
    conditional = spec.n_categories > 1
    if conditional:
        missing = [c for c in spec.categories if c not in clf.categories]
        if missing:
            raise CheckpointError(f"the classifier does not know categories {missing} (it knows {clf.categories}); "
                                  "train it on the generator's cache")
    g = torch.Generator().manual_seed(seed)
    report: dict = {"checkpoint": str(checkpoint), "model": spec.describe(), "step": int(state["step"]), "weights": state["weights"],
                    "debuzz": spec.debuzz,
                    "classifier_test_accuracy": clf.info["test_accuracy"], "per_category": per_category, "device": str(dev)}

    # one tick per category generated, per neighbouring mixture, for the real reference and for the copying check
    bar = tqdm(total=2 * spec.n_categories + 1, unit="stage", desc="evaluate", disable=not progress, dynamic_ncols=True)
    generated, requested = [], []
    for k in range(spec.n_categories):
        cat = torch.zeros(per_category, spec.n_categories)
        cat[:, k] = 1
        generated.append(render(synth, sample_latents(per_category, spec.latent_dim, g), cat))
        requested += [k] * per_category
        bar.update(1)
    audio = np.concatenate(generated)
    probs = clf.predict_proba(audio)
    report["inception_score_generated"] = inception_score(probs)

    if conditional:
        col = [clf.categories.index(c) for c in spec.categories]
        pred = np.asarray(col)[None, :] == probs.argmax(1)[:, None]  # [N, n_gen_categories]: predicted == that category
        req = np.asarray(requested)
        acc = {c: float(pred[req == k, k].mean()) for k, c in enumerate(spec.categories)}
        report["category_accuracy"] = acc
        report["category_accuracy_mean"] = float(np.mean(list(acc.values())))
        # what each request is heard as: a category that is never made shows here which one it is made into
        heard = probs.argmax(1)
        report["heard_as"] = {c: {h: float((heard[req == k] == j).mean()) for j, h in enumerate(clf.categories)}
                              for k, c in enumerate(spec.categories)}
        report["mixtures"] = _mixtures(synth, spec, clf, col, g, max(16, per_category // 4), lambda: bar.update(1))
    else:
        bar.update(spec.n_categories - 1)

    with DatasetCache.open(cache_dir) as cache:
        test_idx = np.asarray(clf.info.get("test_index") or [], np.int64)
        if clf.info.get("cache") and Path(clf.info["cache"]).resolve() != cache_dir.resolve():
            test_idx = np.zeros(0, np.int64)  # its test split indexes another cache
        rng = np.random.default_rng(seed)
        if len(test_idx) == 0:
            test_idx = np.sort(rng.choice(len(cache), min(len(cache), 512), replace=False))
            report["real_reference"] = "random clips of the cache (the classifier was trained on another cache)"
        else:
            report["real_reference"] = "the classifier's held-out test clips"
        real_test = np.asarray(cache.clips[test_idx])
        real_labels = np.asarray([cache.categories[k] for k in cache.category_index[test_idx]])
        train_pool = np.setdiff1d(np.arange(len(cache)), test_idx)
        bank_idx = np.sort(rng.choice(train_pool, min(len(train_pool), bank_size), replace=False))
        bank = clf.embed(np.asarray(cache.clips[bank_idx]))
    report["inception_score_real"] = inception_score(clf.predict_proba(real_test))
    bar.update(1)
    emb_gen, emb_real = clf.embed(audio), clf.embed(real_test)
    report["diversity"] = _diversity(spec, emb_gen, requested, emb_real, real_labels)
    report["periodic_artefact_db"] = {"generated": periodic_artefact_db(audio, spec.sample_rate),
                                      "real": periodic_artefact_db(real_test, spec.sample_rate)}
    report["periodic_artefact_db"]["excess"] = report["periodic_artefact_db"]["generated"] - report["periodic_artefact_db"]["real"]
    notch_hz = spec.sample_rate / DEBUZZ_PERIOD if spec.debuzz else None  # ModelSpec keeps SpecGAN at 0
    report["spectral_lines"] = _spectral_lines(audio, real_test, spec.sample_rate, notch_hz)
    if conditional:  # a tone only one category makes is thinned in the averages above: each category against its own clips
        art_k, lines_k = {}, {}
        for k, name in enumerate(spec.categories):
            real_k = real_test[real_labels == name]
            if len(real_k) < 2:
                continue
            gen_db, real_db = periodic_artefact_db(audio[req == k], spec.sample_rate), periodic_artefact_db(real_k, spec.sample_rate)
            art_k[name] = {"generated": gen_db, "real": real_db, "excess": gen_db - real_db}
            lines_k[name] = _spectral_lines(audio[req == k], real_k, spec.sample_rate, notch_hz)
        report["periodic_artefact_db"]["per_category"] = art_k
        report["spectral_lines"]["per_category"] = lines_k
    d_gen = nearest_neighbour_distances(emb_gen, bank)
    d_real = nearest_neighbour_distances(emb_real, bank)
    threshold = float(np.percentile(d_real, 5))
    report["nearest_neighbour"] = {
        "generated_median": float(np.median(d_gen)),
        "real_heldout_median": float(np.median(d_real)),
        "ratio": float(np.median(d_gen) / max(np.median(d_real), 1e-12)),
        "fraction_closer_than_5pct_of_real": float((d_gen < threshold).mean()),
        "training_clips_searched": int(len(bank)),
    }
    bar.update(1)
    bar.close()
    if png is not None:
        show = [a for k in range(spec.n_categories) for a in generated[k][:4]]
        labels = [spec.categories[k] for k in range(spec.n_categories) for _ in range(min(4, per_category))]
        write_spectrogram_png(png, show, spec.sample_rate, labels, columns=min(4, per_category))
        report["png"] = str(png)
    return report


def _diversity(spec, emb_gen: np.ndarray, requested: list[int], emb_real: np.ndarray, real_labels: np.ndarray) -> dict:
    """Per category: mean pairwise embedding distance of generated clips / that of real clips of the
    category (the whole real reference when the model is unconditional or the category has < 2 clips)."""
    req = np.asarray(requested)
    out: dict = {"per_category": {}, "generated": {}, "real": {}}
    for k, name in enumerate(spec.categories):
        real = emb_real[real_labels == name] if spec.n_categories > 1 else emb_real
        if len(real) < 2:
            real = emb_real
        g, r = mean_pairwise_distance(emb_gen[req == k]), mean_pairwise_distance(real)
        out["generated"][name], out["real"][name] = g, r
        out["per_category"][name] = g / max(r, 1e-12)
    out["min"] = float(min(out["per_category"].values()))
    return out


NOTCH_NEIGHBOURHOOD_HZ = 50  # a line's contrast is against the bins 5..40 bins (5-39 Hz) either side: a notch that near lowers it


def _spectral_lines(audio: np.ndarray, real: np.ndarray, sample_rate: int, notch_hz: float | None = None) -> dict:
    """Frequency bins where the generated clips' line contrast exceeds the real clips' by more than 3 dB:
    how many, and the worst ones (Hz, dB over the data's). With the notch comb on (``notch_hz``: its
    spacing), also how many of them lie within 50 Hz of a notch, where the contrast's neighbourhood
    (a mean of log power) takes in the notch's deep bins and so rises without a line being there."""
    with torch.no_grad():
        excess = (line_contrast(torch.from_numpy(np.asarray(audio, np.float32)))
                  - line_contrast(torch.from_numpy(np.asarray(real, np.float32)))).numpy() * (10 / np.log(10))
    over = np.flatnonzero(excess > LINE_MARGIN * 10 / np.log(10))
    worst = over[np.argsort(excess[over])[::-1][:8]]
    bin_hz = sample_rate / audio.shape[1]
    out = {"bins_over_3db": int(len(over)), "bins": int(len(excess)),
           "worst": [{"hz": round(float(k * bin_hz), 1), "excess_db": round(float(excess[k]), 1)} for k in worst]}
    if notch_hz:
        hz = over * bin_hz
        out["near_notches"] = int((np.abs(hz - np.round(hz / notch_hz) * notch_hz) < NOTCH_NEIGHBOURHOOD_HZ).sum())
    return out


def _mixtures(synth, spec, clf, col: list[int], g: torch.Generator, n: int, tick=lambda: None) -> list[dict]:
    out = []
    for a in range(spec.n_categories - 1):
        b = a + 1
        z = sample_latents(n, spec.latent_dim, g)
        shares = []
        for w in MIX_WEIGHTS:
            cat = torch.zeros(n, spec.n_categories)
            cat[:, a], cat[:, b] = 1 - w, w
            p = clf.predict_proba(render(synth, z, cat))
            pa, pb = p[:, col[a]], p[:, col[b]]
            shares.append(float(np.mean(pb / np.maximum(pa + pb, 1e-9))))
        out.append({"from": spec.categories[a], "to": spec.categories[b], "weights": list(MIX_WEIGHTS), "share_of_to": shares,
                    "monotonic": bool(all(y >= x - 0.02 for x, y in zip(shares, shares[1:])))})
        tick()
    return out


def format_report(r: dict) -> str:
    weights = " (the generator's moving average)" if r.get("weights") == "ema" else ""
    lines = [f"{r['checkpoint']}: {r['model']}, step {r['step']}{weights}",
             f"classifier test accuracy on real clips: {r['classifier_test_accuracy']:.1%}"]
    if "category_accuracy" in r:
        lines.append(f"generated clips classified as the requested category ({r['per_category']} per category):")
        for c, a in r["category_accuracy"].items():
            lines.append(f"  {c:<24} {a:6.1%}")
        lines.append(f"  {'mean':<24} {r['category_accuracy_mean']:6.1%}")
        for c, heard in r.get("heard_as", {}).items():
            shares = ", ".join(f"{h} {v:.0%}" for h, v in heard.items() if v > 0)
            lines.append(f"  asked for {c}, heard as: {shares}")
    lines.append(f"inception score: generated {r['inception_score_generated']:.2f}, real {r['inception_score_real']:.2f} ({r['real_reference']})")
    div = r.get("diversity")
    if div:
        per = ", ".join(f"{c} {v:.0%}" for c, v in div["per_category"].items())
        lines.append(f"diversity (mean pairwise embedding distance, generated / real): {per}")
    art = r.get("periodic_artefact_db")
    if art:
        lines.append(f"periodic artefact at multiples of fs/16: generated {art['generated']:+.1f} dB, real {art['real']:+.1f} dB "
                     f"(excess {art['excess']:+.1f} dB; above 0 means a buzz the data does not have)")
        if art.get("per_category"):
            lines.append("  per category (excess over that category's real clips): "
                         + ", ".join(f"{c} {v['excess']:+.1f} dB" for c, v in art["per_category"].items()))
    lines_ = r.get("spectral_lines")
    if lines_:
        worst = ", ".join(f"{w['hz']:g} Hz {w['excess_db']:+.1f} dB" for w in lines_["worst"][:5])
        near = (f" ({lines_['near_notches']} of them within {NOTCH_NEIGHBOURHOOD_HZ} Hz of the notch comb's notches, whose deep "
                "bins lower the neighbourhood a bin is measured against)") if "near_notches" in lines_ else ""
        lines.append(f"spectral lines the data lacks (> 3 dB over the real clips' contrast): {lines_['bins_over_3db']} of "
                     f"{lines_['bins']} bins{near}" + (f"; worst {worst}" if worst else ""))
        for c, v in lines_.get("per_category", {}).items():
            worst = ", ".join(f"{w['hz']:g} Hz {w['excess_db']:+.1f} dB" for w in v["worst"][:3])
            near = f" ({v['near_notches']} near the notches)" if "near_notches" in v else ""
            lines.append(f"  {c} against its own real clips: {v['bins_over_3db']} bins{near}" + (f"; worst {worst}" if worst else ""))
    for m in r.get("mixtures", []):
        shares = "  ".join(f"{w:.2f}->{s:.2f}" for w, s in zip(m["weights"], m["share_of_to"]))
        lines.append(f"mixture {m['from']} -> {m['to']}: weight->share {shares} ({'monotonic' if m['monotonic'] else 'NOT monotonic'})")
    nn = r["nearest_neighbour"]
    lines.append(f"nearest training clip (embedding distance): generated median {nn['generated_median']:.3f}, held-out real median "
                 f"{nn['real_heldout_median']:.3f} (ratio {nn['ratio']:.2f}; {nn['fraction_closer_than_5pct_of_real']:.1%} of generated "
                 "clips are closer than 95% of real ones: high means copying)")
    return "\n".join(lines)


def to_json(r: dict) -> str:
    return json.dumps(r, indent=1)
