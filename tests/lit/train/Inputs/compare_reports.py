"""Prints how the training activation peak of a `moec compile` output
(argv[1]) compares with another's (argv[2]); fails unless it is smaller."""
import sys


def peak(path):
    with open(path) as f:
        for line in f:
            key, _, value = line.partition(": ")
            if key == "training_activation_peak_bytes":
                return int(value)
    sys.exit(f"{path}: no training_activation_peak_bytes")


ratio = peak(sys.argv[1]) / peak(sys.argv[2])
if ratio >= 1:
    sys.exit(f"bf16 storage takes {ratio:.3f} of fp32's")
print(f"training_activation_peak_bytes: bf16 storage takes {ratio:.3f} of fp32's")
