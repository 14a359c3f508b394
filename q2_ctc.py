"""Q2 (i): train a tiny CTC model with our from-scratch CTC loss and check it against PyTorch's.

What: synthetic utterances of 2-6 DTMF digits (8 kHz, tones in white noise at 10-30 dB SNR)
become log-mel features; a dilated Conv1d stack is trained with ``ctc.ctc_loss`` (the CTC
loss written from scratch, Graves et al. 2006: see ``ctc.py`` for the forward-backward
recursions and the gradient) and decoded greedily. On the trained model's test outputs our
loss and its gradient are compared with ``torch.nn.functional.ctc_loss``, and one test
example's Viterbi alignment is drawn.

The loss lives in ``ctc.py``, Viterbi alignment and greedy decoding in ``ctc_decode.py`` (both
imported by ``q2_compare.py`` and ``q2_multitask.py`` too); this file is the recipe: settings,
data, model, training (``audiolab.core.train.fit``), evaluation, outputs.

Outputs (outputs/q2_ctc/): metrics.json (train_loss, test_loss, test_cer,
test_sequence_accuracy, loss_ours, loss_torch, max_abs_loss_diff_vs_torch,
max_abs_grad_diff_vs_torch, ...), anchors.json, log.csv, checkpoint.pt,
training_curves.png, alignment.png, example_tones_synthetic.wav.

Sources: A. Graves, S. Fernandez, F. Gomez, J. Schmidhuber, "Connectionist Temporal
Classification", ICML 2006; ITU-T Q.23 (DTMF frequencies).
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np
import torch

from audiolab.core.plotting import plot_alignment
from ctc import ctc_loss
from ctc_decode import greedy_decode, viterbi_align


# ------------------------------------------------------------------------ settings
DTMF_HZ = {1: (697, 1209), 2: (697, 1336), 3: (697, 1477), 4: (770, 1209), 5: (770, 1336),
           6: (770, 1477), 7: (852, 1209), 8: (852, 1336), 9: (852, 1477)}
SAMPLE_RATE = 8000
HOP_LENGTH = 80          # 10 ms frames
N_FFT = 256
N_MELS = 32


# --quick (a smoke test): these sizes, unless the flag is given on the command line
QUICK = {"n_train": 64, "n_test": 16, "epochs": 2}


def build_parser():
    from audiolab.core.cli import add_training_args, base_parser, int_range, script_help

    parser = script_help(base_parser(__doc__, epochs=10, seed=0))
    parser.add_argument("--n-train", type=int_range(1, 100_000), default=384,
                        help="training utterances (default %(default)s)")
    parser.add_argument("--n-test", type=int_range(1, 10_000), default=96, help="test utterances (default %(default)s)")
    add_training_args(parser, lr=1e-2, batch_size=32, batch_help="utterances per batch")
    return parser


# ----------------------------------------------------------------------------- data
def make_tone_sequence(rng, sample_rate: int = SAMPLE_RATE):
    """One synthetic utterance: 2-6 DTMF digits (repeats allowed) with gaps, in white noise.

    Returns ``(wav float32 [n_samples], digits list[int])``. Tone 50-150 ms, gap 30-100 ms,
    SNR 10-30 dB.
    """
    from audiolab.augment.waveform import mix_at_snr

    digits = [int(d) for d in rng.integers(1, 10, size=int(rng.integers(2, 7)))]
    pieces = [np.zeros(int(rng.uniform(0.03, 0.1) * sample_rate), np.float32)]
    for d in digits:
        n = int(rng.uniform(0.05, 0.15) * sample_rate)
        t = np.arange(n) / sample_rate
        f1, f2 = DTMF_HZ[d]
        tone = 0.5 * (np.sin(2 * np.pi * f1 * t + rng.uniform(0, 6.3)) + np.sin(2 * np.pi * f2 * t))
        tone *= np.hanning(n) ** 0.2 * rng.uniform(0.3, 1.0)
        pieces += [tone.astype(np.float32), np.zeros(int(rng.uniform(0.03, 0.1) * sample_rate), np.float32)]
    clean = np.concatenate(pieces)
    noise = rng.standard_normal(clean.size).astype(np.float32)
    wav, _ = mix_at_snr(clean, noise, float(rng.uniform(10, 30)))
    return wav / max(1.0, float(np.abs(wav).max())), digits


class ToneSet(torch.utils.data.Dataset):
    """Log-mel features ``[frames, n_mels]`` and digit targets of synthetic tone sequences."""

    def __init__(self, n: int, seed: int):
        import torchaudio

        rng = np.random.default_rng(seed)
        mel = torchaudio.transforms.MelSpectrogram(sample_rate=SAMPLE_RATE, n_fft=N_FFT, hop_length=HOP_LENGTH,
                                                   n_mels=N_MELS)
        self.items, self.wavs = [], []
        for _ in range(n):
            wav, digits = make_tone_sequence(rng)
            feats = torch.log(mel(torch.from_numpy(wav)) + 1e-6).T          # [frames, n_mels]
            feats = (feats - feats.mean()) / (feats.std() + 1e-5)
            self.items.append((feats, torch.tensor(digits, dtype=torch.long)))
            self.wavs.append(wav)

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        return self.items[i]


def collate(batch):
    """Pad a list of (features [T_i, F], target [L_i]) to ``feats [B, T, F]``, lengths, ``targets [B, S]``."""
    feats = torch.nn.utils.rnn.pad_sequence([b[0] for b in batch], batch_first=True)
    targets = torch.nn.utils.rnn.pad_sequence([b[1] for b in batch], batch_first=True)
    input_lengths = torch.tensor([b[0].shape[0] for b in batch])
    target_lengths = torch.tensor([b[1].numel() for b in batch])
    return feats, input_lengths, targets, target_lengths


# ---------------------------------------------------------------------------- model
class TinyCTCModel(torch.nn.Module):
    """Dilated Conv1d stack (receptive field 29 frames = 0.29 s) to ``n_classes`` log-probabilities.

    Convolutions rather than a recurrent layer keep the demo fast on a small CPU; a tone
    lasts 5-15 frames, well inside the receptive field.
    """

    def __init__(self, n_mels: int = N_MELS, hidden: int = 64, n_classes: int = 10):
        super().__init__()
        layers, c_in = [], n_mels
        for dilation in (1, 2, 4):
            layers += [torch.nn.Conv1d(c_in, hidden, 5, padding=2 * dilation, dilation=dilation), torch.nn.ReLU()]
            c_in = hidden
        self.body = torch.nn.Sequential(*layers)
        self.out = torch.nn.Conv1d(hidden, n_classes, 1)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``feats [B, T, n_mels]`` -> ``log_probs [T, B, n_classes]`` (the CTC layout)."""
        return self.out(self.body(feats.transpose(1, 2))).permute(2, 0, 1).log_softmax(-1)


