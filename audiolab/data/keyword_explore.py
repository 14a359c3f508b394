"""Data exploration of a keyword dataset: the figures and checks ``speechcommands_rnn.py explore`` writes.

:func:`explore`: waveforms per class, the duration histogram, class counts per split
(``class_counts.csv``), the sample-rate check (``sample_rate_check.csv``) and :func:`speaker_outputs`
(``speakers.csv``, ``duplicate_groups.csv``); :func:`feature_figure`: the features of one clip per
class as the models see them. Each returns / writes into the run's output folder.
"""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import torch

from audiolab.data.features import Features
from audiolab.core.outputs import format_table, write_csv
from audiolab.core.plotting import save_figure
from audiolab.data.keywords import SILENCE, SPLITS, KwsData, PadCollate, duplicate_groups, title_tag


def explore(data: KwsData, out: Path, per_class: int = 3) -> dict:
    """Data exploration figures and checks; returns metrics (clip counts, durations, rate check)."""
    tag = title_tag(data)
    sr = data.sample_rate
    # waveforms: a few clips per class
    labels = data.labels[:12]
    fig, axes = plt.subplots(len(labels), per_class, figsize=(3.2 * per_class, 1.3 * len(labels)), squeeze=False,
                             sharex=True, sharey=True)
    for r, label in enumerate(labels):
        pool = [c for c in data.clips if c.label == label]
        firsts = list({c.speaker: c for c in reversed(pool)}.values())[::-1]  # one clip per speaker first
        chosen = {id(c) for c in firsts}
        clips = (firsts + [c for c in pool if id(c) not in chosen])[:per_class]
        for k in range(per_class):
            ax = axes[r, k]
            if k < len(clips):
                wav = clips[k].wav
                ax.plot(np.arange(len(wav)) / sr, wav, linewidth=0.5)
                ax.set_title(f"{label} ({clips[k].speaker})", fontsize=7)
            ax.tick_params(labelsize=6)
        axes[r, 0].set_ylabel("amplitude", fontsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("time (s)", fontsize=7)
    fig.suptitle(f"Waveforms, {per_class} clips per class: {tag}")
    fig.tight_layout()
    save_figure(fig, out / "explore_waveforms.png")
    # durations
    dur = data.durations_s()
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(dur, bins=40, color="tab:blue", alpha=0.8)
    ax.axvline(1.0, color="k", linestyle="--", linewidth=1, label="1 s input window")
    ax.set_xlabel("clip duration (s)")
    ax.set_ylabel("number of clips")
    ax.set_title(f"Clip durations: {tag}")
    ax.legend()
    save_figure(fig, out / "explore_durations.png")
    # class counts per split
    counts = data.counts()
    x = np.arange(len(data.labels))
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(x) + 2), 3.6))
    for i, split in enumerate(SPLITS):
        ax.bar(x + (i - 1) * 0.27, [counts[split][lab] for lab in data.labels], width=0.27, label=split)
    ax.set_xticks(x, data.labels, rotation=45, ha="right")
    ax.set_xlabel("class")
    ax.set_ylabel("number of clips")
    ax.set_title(f"Class counts per split: {tag}")
    ax.set_ylim(0, 1.3 * max(max(v.values()) for v in counts.values()))
    ax.legend(ncol=3, loc="upper center")
    save_figure(fig, out / "explore_class_counts.png")
    with open(out / "class_counts.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["class", *SPLITS])
        for lab in data.labels:
            w.writerow([lab, *(counts[s][lab] for s in SPLITS)])
    print(format_table([{"class": lab, **{s: counts[s][lab] for s in SPLITS}} for lab in data.labels]))
    # sample-rate check: every file whose own rate differs from the most common one
    rates = Counter(c.orig_sample_rate for c in data.clips)
    common = rates.most_common(1)[0][0]
    odd = [(c.path, c.orig_sample_rate) for c in data.clips if c.orig_sample_rate != common]
    with open(out / "sample_rate_check.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "problem"])
        for path, rate in odd:
            w.writerow([path, f"sample rate {rate} Hz differs from {common} Hz (resampled to {sr} Hz)"])
        for path, problem in data.issues:
            if "sample rate" not in problem:
                w.writerow([path, problem])
    if odd:
        print(f"sample-rate check: {len(odd)} of {len(data.clips)} files are not at {common} Hz (resampled):")
        for path, rate in odd[:20]:
            print(f"  {path}: {rate} Hz")
    else:
        print(f"sample-rate check: all {len(data.clips)} clips at {common} Hz")
    if data.issues:
        print(f"{len(data.issues)} file problems on load (listed in sample_rate_check.csv)")
    speaker_metrics = speaker_outputs(data, out)
    return {**speaker_metrics, "median_duration_s": float(np.median(dur)),
            "max_duration_s": float(dur.max()), "n_files_other_sample_rate": len(odd),
            "n_file_problems": len(data.issues)}


def speaker_outputs(data: KwsData, out: Path) -> dict:
    """``speakers.csv`` (speaker, split, clips) and ``duplicate_groups.csv`` (byte-identical files).

    Returns metrics: speakers per split, speakers in two splits (must be 0 for a speaker split),
    duplicate groups and how many straddle splits (must be 0).
    """
    per = Counter((c.speaker, c.split) for c in data.clips if not c.path.startswith("synthetic:"))
    write_csv(out / "speakers.csv", [{"speaker": spk, "split": split, "n_clips": n}
                                     for (spk, split), n in sorted(per.items(), key=lambda kv: (kv[0][1], kv[0][0]))])
    splits_of: dict[str, set] = {}
    for spk, split in per:
        if not spk.startswith(f"{SILENCE}/"):
            splits_of.setdefault(spk, set()).add(split)
    groups = duplicate_groups(data.clips)
    rows = [{"group": g, "sha1": c.sha1, "label": c.label, "speaker": c.speaker, "split": c.split, "path": c.path}
            for g, group in enumerate(groups) for c in group]
    with open(out / "duplicate_groups.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["group", "sha1", "label", "speaker", "split", "path"])
        w.writerows([list(r.values()) for r in rows])
    straddle = sum(len({c.split for c in group}) > 1 for group in groups)
    n_spk = {s: sum(1 for v in splits_of.values() if s in v) for s in SPLITS}
    print(f"speakers: train {n_spk['train']} / val {n_spk['val']} / test {n_spk['test']} (speakers.csv); "
          f"{len(groups)} groups of byte-identical clips ({sum(len(g) for g in groups)} clips, duplicate_groups.csv), "
          f"{straddle} straddling splits")
    return {**{f"n_speakers_{s}": n for s, n in n_spk.items()},
            "n_speakers_in_two_splits": sum(len(v) > 1 for v in splits_of.values()),
            "n_duplicate_groups": len(groups), "n_duplicate_groups_across_splits": straddle}


def feature_figure(features: Features, data: KwsData, n_samples: int, out: Path) -> None:
    """MFCC / log-mel of one clip per class (up to 6), as the models see them (standardised)."""
    labels = data.labels[:6]
    clips = [next(c for c in data.clips if c.label == lab) for lab in labels if any(c.label == lab for c in data.clips)]
    collate = PadCollate(n_samples)
    wav = torch.stack([collate.fit(torch.from_numpy(c.wav)) for c in clips])
    with torch.no_grad():
        feats = features(wav).numpy()
    hop = features.mfcc.MelSpectrogram.hop_length
    fig, axes = plt.subplots(1, len(clips), figsize=(3.0 * len(clips), 3.2), squeeze=False)
    for ax, f, c in zip(axes[0], feats, clips):
        img = ax.imshow(f.T, origin="lower", aspect="auto", cmap="magma",
                        extent=[0, f.shape[0] * hop / data.sample_rate, 0, f.shape[1]])
        ax.set_title(c.label)
        ax.set_xlabel("time (s)")
    axes[0, 0].set_ylabel(f"{features.kind} coefficient" if features.kind == "mfcc" else "mel band")
    fig.colorbar(img, ax=axes[0, -1], label="standardised value")
    fig.suptitle(f"{features.kind} features (standardised), {title_tag(data)}", y=1.04)
    save_figure(fig, out / "explore_features.png")
