"""The data of the multi-task (CTC + emotion) recipe, ``q2_multitask.py``: clips to model-ready tensors.

:func:`load` is the one call the script makes: it loads the clips (a real emotional-speech
corpus or CSV manifest, :mod:`audiolab.data.emotion`, else the eSpeak NG synthetic corpus,
:mod:`audiolab.data.emotion_synth`), drops clips shorter than one STFT frame, splits them into
train and test (:func:`split_indices`), appends synthetic training voices to the training split
(:func:`add_synthetic_voices`, CTC term only), normalises the transcripts into CTC targets
(:mod:`audiolab.data.text`), computes log-mel features normalised per speaker
(:mod:`audiolab.data.features`) and returns a :class:`Corpus` (the clips and their split) and
:class:`Splits` (:class:`Utterances` for training and test, with the counts the outputs report).
:class:`BucketBatches` serves training batches of similar length.

Settings come as a :class:`DataConfig`, whose field names are the script's flags
(``DataConfig.from_args(args)``).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, fields
from pathlib import Path

import torch
import torch.nn as nn

from audiolab.core.runtime import UserError
from audiolab.data import emotion as ed
from audiolab.data import splits
from audiolab.data.common import banner, choose_dataset, resolve_data_root
from audiolab.data.emotion_synth import (CORPUS_LANGUAGE, SYNTH_SENTENCES, synthesize_emotional_speech,
                                         synthetic_training_voices)
from audiolab.data.features import log_mel_features, normalise_per_speaker
from audiolab.data.text import CharVocab, normalize_transcript

#: emotion index of utterances without an emotion label (synthetic training voices)
IGNORE_EMOTION = -100


@dataclass
class DataConfig:
    """The data settings; each field is the ``q2_multitask.py`` flag of the same name.

    Clips: ``dataset`` (a key of ``audiolab.data.emotion.CORPORA``, ``"csv"``, ``"synthetic"`` or
    ``"auto"``), ``data_root``, ``download``, ``manifest`` (a CSV; implies ``csv``),
    ``complete_list``, ``max_seconds`` (s), ``max_files`` (evenly spaced files kept; a real corpus
    uses ``corpus_max_files`` when set, the ``--quick`` size). Split: ``split`` (``"speaker"`` or
    ``"random"``), ``test_fraction``, ``test_speakers`` / ``exclude_speakers`` (comma-separated),
    ``seed``. Synthetic corpus: ``synth_speakers``, ``synth_sentences`` (``None``: all),
    ``synth_per_sentence``. Synthetic training voices: ``synthetic_voices`` (``None``:
    ``synthetic_voices_default`` for a corpus of known language, else 0), ``synthetic_language``.
    Features: ``sample_rate`` (Hz), ``n_fft`` and ``hop_length`` (samples), ``n_mels``,
    ``trim_db`` (dB; 0 disables), ``strip_accents``, ``subsample`` (the model's time subsampling,
    for CTC feasibility). ``allow_overlap``: score test clips whose audio equals a training clip's.
    """

    dataset: str = "auto"
    data_root: Path | None = None
    download: bool = False
    manifest: Path | None = None
    complete_list: Path | None = None
    max_seconds: float | None = 30.0
    max_files: int | None = None
    corpus_max_files: int | None = None
    split: str = "speaker"
    test_fraction: float = 0.2
    test_speakers: str | None = None
    exclude_speakers: str | None = None
    seed: int = 0
    synth_speakers: int = 8
    synth_sentences: int | None = None
    synth_per_sentence: int = 2
    synthetic_voices: int | None = None
    synthetic_voices_default: int = 8
    synthetic_language: str | None = None
    sample_rate: int = 16000
    n_fft: int = 400
    hop_length: int = 160
    n_mels: int = 80
    trim_db: float = 40.0
    strip_accents: bool = False
    subsample: int = 4
    allow_overlap: bool = False

    @classmethod
    def from_args(cls, args) -> "DataConfig":
        """The fields from the parsed command line (an ``argparse.Namespace`` with attributes of these names)."""
        return cls(**{f.name: getattr(args, f.name) for f in fields(cls)})


def load(cfg: DataConfig) -> tuple["Corpus", "Splits"]:
    """Clips, split, synthetic training voices, transcripts and features: ``(corpus, splits)``.

    Prints what it loaded, dropped and how many clips each head sees.

    Raises:
        UserError: no dataset found or readable, bad flags for the data (frame sizes, speakers
            not in the data, an (almost) empty split part, no whole training transcript).
    """
    corpus = load_corpus_split(cfg)
    return corpus, prepare_splits(cfg, corpus)


def load_data(cfg: DataConfig):
    """Pick the dataset and return ``(examples, name, data_source, report)``."""
    data_root = resolve_data_root(cfg.data_root)
    if cfg.manifest is not None or cfg.dataset == "csv":
        if cfg.manifest is None:
            raise UserError("--dataset csv needs --manifest PATH (a CSV with columns path,transcript,emotion,speaker)")
        banner([f"dataset: csv manifest {cfg.manifest} (real)"])
        examples, report = ed.load_corpus("csv", cfg.manifest, cfg.sample_rate, limit=cfg.max_files,
                                          complete_list=cfg.complete_list, max_seconds=cfg.max_seconds)
        return examples, "csv", "real", report
    choice = choose_dataset(cfg.dataset, data_root, ed.real_datasets(), "synthetic",
                            "emotional-prosody speech synthesised with eSpeak NG", download=cfg.download)
    if choice.synthetic:
        examples = synthesize_emotional_speech(
            n_speakers=cfg.synth_speakers, sentences=SYNTH_SENTENCES[:cfg.synth_sentences],
            per_sentence=cfg.synth_per_sentence, sample_rate=cfg.sample_rate, seed=cfg.seed)
        return examples, "synthetic_emotional_speech", "synthetic", {}
    examples, report = ed.load_corpus(choice.name, choice.path, cfg.sample_rate,
                                      limit=cfg.corpus_max_files or cfg.max_files,
                                      complete_list=cfg.complete_list, max_seconds=cfg.max_seconds)
    return examples, choice.name, "real", report


def _speaker_list(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split(",") if s.strip()]


def split_indices(cfg: DataConfig, examples):
    """Train/test indices by the chosen split; prints which speakers went where.

    ``--exclude-speakers`` drops those speakers' utterances first (neither train nor test).

    Raises:
        UserError: an excluded speaker is not in the data, or a part of the split is (nearly) empty.
    """
    speakers = [ex.speaker for ex in examples]
    excluded = _speaker_list(cfg.exclude_speakers)
    unknown = sorted(set(excluded) - set(speakers))
    if unknown:
        raise UserError(f"--exclude-speakers: speaker(s) {unknown} not in the data; "
                        f"speakers are {sorted(set(speakers))}")
    kept = [i for i, s in enumerate(speakers) if s not in set(excluded)]
    kept_speakers = [speakers[i] for i in kept]
    if cfg.test_speakers:
        train, test = splits.leave_speakers_out(kept_speakers, _speaker_list(cfg.test_speakers))
    elif cfg.split == "random":
        print("WARNING: --split random puts every speaker in both parts: emotion accuracy and CER then measure "
              "known voices and are optimistic for new speakers.")
        train, test = splits.random_split(len(kept), cfg.test_fraction, cfg.seed)
    else:
        train, test = splits.speaker_split(kept_speakers, cfg.test_fraction, cfg.seed)
    train, test = [kept[i] for i in train], [kept[i] for i in test]
    check_split(train, test, [ex.emotion for ex in examples])
    splits.refuse_overlap(((examples[i].path or f"clip {i}", examples[i].waveform) for i in train),
                          ((examples[i].path or f"clip {i}", examples[i].waveform) for i in test),
                          allow=cfg.allow_overlap, what="the emotion corpus")
    tr_spk, te_spk = sorted({speakers[i] for i in train}), sorted({speakers[i] for i in test})
    print(f"split: {len(train)} train utterances ({len(tr_spk)} speakers: {', '.join(tr_spk)}), "
          f"{len(test)} test ({len(te_spk)} speakers: {', '.join(te_spk)})"
          + (f"; left out: {', '.join(excluded)}" if excluded else ""))
    return train, test


#: a split part smaller than this is an error (a score on one clip is no measurement)
MIN_SPLIT_UTTERANCES = 2
#: a class with fewer training utterances than this gets a warning
FEW_EXAMPLES = 5


def check_split(train, test, emotions) -> list[str]:
    """Refuse a (nearly) empty train or test part; warn about classes that the test part holds but the
    training part lacks, or that have fewer than ``FEW_EXAMPLES`` training utterances. Returns the warnings.

    Raises:
        UserError: train or test holds fewer than ``MIN_SPLIT_UTTERANCES`` utterances, or training one emotion.
    """
    for name, part in (("training", train), ("test", test)):
        if len(part) < MIN_SPLIT_UTTERANCES:
            raise UserError(f"the {name} split holds {len(part)} utterance(s) (at least {MIN_SPLIT_UTTERANCES} "
                            "needed): check --test-speakers, --exclude-speakers, --test-fraction and the data")
    tr, te = Counter(emotions[i] for i in train), Counter(emotions[i] for i in test)
    if len(tr) < 2:
        raise UserError(f"the training split holds one emotion only ({', '.join(map(str, tr))}): an emotion "
                        "classifier needs at least two, and its accuracy would be 1.000 by construction")
    warnings = [f"emotion {e!r} is in the test split ({te[e]} utterance(s)) but not in training: the model "
                "cannot predict it" for e in sorted(set(te) - set(tr))]
    warnings += [f"emotion {e!r} has only {tr[e]} training utterance(s)" for e in sorted(tr) if tr[e] < FEW_EXAMPLES]
    for w in warnings:
        print(f"WARNING: {w}")
    return warnings


def check_frame_sizes(examples, cfg: DataConfig) -> None:
    """``--n-fft`` and ``--hop-length`` must fit the clips: clips shorter than ``n_fft`` samples are
    reported and dropped (in place); flags larger than every clip are an error naming the flag and limit.

    Raises:
        UserError: ``--hop-length`` > ``--n-fft``, or ``--n-fft`` longer than the longest clip.
    """
    if cfg.hop_length > cfg.n_fft:
        raise UserError(f"--hop-length {cfg.hop_length} exceeds --n-fft {cfg.n_fft}: frames would skip samples; "
                        f"choose --hop-length <= {cfg.n_fft}")
    longest = max(len(ex.waveform) for ex in examples)
    if cfg.n_fft > longest:
        raise UserError(f"--n-fft {cfg.n_fft} is longer than every clip (the longest has {longest} samples = "
                        f"{longest / cfg.sample_rate:.3f} s at {cfg.sample_rate} Hz); choose --n-fft <= {longest}")
    short = [ex for ex in examples if len(ex.waveform) < cfg.n_fft]
    for ex in short:
        print(f"skipped: audio file {ex.path} has {len(ex.waveform)} samples, fewer than one --n-fft frame "
              f"({cfg.n_fft})")
    examples[:] = [ex for ex in examples if len(ex.waveform) >= cfg.n_fft]


def add_synthetic_voices(cfg: DataConfig, examples, train_idx, dataset: str, synthetic: bool):
    """``--synthetic-voices``: append eSpeak NG renderings of the training sentences to ``examples``
    (in place) and their indices to the training split; returns ``(train_idx, language or None)``."""
    if synthetic:  # the embedded corpus is synthetic already
        return list(train_idx), None
    language = cfg.synthetic_language or CORPUS_LANGUAGE.get(dataset)
    n_voices = cfg.synthetic_voices
    if n_voices is None:
        n_voices = 0 if language is None else cfg.synthetic_voices_default
    if n_voices <= 0:
        return list(train_idx), None
    if language is None:
        raise UserError("--synthetic-voices needs --synthetic-language for a CSV manifest (an eSpeak NG language "
                        "code such as en-us, it, de)")
    extra = synthetic_training_voices([examples[i].transcript for i in train_idx], n_voices,
                                         language, per_sentence=2, sample_rate=cfg.sample_rate, seed=cfg.seed + 1)
    start = len(examples)
    examples.extend(extra)
    print(f"training split: + {len(extra)} synthetic utterances ({n_voices} eSpeak NG voices, "
          f"language {language!r}; CTC term only, test data stays real)")
    return list(train_idx) + list(range(start, len(examples))), language


def subsampled_length(lengths: torch.Tensor, subsample: int) -> torch.Tensor:
    """Frames after ``log2(subsample)`` convolutions of kernel 5, stride 2, padding 2.

    Each stage maps ``T -> floor((T + 2*2 - 5) / 2) + 1 = floor((T - 1) / 2) + 1``
    (the Conv1d output-size formula); ``lengths`` is ``[N]`` int.
    """
    out = lengths.clone()
    for _ in range(int(round(math.log2(subsample)))):
        out = torch.div(out + 2 * 2 - 5, 2, rounding_mode="floor") + 1
    return out


def ctc_min_frames(ids: list[int]) -> int:
    """Frames CTC needs for a label sequence: its length plus one blank per repeated neighbour."""
    return len(ids) + sum(1 for a, b in zip(ids, ids[1:]) if a == b)


class Utterances:
    """Tensors for one split: features, target ids, emotion indices, lengths, CTC feasibility."""

    def __init__(self, feats, targets, emotions, subsample):
        self.subsample = subsample
        self.feats = feats
        self.targets = targets
        self.emotions = torch.tensor(emotions, dtype=torch.long)
        self.lengths = torch.tensor([f.shape[0] for f in feats], dtype=torch.long)
        self.out_lengths = subsampled_length(self.lengths, subsample)
        self.feasible = torch.tensor([int(self.out_lengths[i]) >= ctc_min_frames(t) and len(t) > 0
                                      for i, t in enumerate(targets)], dtype=torch.bool)

    def __len__(self):
        return len(self.feats)

    def labelled(self) -> "Utterances":
        """The utterances with an emotion label (synthetic training voices left out)."""
        keep = (self.emotions >= 0).nonzero().squeeze(1).tolist()
        return Utterances([self.feats[i] for i in keep], [self.targets[i] for i in keep],
                          self.emotions[keep].tolist(), self.subsample)

    def batch(self, idx):
        """Pad a batch: ``(feats [B, T, F], lengths [B], targets [B, S], target_lengths [B], emotions [B],
        feasible [B])``."""
        feats = nn.utils.rnn.pad_sequence([self.feats[i] for i in idx], batch_first=True)
        tl = torch.tensor([len(self.targets[i]) for i in idx], dtype=torch.long)
        tgt = torch.zeros(len(idx), max(int(tl.max()), 1), dtype=torch.long)
        for row, i in enumerate(idx):
            tgt[row, :len(self.targets[i])] = torch.tensor(self.targets[i], dtype=torch.long)
        return feats, self.lengths[idx], tgt, tl, self.emotions[idx], self.feasible[idx]


class BucketBatches:
    """Mini-batches of similar length (less padding), reshuffled every epoch with the global torch RNG.

    Sorted by length, cut into batches of ``batch_size``, batch order shuffled; with
    ``shuffle`` each epoch also perturbs lengths by up to 15 % so batches mix.
    """

    def __init__(self, data: Utterances, batch_size: int, shuffle: bool):
        self.data, self.batch_size, self.shuffle = data, batch_size, shuffle

    def __len__(self):
        return math.ceil(len(self.data) / self.batch_size)

    def __iter__(self):
        lengths = self.data.lengths.float()
        if self.shuffle:
            lengths = lengths * (1 + 0.15 * torch.rand(len(lengths)))
        order = torch.argsort(lengths).tolist()
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            batches = [batches[i] for i in torch.randperm(len(batches)).tolist()]
        for b in batches:
            yield self.data.batch(b)


@dataclass
class Corpus:
    """The clips and their split: ``examples`` holds the real clips, then the synthetic training voices."""
    examples: list
    dataset: str
    source: str                       # "real" or "synthetic"
    load_report: dict
    train_idx: list[int]
    test_idx: list[int]
    n_real: int                       # examples[n_real:] are synthetic training voices (CTC term only)
    synthetic_language: str | None
    emotions: list[str]               # the class names, sorted; emo_idx holds each clip's index into them
    emo_idx: list[int]                # IGNORE_EMOTION for clips without an emotion label

    @property
    def synthetic(self) -> bool:
        return self.source == "synthetic"

    @property
    def tag(self) -> str:
        """Appended to titles and progress lines of a synthetic run."""
        return " [SYNTHETIC]" if self.synthetic else ""

    @property
    def speakers(self) -> list[str]:
        return [ex.speaker for ex in self.examples]


@dataclass
class Splits:
    """Model-ready training and test sets, with what the outputs report about them."""
    train: Utterances
    test: Utterances
    test_refs: list                   # normalised test transcripts; None where not whole in the clip
    vocab: CharVocab
    oov: Counter                      # test-transcript characters outside the training vocabulary
    ctc_infeasible: tuple[int, int]   # (train, test) transcripts too long for their subsampled frames
    heads_saw: dict                   # how many clips trained / scored each head
    majority: int                     # the most common training emotion (index into Corpus.emotions)
    majority_accuracy: float          # test accuracy of always predicting it


def load_corpus_split(cfg: DataConfig) -> Corpus:
    """Load the clips, split them into train and test, and add the synthetic training voices."""
    examples, dataset, source, load_report = load_data(cfg)
    check_frame_sizes(examples, cfg)
    synthetic = source == "synthetic"
    train_idx, test_idx = split_indices(cfg, examples)
    emotions = sorted({examples[i].emotion for i in [*train_idx, *test_idx]})
    emo_idx = [emotions.index(ex.emotion) if ex.emotion in emotions else IGNORE_EMOTION for ex in examples]
    n_real = len(examples)
    train_idx, synthetic_language = add_synthetic_voices(cfg, examples, train_idx, dataset, synthetic)
    emo_idx += [IGNORE_EMOTION] * (len(examples) - n_real)
    return Corpus(examples, dataset, source, load_report, train_idx, test_idx, n_real, synthetic_language,
                  emotions, emo_idx)


def encode_transcripts(cfg: DataConfig, corpus: Corpus):
    """Normalised transcripts, the training characters' vocabulary and target ids: ``(texts, vocab, targets, oov)``."""
    # only whole transcripts feed the CTC term and the CER; the others get no target (emotion only)
    texts = [normalize_transcript(ex.transcript, cfg.strip_accents) if ex.transcript_complete else ""
             for ex in corpus.examples]
    if not any(texts[i] for i in corpus.train_idx):
        raise UserError("no training utterance has a whole, non-empty transcript: the CTC head has nothing to "
                        "learn from (check the transcripts and --complete-list)")
    vocab = CharVocab.from_texts([texts[i] for i in corpus.train_idx])
    oov = Counter()
    targets = [vocab.encode(t) for t in texts]
    for i in corpus.test_idx:
        vocab.encode(texts[i], oov)
    if oov:
        print(f"characters of test transcripts outside the training vocabulary (dropped from targets, "
              f"still in the CER reference): {dict(oov)}")
    print(f"vocabulary: {len(vocab) - 1} characters + blank: {''.join(vocab.chars[1:])!r}; "
          f"emotions ({len(corpus.emotions)}): {', '.join(corpus.emotions)}")
    return texts, vocab, targets, oov


