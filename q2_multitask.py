"""Multi-task speech model: CTC character recognition + emotion classification, one shared encoder.

What: question 2 (iii). One network reads log-mel frames; a shared encoder (two strided
convolutions = 4x time subsampling, LayerNorm, one bidirectional LSTM layer of 160 units per
direction by default) feeds two heads:
- an ASR head: per-frame log-probabilities over characters (index 0 = CTC blank), trained
  with *our* CTC loss (``ctc.ctc_loss``) and decoded greedily (``ctc_decode.greedy_decode``);
- an emotion head: attentive statistics pooling over the encoder frames (a learned
  softmax weighting, then the weighted mean and standard deviation; Okabe et al.,
  Interspeech 2018) and a small classifier, trained with cross-entropy. By default it pools
  the convolutional features beside the BiLSTM outputs (``--emotion-input conv+lstm``):
  the CTC-driven BiLSTM learns to ignore the voice, and the lower layer keeps it
  (experiments/multitask.md).
Loss = CTC + lambda * CE (``--lambda-emotion``). ``--ablation`` trains the same encoder
ASR-only (lambda = 0, no emotion head) and emotion-only (no CTC), so the numbers say
whether sharing helped. ``--emotion-encoder own`` gives the emotion head a BiLSTM of its own
above the shared convolutional trunk (task-specific layers over a shared trunk: the CTC term
reaches emotion only through the trunk), and ``--loss-weighting uncertainty`` learns the two
task weights (Kendall et al., CVPR 2018) instead of a fixed lambda; the ablations are the same
networks whatever these two flags say (issue 31, experiments/multitask_emodb.md).

Data: real emotional-speech corpora in their public layouts (EMOVO, CREMA-D, RAVDESS,
TESS, EmoDB, IEMOCAP) or a CSV manifest; without one, an embedded SYNTHETIC corpus of
emotional-prosody speech made with eSpeak NG (all loaded by ``audiolab.data.multitask.load``). Split 80:20
by speaker (test speakers unseen; ``--split random`` leaks speaker identity and says so),
or name the test speakers (``--test-speakers f1``: leave-one-actor-out, as in
``benchmarks/multitask_emovo.py``; ``--test-speakers speaker03`` on EmoDB, as in
``benchmarks/multitask_emodb.py``). A clip whose transcript is not whole in its audio (not named
in the corpus' ``complete.txt`` or ``--complete-list``, e.g. the EmoDB copy cut to 2 s; an empty
manifest transcript; a clip cropped at ``--max-seconds``) trains and scores the emotion head
only; every run prints and records how many clips each head saw (``n_ctc_train_utterances``,
``n_cer_test_utterances``, ...) and the majority-class accuracy beside 1/classes.

How (design choices):
- Features: 80-bin log-mel (torchaudio ``MelSpectrogram``, 25 ms window, 10 ms hop),
  silent leading / trailing frames trimmed (``--trim-db``), normalised per mel bin with
  each speaker's own statistics (removes voice and channel offsets, which matters for
  unseen-speaker emotion recognition; it uses no labels, so a test speaker's statistics
  come from their unlabelled audio). SpecAugment-style
  frequency and time masks, a random mel-axis stretch (vocal-tract-length perturbation,
  Jaitly & Hinton 2013) and a random speaking-rate change (``--tempo``, the time half of
  speed perturbation, Ko et al. 2015) on training batches (Park et al., Interspeech 2019).
- Synthetic training voices (``--synthetic-voices``, default 8 for a corpus of known
  language): eSpeak NG says every training sentence in the corpus' language (Italian for
  EMOVO) with 8 voices x 2 emotions' prosody. With three training actors the CTC head
  learns their voices; the new actor's voice causes most of its errors (a low training CTC
  loss beside a high test CER). The synthetic clips train the CTC term only: their emotion
  labels are eSpeak caricatures, not acted emotions. Test data stays real.
- Subsampling: ``log2(--subsample)`` strided 1-D convolutions (kernel 5, stride 2,
  padding 2); the CTC input length is computed exactly, ``T' = floor((T - 1) / 2) + 1``
  per stage. An utterance whose transcript cannot fit (``T' < L + repeated neighbours``)
  would give an infinite CTC loss: such utterances are counted, reported and left out of
  the CTC term (they still train the emotion head and are still scored).
- Size: one BiLSTM layer converged much faster than two under the CPU budget, so the
  default is one layer trained 60 epochs with batch 8 (experiments/multitask.md).
- Task weight: lambda = 0.1 by default. With lambda = 1 the emotion task held the CTC
  head back badly (the joint model underfit the transcripts; ablation in
  experiments/multitask.md). Adam scales each parameter's step, so a small lambda mainly
  reduces how hard emotion pulls on the shared encoder; the emotion head itself still learns.
  On EmoDB (8 speakers) lambda = 1 gives +0.05 emotion accuracy for +0.06 CER, and emotion
  alone (``--ablation``) does better still (experiments/multitask_emodb.md).
- Optimiser: AdamW with a one-cycle learning rate (linear warm-up, cosine decay; Smith &
  Topin 2019), stepped per epoch by ``audiolab.core.train.fit``; gradient clipping at 5.
- Evaluation: CER and WER with jiwer on normalised transcripts (lower-case, punctuation
  dropped, accented letters kept unless ``--strip-accents``; characters of test
  transcripts outside the training vocabulary are reported); emotion accuracy, macro-F1
  and the confusion matrix with scikit-learn. Numbers are those of the final epoch: no
  test-set model selection (there is no validation set on a 4-speaker corpus).

Outputs (``outputs/q2_multitask/``): metrics.json (+ anchors.json), log.csv,
training_curves.png, confusion_matrix.png, test_predictions.csv, alignment.png (a test
utterance's log-mel with its Viterbi forced alignment), that utterance as WAV,
checkpoint.pt (``--resume``).

Sources: Graves et al., "Connectionist Temporal Classification", ICML 2006; Okabe et al.,
"Attentive Statistics Pooling for Deep Speaker Embedding", Interspeech 2018; Park et al.,
"SpecAugment", Interspeech 2019; Costantini et al., "EMOVO Corpus", LREC 2014.
"""