# ---------------------------------------------------------- training and evaluation
def _cer(hyps: Sequence[Sequence[int]], refs: Sequence[Sequence[int]]) -> float:
    """Character error rate over digit strings (jiwer)."""
    import jiwer

    return float(jiwer.cer(["".join(map(str, r)) for r in refs], ["".join(map(str, h)) or "-" for h in hyps]))


def train_demo(model, optimizer, loader, test_batch, args, out, device):
    """Train ``model`` with our ``ctc_loss``, scoring the test batch every epoch: ``(history, train_seconds)``.

    Checkpoints to ``out/checkpoint.pt`` (``--resume`` continues from it) and logs ``out/log.csv``.

    Raises:
        UserError: no epoch was trained (``--epochs`` not above the checkpoint's).
    """
    from audiolab.core.runtime import UserError
    from audiolab.core.train import fit

    def step_fn(model, batch):
        feats, il, targets, tl = batch
        return ctc_loss(model(feats), targets, il, tl, blank=0)

    def eval_fn(model):
        feats, il, targets, tl = (t.to(device) for t in test_batch)
        log_probs = model(feats)
        hyps = greedy_decode(log_probs, il)
        refs = [targets[n, :tl[n]].tolist() for n in range(len(tl))]
        return {"test_loss": float(ctc_loss(log_probs, targets, il, tl)), "test_cer": _cer(hyps, refs),
                "test_sequence_accuracy": float(np.mean([h == r for h, r in zip(hyps, refs)]))}

    history = fit(model, optimizer, loader, step_fn, args.epochs, eval_fn=eval_fn, device=device,
                  checkpoint_path=out / "checkpoint.pt", log_path=out / "log.csv", resume=args.resume,
                  grad_clip=5.0, config=vars(args), desc="q2_ctc")
    train_seconds = history.train_seconds  # the whole run: an interrupted run and its --resume together
    if not history:
        raise UserError("no epochs were trained; raise --epochs")
    return history, train_seconds