def report_ctc_coverage(cfg: DataConfig, train: Utterances, test: Utterances) -> tuple[int, int]:
    """Print the clips without a whole transcript and those too long for CTC; return the latter ``(train, test)``."""
    no_text = [sum(1 for t in part.targets if not t) for part in (train, test)]
    infeasible = [int((~part.feasible).sum()) - n for part, n in zip((train, test), no_text)]
    if any(no_text):
        print(f"CTC: {no_text[0]} training and {no_text[1]} test utterance(s) have no whole transcript (cut "
              "short, empty or cropped); they train and score the emotion head only")
    if any(infeasible):
        print(f"CTC: {infeasible[0]} training and {infeasible[1]} test utterance(s) have a transcript "
              f"longer than their {cfg.subsample}x-subsampled frames allow; they are left out of the CTC loss "
              "(use --subsample 2 to keep them)")
    return infeasible[0], infeasible[1]


def prepare_splits(cfg: DataConfig, corpus: Corpus) -> Splits:
    """Log-mel features, CTC targets and emotion labels of the training and test clips, and their counts."""
    texts, vocab, targets, oov = encode_transcripts(cfg, corpus)
    feats = log_mel_features([ex.waveform for ex in corpus.examples], cfg.sample_rate, cfg.n_fft, cfg.hop_length,
                             cfg.n_mels, cfg.trim_db)
    normalise_per_speaker(feats, corpus.speakers)

    def part(idx):
        return Utterances([feats[i] for i in idx], [targets[i] for i in idx], [corpus.emo_idx[i] for i in idx],
                          cfg.subsample)

    train, test = part(corpus.train_idx), part(corpus.test_idx)
    test_refs = [texts[i] or None for i in corpus.test_idx]
    ctc_infeasible = report_ctc_coverage(cfg, train, test)
    heads_saw = {"n_ctc_train_utterances": int(train.feasible.sum()),
                 "n_emotion_train_utterances": int((train.emotions >= 0).sum()),
                 "n_cer_test_utterances": sum(1 for r in test_refs if r), "n_emotion_test_utterances": len(test)}
    print("clips per head: CTC trained on {n_ctc_train_utterances}, emotion on {n_emotion_train_utterances}; CER "
          "scored on {n_cer_test_utterances} test clips, emotion on {n_emotion_test_utterances}".format(**heads_saw))
    train_counts = Counter(e for e in train.emotions.tolist() if e >= 0)
    majority = max(train_counts, key=train_counts.get)
    majority_accuracy = float((test.emotions == majority).float().mean())
    return Splits(train, test, test_refs, vocab, oov, ctc_infeasible, heads_saw, majority, majority_accuracy)
