"""Augmentation and signal preparation, one implementation each: waveform (speed perturbation, time shift,
trimming, noise mixing) and spectrogram (SpecAugment masks, time stretch)."""