from __future__ import annotations

import csv
import math
import time
from pathlib import Path

import jiwer
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score

from audiolab.augment.spectrogram import mask_by_length, mel_warp, tempo_perturb
from audiolab.core.cli import (add_data_args, add_stft_args, add_training_args, apply_quick, base_parser,
                               float_range, int_range, main_guard, option_given, positive_float, positive_int,
                               sample_rate_hz, script_help, trim_db)
from audiolab.core.io import save_audio
from audiolab.core.outputs import format_table, out_dir_for, write_metrics
from audiolab.core.plotting import plot_confusion_matrix, plot_training_curves, save_figure
from audiolab.core.runtime import seed_everything, select_device
from audiolab.core.train import fit, is_main_process
from audiolab.data import emotion as ed
from audiolab.data import multitask as mtdata
from audiolab.data.common import SYNTHETIC_NOTE
from audiolab.data.multitask import (BucketBatches, Corpus, DataConfig, Splits, Utterances, ctc_min_frames,
                                     subsampled_length)
from ctc import ctc_loss
from ctc_decode import greedy_decode, viterbi_align

SCRIPT = "q2_multitask"
SYNTHETIC_DEMO_EPOCHS = 20  # default --epochs on the embedded synthetic corpus (real corpora: 60)

#: ``--quick`` (a smoke test): 2 epochs of a 32-channel, 32-unit, 1-layer model; a synthetic corpus of
#: 3 speakers x 6 sentences x 1 rendering; at most 48 files of a real corpus (unless ``--max-files``);
#: 2 synthetic training voices by default. A flag given on the command line keeps its value.
QUICK = {"epochs": 2, "conv_channels": 32, "hidden": 32, "layers": 1, "synth_speakers": 3, "synth_sentences": 6,
         "synth_per_sentence": 1, "corpus_max_files": lambda args: args.max_files or 48,
         "synthetic_voices_default": 2}


# =============================================================================== settings
def build_parser():
    """The command line: the shared flags, then the data, feature and model/training groups."""
    p = script_help(base_parser(__doc__, epochs=60))
    add_data_args(p, [*ed.CORPORA, "csv", "synthetic"])
    add_data_flags(p.add_argument_group("data"))
    add_feature_flags(p.add_argument_group("features"))
    add_model_flags(p.add_argument_group("model and training"))
    # sizes without a flag of their own (QUICK shrinks them for --quick): the synthetic corpus'
    # sentences (None: all), the real corpora's file limit (None: --max-files; a CSV manifest always
    # uses --max-files) and the --synthetic-voices default for a corpus of known language
    p.set_defaults(synth_sentences=None, corpus_max_files=None, synthetic_voices_default=8)
    return p


def add_data_flags(g) -> None:
    """The data flags: manifest, split, clip selection and the synthetic corpus / training voices."""
    g.add_argument("--manifest", type=Path, default=None,
                   help="CSV with columns path,transcript,emotion,speaker (implies --dataset csv)")
    g.add_argument("--split", choices=["speaker", "random"], default="speaker",
                   help="speaker: test speakers unseen in training (default); random: utterance-level split, "
                        "which leaks speaker identity into the test set")
    g.add_argument("--test-fraction", type=float_range(0, 1, lo_open=True, hi_open=True), default=0.2,
                   help="test share of the utterances (default 0.2)")
    g.add_argument("--test-speakers", default=None,
                   help="comma-separated speakers to hold out (overrides --split), e.g. f1")
    g.add_argument("--exclude-speakers", default=None,
                   help="comma-separated speakers to leave out entirely (e.g. a fold's test speaker while "
                        "choosing settings on a validation speaker among the training speakers)")
    g.add_argument("--complete-list", type=Path, default=None,
                   help="file naming the clips whose whole transcript is in the audio (one name a line); only "
                        "they feed the CTC term and the CER, every clip feeds the emotion term (default: "
                        "complete.txt in the corpus folder or beside its wav/, if there; else all are whole)")
    g.add_argument("--max-seconds", type=positive_float, default=30.0,
                   help="clips longer than this are reported and cropped to it (emotion head only; default "
                        "%(default)s s)")
    g.add_argument("--max-files", type=positive_int, default=None,
                   help="use at most this many (evenly spaced) corpus files")
    g.add_argument("--strip-accents", action="store_true",
                   help="map accented letters to base letters in every transcript (default: keep them)")
    g.add_argument("--synth-speakers", type=positive_int, default=8,
                   help="speakers in the synthetic corpus (default %(default)s)")
    g.add_argument("--synth-per-sentence", type=positive_int, default=2,
                   help="emotions each synthetic speaker renders per sentence (default %(default)s)")
    g.add_argument("--synthetic-voices", type=int_range(0), default=None, metavar="N",
                   help="real corpora: add N eSpeak NG voices saying every training sentence twice (two "
                        "emotions' prosody) to the training split, for the CTC term only (their emotion labels "
                        "are caricatures and are not used); test data stays real. Default 8 for corpora of a "
                        "known language (2 with --quick), 0 for a CSV manifest unless --synthetic-language is given")
    g.add_argument("--synthetic-language", default=None,
                   help="eSpeak NG language for --synthetic-voices (default: the corpus' own, e.g. it for EMOVO)")


