"""Evaluation (paper §4.4-4.5): bob.measure-compatible metrics, score files, CASIA's
7 protocols, subject bootstrap, Tables 1-2, Figure 6 and curves.

Modules: ``metrics`` (FAR/FRR, EER, HTER, APCER/BPCER/ACER, ROC/DET), ``scores``
(score CSV files, video-level scores), ``protocols`` (the 7 CASIA test protocols),
``bootstrap`` (confidence intervals over subjects), ``paper_results`` (the paper's
reported numbers), ``tables`` (``make tables``), ``figures``.
Import as ``from eval import metrics``; the package name hides the builtin ``eval``
only as a module name, never as a function.
"""
