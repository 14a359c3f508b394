"""audiolab: the shared building blocks of the audio deep-learning scripts.

Scripts import from here; nothing here imports a script (except `q2_ctc`, which is
both a script and the CTC module other scripts import). Modules:

- ``audiolab.core.io``        audio read/write through soundfile, resampling, down-mixing
- ``audiolab.core.dsp``       STFT / spectrogram helpers
- ``audiolab.core.metrics``   SI-SNR and SNR in dB
- ``audiolab.core.plotting``  spectrogram figures, training curves
- ``audiolab.core.train``     one training loop (tqdm, checkpoints, resume, CSV log)
- ``audiolab.core.runtime``   seeding, device selection, common CLI flags, metrics.json
- ``audiolab.data.common``  data-root resolution, dataset banners, clear "not found" errors
- ``audiolab.data.synth``     eSpeak NG speech synthesis (embedded default data)
- ``audiolab.report.html``    ``python -m audiolab.report`` builds outputs/report.html
"""

__version__ = "0.1.0"