def add_feature_flags(f) -> None:
    """The log-mel feature, normalisation and augmentation flags."""
    f.add_argument("--sample-rate", type=sample_rate_hz, default=16000, help="Hz (default %(default)s)")
    add_stft_args(f, n_fft=400, hop_length=160, n_fft_help="STFT size in samples (400 = 25 ms at 16 kHz)",
                  hop_help="STFT hop in samples (160 = 10 ms at 16 kHz)")
    f.add_argument("--n-mels", type=positive_int, default=80, help="mel bins (default %(default)s)")
    f.add_argument("--trim-db", type=trim_db, default=40.0,
                   help="trim leading/trailing frames quieter than this many dB below the loudest frame "
                        "(0 disables; default %(default)s)")
    f.add_argument("--mel-warp", type=float_range(0, 0.5), default=0.1,
                   help="random mel-axis stretch of training batches, +- this fraction (vocal-tract-length "
                        "perturbation; 0 disables; default %(default)s)")
    f.add_argument("--tempo", type=float_range(0, 0.5, hi_open=True), default=0.1,
                   help="random speaking-rate change of training batches, +- this fraction (time-axis "
                        "resampling of the features; 0 disables; default %(default)s)")
    f.add_argument("--no-spec-augment", dest="spec_augment", action="store_false",
                   help="disable SpecAugment-style masking of training batches")


def add_model_flags(m) -> None:
    """The model size, loss weighting, optimiser and run flags."""
    m.add_argument("--subsample", type=int, choices=[1, 2, 4], default=4,
                   help="time subsampling by strided convolutions (default %(default)s)")
    m.add_argument("--conv-channels", type=positive_int, default=128, help="(default %(default)s)")
    m.add_argument("--hidden", type=positive_int, default=160, help="LSTM units per direction (default %(default)s)")
    m.add_argument("--layers", type=positive_int, default=1, help="BiLSTM layers (default %(default)s)")
    m.add_argument("--dropout", type=float_range(0, 1, hi_open=True), default=0.2, help="(default %(default)s)")
    m.add_argument("--emotion-input", choices=["lstm", "conv+lstm"], default="conv+lstm",
                   help="what the emotion head pools: the BiLSTM outputs, or the convolutional features beside "
                        "them (default %(default)s)")
    m.add_argument("--emotion-encoder", choices=["shared", "own"], default="shared",
                   help="shared: one BiLSTM feeds both heads; own: the emotion head gets a BiLSTM of its own above "
                        "the shared convolutional trunk (default %(default)s)")
    m.add_argument("--lambda-emotion", type=float_range(0, 1000), default=0.1,
                   help="weight of the emotion cross-entropy in CTC + lambda * CE (default %(default)s)")
    m.add_argument("--loss-weighting", choices=["fixed", "uncertainty"], default="fixed",
                   help="fixed: CTC + lambda * CE; uncertainty: learned task weights (Kendall et al. 2018; "
                        "--lambda-emotion unused) (default %(default)s)")
    add_training_args(m, lr=5e-3, batch_size=8, lr_help="peak learning rate",
                      resume_help="continue the joint model from its checkpoint")
    m.add_argument("--weight-decay", type=float_range(0, 10), default=1e-2,
                   help="AdamW weight decay (default %(default)s)")
    m.add_argument("--ablation", nargs="?", const="both", default=None, choices=["both", "asr_only", "emotion_only"],
                   help="also train the same encoder ASR-only and emotion-only (or only the one named) and report "
                        "them beside the joint model")


def parse_args(argv=None):
    """The parsed command line with ``--quick`` resolved (flag ranges are checked by their argparse types)."""
    return apply_quick(build_parser().parse_args(argv), QUICK, argv)


# =============================================================================== model
class AttentiveStatsPooling(nn.Module):
    """Attentive statistics pooling (Okabe et al. 2018): ``[B, T, D]`` + lengths -> ``[B, 2D]``.

    ``alpha = softmax_t(v^T tanh(W h_t + b))`` over the valid frames; output the
    weighted mean and weighted standard deviation of ``h``. Also returns ``alpha [B, T]``.
    """

    def __init__(self, dim: int, attn_dim: int = 128):
        super().__init__()
        self.score = nn.Sequential(nn.Linear(dim, attn_dim), nn.Tanh(), nn.Linear(attn_dim, 1))

    def forward(self, h, lengths):
        mask = torch.arange(h.shape[1], device=h.device)[None, :] < lengths[:, None]
        alpha = self.score(h).squeeze(-1).masked_fill(~mask, float("-inf")).softmax(dim=1)
        mean = torch.einsum("bt,btd->bd", alpha, h)
        var = torch.einsum("bt,btd->bd", alpha, h * h) - mean * mean
        return torch.cat([mean, var.clamp(min=1e-6).sqrt()], dim=-1), alpha


