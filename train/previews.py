"""What a training run shows people: preview sounds (a WAV grid and a spectrogram PNG grid from fixed
latents x each category and the mid-way mixtures), TensorBoard scalars and audio, and the loss curve."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from instrument.files import atomic_file
from instrument.picture import write_spectrogram_png

from .models import ModelSpec, sample_latents

GAP_SECONDS = 0.25


def preview_inputs(spec: ModelSpec, n_latents: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Fixed inputs for every preview of a run: ``z : [R*L, latent_dim]``, ``category : [R*L, n]`` and a
    label per row-major cell. Rows are each category, then each neighbouring pair mixed 50/50."""
    n = spec.n_categories
    rows: list[tuple[np.ndarray, str]] = []
    eye = np.eye(n, dtype=np.float32)
    for i, name in enumerate(spec.categories):
        rows.append((eye[i], name))
    for i in range(n - 1):
        rows.append(((eye[i] + eye[i + 1]) / 2, f"{spec.categories[i][:8]}/{spec.categories[i + 1][:8]}"))
    g = torch.Generator().manual_seed(10_007 + seed)
    z = sample_latents(n_latents, spec.latent_dim, g)  # the same latents in every row: only the category changes
    zs = z.repeat(len(rows), 1)
    cats = torch.tensor(np.repeat(np.stack([r[0] for r in rows]), n_latents, axis=0))
    labels = [r[1] for r in rows for _ in range(n_latents)]
    return zs, cats, labels


@torch.no_grad()
def render(synth: torch.nn.Module, z: torch.Tensor, category: torch.Tensor, batch: int = 32) -> np.ndarray:
    """Run the synthesizer in inference mode on CPU or its device: ``[N, n_samples]`` float32."""
    device = next(synth.parameters()).device
    was_training = synth.training
    synth.eval()
    out = [synth(z[i : i + batch].to(device), category[i : i + batch].to(device)).float().cpu() for i in range(0, len(z), batch)]
    synth.train(was_training)
    return torch.cat(out).numpy()


def write_preview(folder: Path, step: int, audio: np.ndarray, labels: list[str], sample_rate: int, columns: int) -> tuple[Path, Path]:
    """``preview-<step>.wav`` (every cell in row order, separated by short silences) and ``.png``."""
    folder.mkdir(parents=True, exist_ok=True)
    gap = np.zeros(int(GAP_SECONDS * sample_rate), np.float32)
    joined = np.concatenate([np.concatenate([a, gap]) for a in audio])
    wav = folder / f"preview-{step:08d}.wav"
    png = folder / f"preview-{step:08d}.png"
    sf.write(wav, np.clip(joined, -1, 1), sample_rate, subtype="PCM_16")
    write_spectrogram_png(png, list(audio), sample_rate, labels, columns=columns)
    return wav, png


class LossLog:
    """Appends ``step, loss_d, loss_g, wasserstein, gp, score, mode_seeking, aux_class, line_penalty, aux_twin, spread, mean_match`` rows to
    ``losses.csv``; survives resumes
    (rows past the resumed step are dropped, so a rolled-back stretch is not plotted twice)."""

    # "wasserstein" is the critics' real-minus-fake score gap (the Wasserstein estimate under WGAN-GP);
    # "gradient_penalty" is WGAN-GP's penalty or, for hinge/ns, R1 on the steps that compute it
    FIELDS = ("step", "loss_d", "loss_g", "wasserstein", "gradient_penalty", "spectral_distance_db", "mode_seeking",
              "aux_class", "line_penalty", "aux_twin", "spread", "mean_match")

    def __init__(self, path: Path, resume_step: int) -> None:
        self.path = path
        rows = self.read(path)
        rows = [r for r in rows if r["step"] <= resume_step]
        with atomic_file(path, "w", newline="") as f:  # a kill here keeps the old log
            w = csv.writer(f)
            w.writerow(self.FIELDS)
            for r in rows:
                w.writerow([int(r["step"])] + [r[k] if not np.isnan(r[k]) else "" for k in self.FIELDS[1:]])

    @classmethod
    def read(cls, path: Path) -> list[dict]:
        if not path.is_file():
            return []
        out = []
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                try:
                    out.append({k: (float(row[k]) if row.get(k) not in (None, "") else float("nan")) for k in cls.FIELDS})
                except ValueError:
                    continue  # a line cut short by a kill
        return out

    def append(self, step: int, **values: float) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([step] + [values.get(k, "") for k in self.FIELDS[1:]])


