"""Train the bundled example: a small CNN on scikit-learn's 8x8 handwritten digits.

Writes, next to this file: digits.onnx (torch.onnx.export, classic exporter, opset 13),
calib.npz (64 training images, key x) and test.npz (200 held-out images x, labels y).
Needs torch and scikit-learn (only to retrain): python3 examples/digits/train.py
Deterministic: the same seeds give the same weights on the same torch version.
"""

from pathlib import Path

import numpy as np
import onnx
import torch
from onnx.reference import ReferenceEvaluator
from sklearn.datasets import load_digits
from torch import nn

HERE = Path(__file__).resolve().parent


class DigitsNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
            nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.classifier = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


def main():
    torch.manual_seed(0)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    digits = load_digits()
    x = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target.astype(np.int64)
    order = np.random.default_rng(0).permutation(len(x))
    train, test = order[:1497], order[1497:]

    model = DigitsNet()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    xt, yt = torch.from_numpy(x[train]), torch.from_numpy(y[train])
    for epoch in range(30):
        model.train()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 64):
            idx = perm[i:i + 64]
            optimizer.zero_grad()
            loss = nn.functional.cross_entropy(model(xt[idx]), yt[idx])
            loss.backward()
            optimizer.step()
    model.eval()
    with torch.no_grad():
        logits = model(torch.from_numpy(x[test])).numpy()
    accuracy = float(np.mean(logits.argmax(1) == y[test]))
    print(f"test accuracy {100 * accuracy:.1f}% on {len(test)} images")

    path = HERE / "digits.onnx"
    torch.onnx.export(model, torch.zeros(1, 1, 8, 8), str(path), input_names=["x"], output_names=["logits"],
                      dynamic_axes={"x": {0: "batch"}, "logits": {0: "batch"}}, opset_version=13, dynamo=False)
    onnx.checker.check_model(onnx.load(str(path)))
    reference = ReferenceEvaluator(str(path)).run(None, {"x": x[test[:16]]})[0]
    assert np.max(np.abs(reference - logits[:16])) < 1e-4

    np.savez_compressed(HERE / "calib.npz", x=x[train[:64]])
    np.savez_compressed(HERE / "test.npz", x=x[test[:200]], y=y[test[:200]])


if __name__ == "__main__":
    main()