class MultiTaskModel(nn.Module):
    """Shared encoder + CTC head + emotion head.

    forward(feats ``[B, T, n_mels]``, lengths ``[B]``) -> dict with
    ``log_probs [T', B, vocab]`` (log-softmax, CTC layout), ``out_lengths [B]``,
    ``emotion_logits [B, n_emotions]``, ``attention [B, T']``.
    ``heads``: ``"both"``, ``"asr"`` or ``"emotion"`` (the ablations drop a head).
    ``emotion_input``: what the emotion head pools: ``"lstm"`` (the BiLSTM outputs, ``[B, T', 2H]``)
    or ``"conv+lstm"`` (the subsampled convolutional features beside them, ``[B, T', C + 2H]``: the
    lower layer keeps more of the voice (pitch, energy, voice quality) that CTC training teaches the
    upper layer to ignore).
    ``emotion_encoder``: ``"shared"`` (one BiLSTM feeds both heads) or ``"own"`` (task-specific
    layers above a shared trunk: the joint model gives the emotion head a BiLSTM of its own, the
    same size, above the shared convolutions + LayerNorm; the CTC head keeps the first). The
    ablations are the same networks either way: ASR-only = trunk + CTC BiLSTM, emotion-only =
    trunk + one BiLSTM + pooling, built in the same order, so a seed gives the same weights.
    ``uncertainty``: add ``log_vars [2]`` (log task variances for CTC and CE, Kendall et al. 2018),
    used by :func:`task_losses` instead of the fixed lambda.
    """

    def __init__(self, n_mels, vocab_size, n_emotions, conv_channels=192, hidden=160, layers=2, dropout=0.2,
                 subsample=4, heads="both", emotion_input="conv+lstm", emotion_encoder="shared",
                 uncertainty=False):
        super().__init__()
        if emotion_input not in ("lstm", "conv+lstm"):
            raise ValueError(f"emotion_input must be 'lstm' or 'conv+lstm', got {emotion_input!r}")
        if emotion_encoder not in ("shared", "own"):
            raise ValueError(f"emotion_encoder must be 'shared' or 'own', got {emotion_encoder!r}")
        self.subsample, self.heads, self.emotion_input = subsample, heads, emotion_input
        convs, c_in = [], n_mels
        for _ in range(int(round(math.log2(subsample)))):
            convs += [nn.Conv1d(c_in, conv_channels, kernel_size=5, stride=2, padding=2), nn.GELU()]
            c_in = conv_channels
        self.subsampling = nn.Sequential(*convs)
        self.norm = nn.LayerNorm(c_in)                                          # per frame: padding-independent
        self.lstm = nn.LSTM(c_in, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                            dropout=dropout if layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.ctc_head = nn.Linear(2 * hidden, vocab_size) if heads in ("both", "asr") else None
        self.emotion_lstm = None
        if heads == "both" and emotion_encoder == "own":                         # task-specific layer
            self.emotion_lstm = nn.LSTM(c_in, hidden, num_layers=layers, batch_first=True, bidirectional=True,
                                        dropout=dropout if layers > 1 else 0.0)
        self.log_vars = nn.Parameter(torch.zeros(2)) if uncertainty and heads == "both" else None
        if heads in ("both", "emotion"):
            pooled_dim = 2 * hidden + (c_in if emotion_input == "conv+lstm" else 0)
            self.pool = AttentiveStatsPooling(pooled_dim)
            self.emotion_head = nn.Sequential(nn.Linear(2 * pooled_dim, 128), nn.GELU(), nn.Dropout(dropout),
                                              nn.Linear(128, n_emotions))
        else:
            self.pool = self.emotion_head = None

    def forward(self, feats, lengths):
        x = self.norm(self.subsampling(feats.transpose(1, 2)).transpose(1, 2))  # [B, T', C]
        out_lengths = subsampled_length(lengths.cpu(), self.subsample)
        packed = nn.utils.rnn.pack_padded_sequence(x, out_lengths, batch_first=True, enforce_sorted=False)

        def run(lstm):
            h, _ = nn.utils.rnn.pad_packed_sequence(lstm(packed)[0], batch_first=True, total_length=x.shape[1])
            return self.dropout(h)                                               # [B, T', 2H]

        h = run(self.lstm)
        out = {"out_lengths": out_lengths}
        if self.ctc_head is not None:
            out["log_probs"] = self.ctc_head(h).log_softmax(-1).transpose(0, 1)  # [T', B, V]
        if self.emotion_head is not None:
            if self.emotion_lstm is not None:
                h = run(self.emotion_lstm)
            e_in = torch.cat([self.dropout(x), h], dim=-1) if self.emotion_input == "conv+lstm" else h
            pooled, alpha = self.pool(e_in, out_lengths.to(h.device))
            out["emotion_logits"], out["attention"] = self.emotion_head(pooled), alpha
        return out


def task_losses(model, batch, lambda_emotion: float):
    """``(total, ctc, ce, out)`` for a batch; CTC over the feasible utterances only (``ctc_loss``, mean over
    items of loss / target length), cross-entropy over the utterances with an emotion label
    (``emo >= 0``); missing heads (or no labelled utterance) give ``None`` terms.

    total = CTC + lambda * CE, or, for a model with ``log_vars`` (s), the homoscedastic-uncertainty
    weighting of Kendall et al. (CVPR 2018) for two likelihood terms:
    ``exp(-s_ctc) CTC + s_ctc / 2 + exp(-s_ce) CE + s_ce / 2``; at its optimum each weight is
    ``1 / (2 * loss)``, so the terms pull with similar strength whatever their scale."""
    feats, lengths, tgt, tl, emo, feasible = batch
    out = model(feats, lengths)
    ctc = ce = None
    total = feats.new_zeros(())
    if "log_probs" in out and bool(feasible.any()):
        keep = feasible.nonzero().squeeze(1)
        ctc = ctc_loss(out["log_probs"][:, keep], tgt[keep], out["out_lengths"][keep.cpu()], tl[keep], blank=0)
        total = total + ctc
    labelled = emo >= 0  # synthetic training voices carry IGNORE_EMOTION: CTC only
    if "emotion_logits" in out and bool(labelled.any()):
        ce = F.cross_entropy(out["emotion_logits"][labelled], emo[labelled])
        total = total + (lambda_emotion if "log_probs" in out else 1.0) * ce
    log_vars = getattr(model, "log_vars", None)
    if log_vars is not None and model.training:
        total = feats.new_zeros(())
        for k, term in enumerate((ctc, ce)):
            if term is not None:
                total = total + torch.exp(-log_vars[k]) * term + 0.5 * log_vars[k]
    return total, ctc, ce, out


# =============================================================================== training
def one_cycle(epochs: int, warmup_fraction: float = 0.1, final_factor: float = 0.02):
    """Per-epoch learning-rate factor: linear warm-up over ``warmup_fraction`` of the epochs to the
    peak, then cosine annealing to ``final_factor`` of it (the one-cycle shape of Smith & Topin 2019,
    at epoch granularity because ``audiolab.core.train.fit`` steps schedulers once per epoch)."""
    warm = max(1, round(warmup_fraction * epochs))

    def factor(epoch: int) -> float:
        if epoch < warm:
            return (epoch + 1) / warm
        progress = min((epoch - warm) / max(epochs - warm, 1), 1.0)
        return final_factor + (1 - final_factor) * 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def train_model(heads, args, train, test, vocab, n_emotions, test_refs, device, out_dir, tag):
    """Build and train one model (``heads``: both / asr / emotion); return ``(model, history, seconds)``."""
    seed_everything(args.seed)
    model = MultiTaskModel(args.n_mels, len(vocab), n_emotions, conv_channels=args.conv_channels,
                           hidden=args.hidden, layers=args.layers, dropout=args.dropout,
                           subsample=args.subsample, heads=heads, emotion_input=args.emotion_input,
                           emotion_encoder=args.emotion_encoder, uncertainty=args.loss_weighting == "uncertainty")
    others = [p for n, p in model.named_parameters() if n != "log_vars"]
    groups = [{"params": others}] + ([{"params": [model.log_vars], "weight_decay": 0.0}]
                                     if model.log_vars is not None else [])
    optimizer = torch.optim.AdamW(groups, lr=args.lr, weight_decay=args.weight_decay)
    epochs = args.epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, one_cycle(epochs))
    lam = args.lambda_emotion

    def step(model, batch):
        feats, lengths, tgt, tl, emo, feasible = batch
        feats = mel_warp(feats, args.mel_warp)
        if args.tempo > 0:
            feats, lengths = tempo_perturb(feats, lengths, args.tempo)
            min_frames = torch.tensor([ctc_min_frames(tgt[i, :int(tl[i])].tolist()) for i in range(len(tl))])
            feasible = feasible & (subsampled_length(lengths.cpu(), args.subsample) >= min_frames).to(feasible.device)
        if args.spec_augment:
            feats = mask_by_length(feats, lengths)
        total, ctc, ce, _ = task_losses(model, (feats, lengths, tgt, tl, emo, feasible), lam)
        extras = {}
        if ctc is not None:
            extras["train_ctc_loss"] = float(ctc.detach())
        if ce is not None:
            extras["train_emotion_ce"] = float(ce.detach())
        if getattr(model, "log_vars", None) is not None:   # the learned weights exp(-s) of CTC and CE
            extras["weight_ctc"], extras["weight_ce"] = torch.exp(-model.log_vars.detach()).tolist()
        return total, extras

    def eval_fn(model):
        r = evaluate(model, test, vocab, test_refs, device, lambda_emotion=lam)
        row = {}
        if heads != "emotion":
            row.update(test_ctc_loss=r["ctc_loss"], test_cer=r["cer"], test_wer=r["wer"])
        if heads != "asr":
            row.update(test_emotion_ce=r["emotion_ce"], test_emotion_accuracy=r["emotion_accuracy"])
        return row

    suffix = "" if tag == "joint" else f"_{tag}"
    history = fit(model, optimizer, BucketBatches(train, args.batch_size, shuffle=True), step, epochs,
                  eval_fn=eval_fn, device=device, checkpoint_path=out_dir / f"checkpoint{suffix}.pt",
                  log_path=out_dir / f"log{suffix}.csv", resume=args.resume and tag == "joint",
                  scheduler=scheduler, grad_clip=5.0,
                  config={**vars(args), "vocab": vocab.chars, "heads": heads}, desc=tag)
    return model, history, history.train_seconds  # the whole run, --resume included