def compare_with_torch(log_probs: torch.Tensor, targets, il, tl) -> dict:
    """Our loss and its gradient w.r.t. ``log_probs`` ``[T, N, C]`` against ``torch.nn.functional.ctc_loss``."""
    a = log_probs.clone().requires_grad_()
    b = log_probs.clone().requires_grad_()
    ours, ref = ctc_loss(a, targets, il, tl), torch.nn.functional.ctc_loss(b, targets, il, tl)
    ours.backward()
    ref.backward()
    ours, ref = ours.detach(), ref.detach()
    loss_diff = abs(float(ours) - float(ref))
    grad_diff = float((a.grad - b.grad).abs().max())
    return {"loss_ours": float(ours), "loss_torch": float(ref),
            "max_abs_loss_diff_vs_torch": loss_diff, "max_abs_grad_diff_vs_torch": grad_diff}


# ----------------------------------------------------------------------------- main
def main(argv=None) -> None:
    from audiolab.core.io import save_audio
    from audiolab.core.plotting import plot_training_curves
    from audiolab.core.outputs import format_table, out_dir_for, write_metrics
    from audiolab.core.runtime import seed_everything, select_device
    from audiolab.data.common import SYNTHETIC_NOTE, banner

    from audiolab.core.cli import apply_quick

    argv = None if argv is None else [str(a) for a in argv]
    args = apply_quick(build_parser().parse_args(argv), QUICK, argv)
    out = out_dir_for(args, "q2_ctc")
    gen = seed_everything(args.seed)
    device = select_device(args.device)
    banner(["dataset: q2_tone_sequences (synthetic DTMF digit sequences in white noise, 8 kHz; "
            "the module's CTC loss trains a tiny dilated CNN on them)", SYNTHETIC_NOTE])

    # ---- data, model, training
    train_set, test_set = ToneSet(args.n_train, args.seed), ToneSet(args.n_test, args.seed + 1)
    save_audio(out / "example_tones_synthetic.wav", test_set.wavs[0], SAMPLE_RATE)
    loader = torch.utils.data.DataLoader(train_set, batch_size=args.batch_size, shuffle=True, collate_fn=collate,
                                         generator=gen)
    test_batch = collate([test_set[i] for i in range(len(test_set))])
    model = TinyCTCModel()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    history, train_seconds = train_demo(model, optimizer, loader, test_batch, args, out, device)
    plot_training_curves(history, out / "training_curves.png",
                         {"CTC loss (nats / label)": ["train_loss", "test_loss"], "CER": ["test_cer"]},
                         title="q2_ctc demo on SYNTHETIC tone sequences: our CTC loss trains a dilated CNN")

    # ---- evaluation: ours vs PyTorch on the trained model's test outputs, and one Viterbi alignment
    model.eval()
    feats, il, targets, tl = (t.to(device) for t in test_batch)
    with torch.no_grad():
        log_probs = model(feats)
    check = compare_with_torch(log_probs, targets, il, tl)
    paths, scores = viterbi_align(log_probs, targets, il, tl)
    n0 = 0
    plot_alignment(log_probs[: il[n0], n0], paths[n0, : il[n0]], targets[n0, : tl[n0]].tolist(),
                   title="Viterbi alignment over log_probs, SYNTHETIC tone sequence (test example 0)",
                   out_path=out / "alignment.png", class_names=["blank"] + [str(d) for d in range(1, 10)],
                   frame_s=HOP_LENGTH / SAMPLE_RATE)

    # ---- outputs
    last = history[-1]
    metrics = {
        "train_loss": last["train_loss"], "test_loss": last["test_loss"], "test_cer": last["test_cer"],
        "test_sequence_accuracy": last["test_sequence_accuracy"], **check,
        "epochs": len(history), "n_train": args.n_train, "n_test": args.n_test, "train_seconds": train_seconds,
    }
    write_metrics(out, metrics, args=args, dataset="q2_tone_sequences", data_source="synthetic", device=device,
                  anchors=[{"metric": "max_abs_grad_diff_vs_torch", "anchor": 1e-5,
                            "source": "target (float32): gradient within 1e-5 of torch.nn.functional.ctc_loss"}])
    print(format_table([{"metric": k, "value": v} for k, v in metrics.items()], floatfmt=".4g"))
    print(f"q2_ctc (SYNTHETIC tone sequences): test CER {last['test_cer']:.3f}, sequence accuracy "
          f"{last['test_sequence_accuracy']:.3f}, |loss - torch| {check['max_abs_loss_diff_vs_torch']:.2e}, "
          f"max |grad - torch| {check['max_abs_grad_diff_vs_torch']:.2e}")


if __name__ == "__main__":
    from audiolab.core.cli import main_guard

    sys.exit(main_guard(main))
