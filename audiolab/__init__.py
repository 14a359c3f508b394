"""audiolab: the shared building blocks of the audio deep-learning scripts.

Scripts import from here; nothing here imports a script (except `q2_ctc`, which is
both a script and the CTC module other scripts import). Modules:

- ``audiolab.io``        audio read/write through soundfile, resampling, down-mixing
- ``audiolab.dsp``       STFT / spectrogram helpers
- ``audiolab.metrics``   SI-SNR and SNR in dB
- ``audiolab.plotting``  spectrogram figures, training curves
- ``audiolab.train``     one training loop (tqdm, checkpoints, resume, CSV log)
- ``audiolab.runtime``   seeding, device selection, common CLI flags, metrics.json
- ``audiolab.datasets``  data-root resolution, dataset banners, clear "not found" errors
- ``audiolab.synth``     eSpeak NG speech synthesis (embedded default data)
- ``audiolab.report``    ``python -m audiolab.report`` builds outputs/report.html
"""

__version__ = "0.1.0"