def train_all(args, corpus: Corpus, data: Splits, device, out_dir) -> dict:
    """Train and test the joint model, then (``--ablation``) the ASR-only and emotion-only ones."""
    ablations = [("asr_only", "asr"), ("emotion_only", "emotion")]
    runs = [("joint", "both")] + [r for r in ablations if args.ablation in ("both", r[0])]
    results = {}
    for name, heads in runs:
        print(f"--- training {name} ({heads} head{'s' if heads == 'both' else ''}){corpus.tag}")
        train_set = data.train.labelled() if heads == "emotion" else data.train  # synthetic voices have no emotion
        model, history, seconds = train_model(heads, args, train_set, data.test, data.vocab, len(corpus.emotions),
                                              data.test_refs, device, out_dir, name)
        res = evaluate(model, data.test, data.vocab, data.test_refs, device, lambda_emotion=args.lambda_emotion)
        results[name] = {"model": model, "history": history, "seconds": seconds, "res": res}
    return results


# =============================================================================== evaluation
@torch.no_grad()
def evaluate(model, data: Utterances, vocab, refs, device, batch_size=32, lambda_emotion=1.0):
    """Losses, greedy transcripts and emotion predictions for a split.

    ``refs``: normalised reference transcripts, ``None`` (or empty) for clips whose transcript is not
    whole in the audio: they are decoded but left out of CER/WER.

    Returns a dict: ``ctc_loss``, ``emotion_ce`` (means over batches, ``nan`` for a missing
    head), ``hyps`` (strings), ``emotion_pred`` (ints), ``cer``, ``wer`` (jiwer, corpus level over the
    clips with a reference; ``nan`` if none), ``n_scored_transcripts``, ``emotion_accuracy``,
    ``emotion_macro_f1``.
    """
    model.eval()
    order = torch.argsort(data.lengths).tolist()
    hyps, preds = [None] * len(data), [None] * len(data)
    ctc_sum = ce_sum = 0.0
    n_ctc = n_ce = 0
    for i in range(0, len(order), batch_size):
        idx = order[i:i + batch_size]
        batch = tuple(t.to(device) for t in data.batch(idx))
        _, ctc, ce, out = task_losses(model, batch, lambda_emotion)
        if ctc is not None:
            ctc_sum, n_ctc = ctc_sum + float(ctc) * len(idx), n_ctc + len(idx)
        if ce is not None:
            ce_sum, n_ce = ce_sum + float(ce) * len(idx), n_ce + len(idx)
        if "log_probs" in out:
            for j, ids in zip(idx, greedy_decode(out["log_probs"].cpu(), out["out_lengths"], blank=0)):
                hyps[j] = vocab.decode(ids)
        if "emotion_logits" in out:
            for j, k in zip(idx, out["emotion_logits"].argmax(-1).cpu().tolist()):
                preds[j] = k
    res = {"ctc_loss": ctc_sum / n_ctc if n_ctc else float("nan"),
           "emotion_ce": ce_sum / n_ce if n_ce else float("nan"), "hyps": hyps, "emotion_pred": preds}
    if hyps[0] is not None:
        scored = [k for k, r in enumerate(refs) if r]      # clips whose whole transcript is in the audio
        res["n_scored_transcripts"] = len(scored)
        res["cer"] = float(jiwer.cer([refs[k] for k in scored], [hyps[k] for k in scored])) if scored else float("nan")
        res["wer"] = float(jiwer.wer([refs[k] for k in scored], [hyps[k] for k in scored])) if scored else float("nan")
    if preds[0] is not None:
        true = data.emotions.tolist()
        res["emotion_accuracy"] = float(accuracy_score(true, preds))
        res["emotion_macro_f1"] = float(f1_score(true, preds, average="macro", labels=sorted(set(true)),
                                                 zero_division=0))
    return res


