"""Every built-in activation next to its derivative.

One panel per activation: ``g(z)`` solid, ``g'(z)`` dashed, with ``g'(0)`` marked and,
where the derivative peaks away from 0, that peak (GELU and SiLU rise above 1). Prints a
table of what is worth knowing about each derivative: its value at 0, its largest value
(the sigmoid's is 0.25: every sigmoid layer multiplies the backpropagated gradient by
at most 0.25, besides what its weights do), its smallest, and where it has vanished (``|g'| < 1 %`` of the peak).

Usage::

    python examples/activation_gallery.py   # writes docs/images/activation_gallery.png
    python examples/activation_gallery.py --quick --out /tmp/gallery.png
"""

import argparse
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from scipy.optimize import minimize_scalar  # noqa: E402

from sknn_scratch import activations as A  # noqa: E402
from sknn_scratch.plotting import plot_activations  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_OUT = os.path.join(HERE, "..", "docs", "images", "activation_gallery.png")

ACTIVATIONS = [A.Identity(), A.Sigmoid(), A.Tanh(), A.ReLU(), A.LeakyReLU(0.01),
               A.PReLU(0.25), A.ELU(1.0), A.Softplus(), A.SiLU(), A.GELU(), A.Exp()]


def measure(act, z):
    """``g'(0)``, the extremes of ``g'``, the share of ``z`` where it has vanished."""
    d = act.derivative(z)
    peak = int(np.argmax(d))
    plateau = np.sum(np.isclose(d, d[peak], rtol=0, atol=1e-9)) > 1
    argmax_z, max_d = None, float(d[peak])
    if not (plateau or peak in (0, len(z) - 1)):
        argmax_z = float(z[peak])
        # the peak may lie between grid points (GELU's at sqrt 2): kept if higher
        found = minimize_scalar(lambda t: -float(act.derivative(np.array([t]))[0]),
                                bounds=(z[peak - 1], z[peak + 1]), method="bounded",
                                options={"xatol": 1e-9})
        if -found.fun > max_d:
            argmax_z, max_d = float(found.x), -float(found.fun)
    vanished = np.abs(d) < 0.01 * act.max_derivative  # the rule diagnose() uses
    return {
        "name": act.name,
        "g0": float(act.forward(np.array([0.0]))[0]),
        "d0": float(act.derivative(np.array([0.0]))[0]),
        "max_d": max_d,
        "argmax_z": argmax_z,
        "min_d": float(d.min()),
        "vanished": float(vanished.mean()),
        "check": A.check_derivative(act),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="coarser grid")
    parser.add_argument("--out", default=DEFAULT_OUT, help="PNG to write")
    args = parser.parse_args(argv)

    n = 401 if args.quick else 4001
    wide = np.linspace(-10, 10, n)
    rows = [measure(act, wide) for act in ACTIVATIONS]
    print("Derivatives on z in [-10, 10]. 'at z': where g' peaks (- for a plateau or "
          "the edge);\n'vanished': share of z where |g'| < 1 % of its largest value "
          "(the saturation\nrule of diagnose(); exp's derivative has no largest: 1 % of "
          "g'(0) = 1); 'check':\ncheck_derivative, the worst relative error against "
          "central differences.\n")
    header = ["activation", "g(0)", "g'(0)", "max g'", "at z", "min g'", "vanished",
              "check"]
    print(f"{header[0]:<12}" + "".join(f"{h:>10}" for h in header[1:]))
    for r in rows:
        print(f"{r['name']:<12}{r['g0']:>10.3g}{r['d0']:>10.4g}{r['max_d']:>10.4g}"
              f"{'-' if r['argmax_z'] is None else format(r['argmax_z'], '.2f'):>10}"
              f"{r['min_d']:>10.4f}{r['vanished']:>10.1%}"
              f"{r['check']:>10.1e}")

    z = np.linspace(-6, 6, n)
    fig, axes = plt.subplots(3, 4, figsize=(16, 11))
    for act, ax in zip(ACTIVATIONS, axes.flat):
        plot_activations([act], z, ax=ax, annotate=True)
        ax.set_title(repr(act), fontsize="medium")
        ax.legend(fontsize="x-small", loc="upper left")
        if isinstance(act, A.Exp):  # its derivative is itself: one curve hides the other
            ax.text(0.97, 0.05, "g' = g: the curves coincide", transform=ax.transAxes,
                    ha="right", fontsize="small")
    last = axes.flat[len(ACTIVATIONS)]
    plot_activations(ACTIVATIONS[1:4], z, ax=[last, last], annotate=False)
    last.set_title("sigmoid vs tanh vs ReLU", fontsize="medium")
    last.legend(fontsize="x-small", loc="upper left")
    for ax in axes.flat:
        ax.set_ylim(-1.6, 3.0)
    fig.suptitle("Built-in activations g(z) (solid) and their derivatives g'(z) "
                 "(dashed)", fontsize="x-large")
    fig.tight_layout()
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    fig.savefig(args.out, dpi=80)
    plt.close(fig)
    print(f"\nwrote {args.out}")
    return {r["name"]: r for r in rows}


if __name__ == "__main__":
    main()
