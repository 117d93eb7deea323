"""Figures of an analysis: cadence over time and per-step impact."""
from __future__ import annotations

import os
import warnings

from stepsound.atomic import atomic_path
from stepsound.errors import StepsoundError


# a file name or label with characters the font lacks is drawn with boxes: not worth a warning on stderr
warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from (current )?font", category=UserWarning)


def plot_analysis(analysis, path: str) -> None:
    """Write a PNG/PDF/SVG figure of cadence over time and per-step impact.

    Parameters
    ----------
    analysis : stepsound.analyze.Analysis
    path : str
        Output file; the format follows the extension (PNG if none).
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [s for s in analysis.steps if not s.extra]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(11, 6.5), sharex=True,
                                   gridspec_kw={"height_ratios": [3, 2]})
    t_tick = [t.time_s for t in analysis.cadence]
    spm_tick = [float("nan") if t.spm is None else t.spm for t in analysis.cadence]
    t_step = [s.time_s for s in steps if s.cadence_spm is not None]
    spm_step = [s.cadence_spm for s in steps if s.cadence_spm is not None]
    ax1.plot(t_step, spm_step, ".", color="0.6", ms=3, label="per step (instantaneous)")
    ax1.plot(t_tick, spm_tick, "-", color="tab:blue", lw=1.8, label="as displayed live (smoothed)")
    ax1.set_ylabel("cadence [steps/min]")
    ax1.legend(loc="lower right", fontsize=8)
    ax1.grid(alpha=0.3)
    summary = analysis.summary()
    title = os.path.basename(analysis.file)
    if summary["median_cadence_spm"] is not None:
        title += f" — median {summary['median_cadence_spm']:.1f} steps/min, {summary['steps']} steps"
    ax1.set_title(title)
    normal = [(s.time_s, s.impact_db) for s in steps if not s.heavy]
    heavy = [(s.time_s, s.impact_db) for s in steps if s.heavy]
    if normal:
        ax2.plot(*zip(*normal), "o", ms=3, color="tab:green", label="step")
    if heavy:
        ax2.plot(*zip(*heavy), "v", ms=6, color="tab:red", label=f"heavy (≥ +{analysis.heavy_db:g} dB)")
    ax2.axhline(0.0, color="0.4", lw=0.8)
    ax2.axhline(analysis.heavy_db, color="tab:red", lw=0.8, ls="--")
    ax2.set_ylabel("impact [dB re own baseline]")
    ax2.set_xlabel("time [s]")
    ax2.legend(loc="lower right", fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)


def save_figure(fig, path: str, *, dpi: int = 110) -> None:
    """Save a matplotlib figure atomically (format from the extension, PNG if none), then close it.

    Raises
    ------
    StepsoundError
        One line naming ``path`` (unknown format, unwritable); a file that was
        there before is unchanged.
    """
    import matplotlib.pyplot as plt

    fmt = os.path.splitext(path)[1][1:].lower() or "png"
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format=fmt)
    except OSError as exc:
        raise StepsoundError(f"{path}: cannot write the plot ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise StepsoundError(f"{path}: cannot write the plot ({exc})") from None
    finally:
        plt.close(fig)