# =============================================================================== outputs
def alignment_figure(model, data: Utterances, index, vocab, ref, args, path, title_suffix):
    """Log-mel of one test utterance above its CTC posteriors with the Viterbi forced alignment."""
    import matplotlib.pyplot as plt

    feats, lengths, tgt, tl, _, feasible = data.batch([index])
    with torch.no_grad():
        out = model(feats, lengths)
    lp = out["log_probs"]                                           # [T', 1, V]
    T_out = int(out["out_lengths"][0])
    frame_s = args.hop_length * args.subsample / args.sample_rate
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 7.5), sharex=True)
    dur = int(lengths[0]) * args.hop_length / args.sample_rate
    img = ax1.imshow(feats[0].T.numpy(), origin="lower", aspect="auto", cmap="magma", extent=[0, dur, 0, args.n_mels])
    fig.colorbar(img, ax=ax1, label="normalised log-mel (std units)")
    ax1.set_ylabel("mel bin")
    ax1.set_title(f"test utterance log-mel{title_suffix}\nreference: \"{ref}\"", fontsize=10)
    used = sorted(set(tgt[0, :int(tl[0])].tolist()) | {0})
    post = lp[:T_out, 0, used].exp().T.numpy()
    img2 = ax2.imshow(post, origin="lower", aspect="auto", cmap="Greys", vmin=0, vmax=1,
                      extent=[0, T_out * frame_s, -0.5, len(used) - 0.5])
    fig.colorbar(img2, ax=ax2, label="posterior probability")
    ax2.set_yticks(range(len(used)), ["_" if c == 0 else ("␣" if vocab.chars[c] == " " else vocab.chars[c])
                                      for c in used], fontsize=7)
    ax2.set_ylabel("character (_ = blank)")
    ax2.set_xlabel("time (s)")
    if bool(feasible[0]):
        paths, scores = viterbi_align(lp, tgt, out["out_lengths"], tl, blank=0)
        row = {c: k for k, c in enumerate(used)}
        path_ids = paths[0, :T_out].tolist()
        times = (np.arange(T_out) + 0.5) * frame_s
        ax2.step(times, [row[c] for c in path_ids], where="mid", color="tab:red", linewidth=1.0, alpha=0.8,
                 label="Viterbi path")
        ax2.scatter(times, [row[c] for c in path_ids], color="tab:red", s=6)
        prev = None
        for t, c in enumerate(path_ids):                            # label the start of each character
            if c != 0 and c != prev:
                ax1.text(times[t], args.n_mels - 6, vocab.chars[c], color="cyan", fontsize=8, ha="center")
            prev = c
        ax2.legend(loc="upper right", fontsize=8)
        ax2.set_title(f"CTC posteriors and Viterbi forced alignment (log-prob {float(scores[0]):.1f})", fontsize=10)
    else:
        ax2.set_title("CTC posteriors (transcript too long for the frames: no alignment)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, path)


def write_predictions(path, examples, test_idx, refs, res, emotions):
    """test_predictions.csv: one row per test clip with its reference, hypothesis, CER and both emotions."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "speaker", "transcript_complete", "reference", "hypothesis", "cer", "true_emotion",
                    "predicted_emotion"])
        for k, i in enumerate(test_idx):
            hyp = res["hyps"][k]
            cer = jiwer.cer(refs[k], hyp) if refs[k] else float("nan")
            w.writerow([examples[i].path, examples[i].speaker, int(bool(refs[k])), refs[k] or "", hyp, f"{cer:.4f}",
                        examples[i].emotion, emotions[res["emotion_pred"][k]]])


def save_figures(args, corpus: Corpus, data: Splits, joint: dict, out_dir) -> None:
    """The joint model's confusion matrix, training curves, test predictions and one clip's alignment (+ WAV)."""
    res, model, test, tag = joint["res"], joint["model"].cpu(), data.test, corpus.tag
    cm = confusion_matrix(test.emotions.tolist(), res["emotion_pred"], labels=list(range(len(corpus.emotions))))
    plot_confusion_matrix(cm, corpus.emotions, out_dir / "confusion_matrix.png",
                          title=f"Emotion confusion, {corpus.dataset} test speakers{tag}")
    plot_training_curves(joint["history"], out_dir / "training_curves.png", groups={
        "loss (nats)": ["train_ctc_loss", "test_ctc_loss", "train_emotion_ce", "test_emotion_ce"],
        "error rate (fraction)": ["test_cer", "test_wer"],
        "emotion accuracy (fraction)": ["test_emotion_accuracy"]},
        title=f"Multi-task training on {corpus.dataset}{tag}")
    write_predictions(out_dir / "test_predictions.csv", corpus.examples, corpus.test_idx, data.test_refs, res,
                      corpus.emotions)
    feasible_idx = [k for k in range(len(test)) if bool(test.feasible[k])] or [0]
    k_show = min(feasible_idx, key=lambda k: abs(int(test.lengths[k]) - float(test.lengths.float().median())))
    alignment_figure(model, test, k_show, data.vocab, data.test_refs[k_show] or "(transcript not whole in this clip)",
                     args, out_dir / "alignment.png", tag)
    save_audio(out_dir / f"alignment_utterance{'_synthetic' if corpus.synthetic else ''}.wav",
               corpus.examples[corpus.test_idx[k_show]].waveform, args.sample_rate)


def collect_metrics(args, corpus: Corpus, data: Splits, results: dict, t_start: float) -> dict:
    """metrics.json's numbers: the joint model's test scores, the data counts, the baselines and any ablations."""
    joint, emotions, speakers = results["joint"], corpus.emotions, corpus.speakers
    res, oov = joint["res"], data.oov
    metrics = {
        "test_cer": res["cer"], "test_wer": res["wer"], "test_emotion_accuracy": res["emotion_accuracy"],
        "test_emotion_macro_f1": res["emotion_macro_f1"], "test_ctc_loss": res["ctc_loss"],
        "test_emotion_ce": res["emotion_ce"], "emotion_chance_accuracy": 1.0 / len(emotions),
        "emotion_majority_class": emotions[data.majority], "emotion_majority_accuracy": data.majority_accuracy,
        **data.heads_saw, "n_train_utterances": len(data.train), "n_test_utterances": len(data.test),
        "n_synthetic_train_utterances": len(corpus.examples) - corpus.n_real,
        "synthetic_language": corpus.synthetic_language,
        "n_train_speakers": len({speakers[i] for i in corpus.train_idx if i < corpus.n_real}),
        "n_test_speakers": len({speakers[i] for i in corpus.test_idx}),
        "test_speakers": sorted({speakers[i] for i in corpus.test_idx}), "emotions": emotions,
        "n_emotions": len(emotions), "vocab_size": len(data.vocab), "oov_characters": dict(oov),
        "n_oov_characters": int(sum(oov.values())), "ctc_infeasible_train": data.ctc_infeasible[0],
        "ctc_infeasible_test": data.ctc_infeasible[1], "train_seconds": joint["seconds"],
        "epochs": len(joint["history"]),
        "split": "speakers " + args.test_speakers if args.test_speakers else args.split,
        "n_parameters": sum(p.numel() for p in joint["model"].parameters()),
        **{f"data_{k}": v for k, v in corpus.load_report.items()},
    }
    for name in ("asr_only", "emotion_only"):
        if name in results:
            r = results[name]["res"]
            metrics[f"{name}_train_seconds"] = results[name]["seconds"]
            for key in ("cer", "wer", "emotion_accuracy", "emotion_macro_f1"):
                if key in r:
                    metrics[f"{name}_test_{key}"] = r[key]
    metrics["total_seconds"] = time.perf_counter() - t_start
    return metrics


def metric_anchors(corpus: Corpus, data: Splits) -> list[dict]:
    """anchors.json: the targets, chance and the majority-class baseline beside the measured metrics."""
    n_emotions = len(corpus.emotions)
    return [
        {"metric": "test_emotion_accuracy", "anchor": 0.50, "source": "target (EMOVO, leave-one-actor-out)"},
        {"metric": "test_cer", "anchor": 0.15, "source": "target (EMOVO, unseen actor; sentences repeat)"},
        {"metric": "emotion_chance_accuracy", "anchor": 1.0 / n_emotions, "source": "chance: 1 / number of classes"},
        {"metric": "test_emotion_accuracy", "anchor": data.majority_accuracy,
         "source": f"majority class of training ({corpus.emotions[data.majority]}) predicted for every test clip"},
    ]


def print_summary(corpus: Corpus, data: Splits, results: dict, out_dir) -> None:
    """Print the table of every trained model's test scores and the joint model's one-line summary."""
    res, n_emotions = results["joint"]["res"], len(corpus.emotions)
    rows = [{"model": "joint (CTC + λ·CE)", "test_cer": res["cer"], "test_wer": res["wer"],
             "emotion_acc": res["emotion_accuracy"], "emotion_macro_f1": res["emotion_macro_f1"],
             "train_s": results["joint"]["seconds"]}]
    for name in ("asr_only", "emotion_only"):
        if name in results:
            r = results[name]["res"]
            rows.append({"model": name, "test_cer": r.get("cer"), "test_wer": r.get("wer"),
                         "emotion_acc": r.get("emotion_accuracy"), "emotion_macro_f1": r.get("emotion_macro_f1"),
                         "train_s": results[name]["seconds"]})
    print(format_table(rows))
    if corpus.synthetic:
        print(SYNTHETIC_NOTE)
    print(f"{SCRIPT} [{corpus.dataset}, {corpus.source}]: test_cer={res['cer']:.3f} test_wer={res['wer']:.3f} "
          f"test_emotion_accuracy={res['emotion_accuracy']:.3f} test_emotion_macro_f1={res['emotion_macro_f1']:.3f} "
          f"(chance {1 / n_emotions:.3f}, majority class {data.majority_accuracy:.3f}) -> {out_dir}")


# =============================================================================== main
def main(argv=None):
    """Settings, data, training, evaluation, outputs: the run ``python q2_multitask.py`` makes."""
    args = parse_args(argv)
    seed_everything(args.seed)
    device = select_device(args.device)
    out_dir = out_dir_for(args, SCRIPT)
    t_start = time.perf_counter()
    corpus, data = mtdata.load(DataConfig.from_args(args))
    if corpus.synthetic and not option_given("--epochs", argv) and args.epochs > SYNTHETIC_DEMO_EPOCHS:
        args.epochs = SYNTHETIC_DEMO_EPOCHS  # the demo's size: experiments/make_run.md
        print(f"synthetic demo: {args.epochs} epochs (--epochs N to change)")
    results = train_all(args, corpus, data, device, out_dir)   # the joint model, then the ablations
    if not is_main_process():  # torchrun: the other ranks helped train; rank 0 writes the outputs
        return
    save_figures(args, corpus, data, results["joint"], out_dir)
    metrics = collect_metrics(args, corpus, data, results, t_start)
    write_metrics(out_dir, metrics, args=args, dataset=corpus.dataset, data_source=corpus.source, device=device,
                  anchors=metric_anchors(corpus, data))
    print_summary(corpus, data, results, out_dir)


if __name__ == "__main__":
    import sys

    sys.exit(main_guard(main))