def write_loss_png(csv_path: Path, png_path: Path) -> Path | None:
    """Loss curves (critic, generator, Wasserstein estimate, gradient penalty, spectral distance) as a PNG."""
    rows = LossLog.read(csv_path)
    if not rows:
        return None
    import matplotlib  # matplotlib (heavy): only for the loss plot

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt  # after choosing the backend

    step = np.array([r["step"] for r in rows])
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    losses = [r for r in rows if not np.isnan(r["loss_d"])]  # score-only rows would break the lines
    ls = np.array([r["step"] for r in losses])
    for k, label in (("loss_d", "critic loss"), ("loss_g", "generator loss")):
        axes[0].plot(ls, [r[k] for r in losses], label=label, lw=0.8)
    axes[0].legend()
    axes[0].set_ylabel("loss")
    axes[1].plot(ls, [r["wasserstein"] for r in losses], label="critic gap E[D(real)] - E[D(fake)] (Wasserstein estimate for WGAN-GP)", lw=0.8)
    axes[1].plot(ls, [r["gradient_penalty"] for r in losses], label="gradient penalty (WGAN-GP) or R1", lw=0.8)
    if any(not np.isnan(r["mode_seeking"]) for r in losses):
        axes[1].plot(ls, [r["mode_seeking"] for r in losses], label="mode-seeking term", lw=0.8)
    if any(not np.isnan(r["aux_class"]) for r in losses):
        axes[1].plot(ls, [r["aux_class"] for r in losses], label="critics' category cross-entropy on real clips", lw=0.8)
    if any(not np.isnan(r["aux_twin"]) for r in losses):
        axes[1].plot(ls, [r["aux_twin"] for r in losses], label="twin classifiers' cross-entropy on generated clips", lw=0.8)
    if any(not np.isnan(r["line_penalty"]) for r in losses):
        axes[1].plot(ls, [r["line_penalty"] for r in losses], label="line penalty (nats of buzz over the data's)", lw=0.8)
    if any(not np.isnan(r["spread"]) for r in losses):
        axes[1].plot(ls, [r["spread"] for r in losses], label="spread shortfall (share of the data's, summed over 2 views)", lw=0.8)
    if any(not np.isnan(r["mean_match"]) for r in losses):
        axes[1].plot(ls, [r["mean_match"] for r in losses], label="mean mismatch (L1 per feature, summed over 2 views)", lw=0.8)
    axes[1].legend()
    sd = np.array([r["spectral_distance_db"] for r in rows])
    ok = ~np.isnan(sd)
    axes[2].plot(step[ok], sd[ok], "o-", lw=0.8, label="spectral distance to real data (dB, lower is better)")
    axes[2].legend()
    axes[2].set_xlabel("generator step")
    fig.tight_layout()
    fig.savefig(png_path, dpi=100)
    plt.close(fig)
    return png_path


def tensorboard_writer(folder: Path, log=print):
    """A TensorBoard ``SummaryWriter`` for ``folder``, or None (said once through ``log``) when
    tensorboard is not installed: the logs are optional, the CSV and the PNG are not."""
    try:
        from torch.utils.tensorboard import SummaryWriter  # optional: tensorboard may not be installed
    except ImportError:
        log("tensorboard is not installed: no TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(str(folder))
