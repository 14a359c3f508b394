"""audiolab: the shared library under the assignment scripts, one folder per concern.

- ``audiolab.core``     command line, run-time plumbing, outputs, the training loop, torchrun, audio I/O,
                        STFT, features, metrics, evaluation, plots, progress; knows no dataset or task
- ``audiolab.data``     one module per kind of data (keywords, emotion, speech + noise, music, images), each
                        with a registry of its corpora; splits; eSpeak NG synthesis for the default data
- ``audiolab.augment``  augmentation, one implementation each: waveform, noise mixing, spectrogram
- ``audiolab.report``   the summary table and outputs/report.html that ``make run`` ends with

Scripts import from here; nothing here imports a script. The layout and where to add a model, dataset,
augmentation or report section: docs/ARCHITECTURE.md.
"""

__version__ = "0.2.0"
