"""Helpers shared by the end-to-end comparisons with the PyTorch reference."""
import subprocess


def run(args):
    """Runs a tool; its output, or an error carrying what it printed."""
    result = subprocess.run(args, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed:\n{result.stdout}{result.stderr}")
    return result.stdout


def relative_error(ours, ref):
    """||ours - ref|| / ||ref|| in float64 (the absolute error for ref = 0)."""
    ours, ref = ours.double(), ref.double()
    if ours.shape != ref.shape:
        raise RuntimeError(f"shape {tuple(ours.shape)} != reference {tuple(ref.shape)}")
    norm = float(ref.norm())
    return float((ours - ref).norm()) / norm if norm > 0 else float((ours - ref).norm())
