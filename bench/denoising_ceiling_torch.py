"""How far denoising MNIST-10k can go when compute is no object: a check run on a lent GPU
machine, which has PyTorch but no TensorFlow (so this is PyTorch, outside the project's
stack, and outside the test suite). It answers whether the autoencoder benchmark's
denoising gain (12 dB asked) is limited by the model, by the data or by the CPU's time.

    python bench/denoising_ceiling_torch.py --tar ../shared/data/images/mnist10k-png.tar.gz \
        --out F.json [--sweep ceiling|epochs] [--seconds 95]

Same split and corruption as `bench/autoencoders.py`: files by name, the first 7,600 train
(the next 400 are the recipe's validation), the last 2,000 test; Gaussian noise, sigma
0.5, clipped to [0, 1] and rounded to 8 bits; PSNR per test image, averaged. Models:
`ae256` (the recipe's denoiser: two stride-2 convolutions, a 256-number dense code, two
transposed convolutions), a U-Net (no bottleneck: skip connections at 28, 14 and 7 pixels,
width w, 2w, 4w) and DnCNN (17 full-resolution layers of 64). AdamW, cosine decay over the
run, pixel cross-entropy, batches of 64, fresh noise every batch; `shift2` moves each
batch's digits by up to 2 pixels.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import tarfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn


def load(tar_path: str) -> tuple[np.ndarray, np.ndarray]:
    with tarfile.open(tar_path) as tar:
        members = sorted(
            (m for m in tar.getmembers() if m.name.endswith(".png")), key=lambda m: m.name
        )
        images = np.stack(
            [
                np.array(Image.open(io.BytesIO(tar.extractfile(m).read())).convert("L"))
                for m in members
            ]
        )
    images = images.astype(np.float32)[:, None] / 255
    return images[:7600], images[8000:]


def corrupt(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    noise = torch.randn(x.shape, generator=generator, device="cpu" if generator else x.device)
    return torch.round(torch.clamp(x + 0.5 * noise.to(x.device), 0, 1) * 255) / 255


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)
    return float((10 * torch.log10(1 / mse)).mean())


def conv_bn_relu(i: int, o: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU())


class AE256(nn.Module):
    def __init__(self, code: int = 256):
        super().__init__()
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 3, 2, 1),
            nn.ReLU(),
            nn.Conv2d(32, 64, 3, 2, 1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * 49, code),
        )
        self.expand = nn.Linear(code, 64 * 49)
        self.decoder = nn.Sequential(
            nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, 2, 1, 1),
            nn.ReLU(),
            nn.ConvTranspose2d(32, 1, 3, 2, 1, 1),
        )

    def forward(self, x):
        return self.decoder(self.expand(self.encoder(x)).view(-1, 64, 7, 7))


class UNet(nn.Module):
    def __init__(self, w: int = 64):
        super().__init__()
        self.down1 = nn.Sequential(conv_bn_relu(1, w), conv_bn_relu(w, w))
        self.down2 = nn.Sequential(conv_bn_relu(w, 2 * w), conv_bn_relu(2 * w, 2 * w))
        self.middle = nn.Sequential(
            conv_bn_relu(2 * w, 4 * w), conv_bn_relu(4 * w, 4 * w), conv_bn_relu(4 * w, 4 * w)
        )
        self.up2 = nn.ConvTranspose2d(4 * w, 2 * w, 2, 2)
        self.merge2 = nn.Sequential(conv_bn_relu(4 * w, 2 * w), conv_bn_relu(2 * w, 2 * w))
        self.up1 = nn.ConvTranspose2d(2 * w, w, 2, 2)
        self.merge1 = nn.Sequential(conv_bn_relu(2 * w, w), conv_bn_relu(w, w))
        self.out = nn.Conv2d(w, 1, 1)

    def forward(self, x):
        a = self.down1(x)
        b = self.down2(F.max_pool2d(a, 2))
        c = self.middle(F.max_pool2d(b, 2))
        b = self.merge2(torch.cat([self.up2(c), b], 1))
        return self.out(self.merge1(torch.cat([self.up1(b), a], 1)))


class DnCNN(nn.Module):
    def __init__(self, depth: int = 17, w: int = 64):
        super().__init__()
        layers = [nn.Conv2d(1, w, 3, padding=1), nn.ReLU()]
        for _ in range(depth - 2):
            layers += [nn.Conv2d(w, w, 3, padding=1), nn.BatchNorm2d(w), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.Conv2d(w, 1, 3, padding=1))

    def forward(self, x):
        return self.net(x)


def shifted(x: torch.Tensor, k: int) -> torch.Tensor:
    if not k:
        return x
    i, j = np.random.randint(0, 2 * k + 1, 2)
    return F.pad(x, (k, k, k, k))[:, :, i : i + 28, j : j + 28]


def train(
    name: str,
    model: nn.Module,
    data: dict,
    seconds: float = 0,
    epochs: int = 0,
    shift: int = 0,
    batch: int = 64,
    rate: float = 2e-3,
) -> dict:
    """Trains for `epochs` (or `seconds`), the rate decaying over that; test PSNR every 5."""
    train_x, test_x, test_noisy = data["train"], data["test"], data["test_noisy"]
    model = model.to(train_x.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=rate, weight_decay=1e-4)
    started, epoch, history = time.time(), 0, []

    def denoised(noisy):
        with torch.no_grad():
            return torch.cat(
                [torch.sigmoid(model(noisy[i : i + 500])) for i in range(0, len(noisy), 500)]
            )

    def done() -> bool:
        return epoch >= epochs if epochs else time.time() - started >= seconds

    while not done():
        progress = epoch / epochs if epochs else (time.time() - started) / seconds
        for group in optimizer.param_groups:
            group["lr"] = rate * 0.5 * (1 + math.cos(math.pi * min(progress, 1)))
        model.train()
        order = torch.randperm(len(train_x), device=train_x.device)
        for start in range(0, len(train_x) - batch + 1, batch):
            clean = shifted(train_x[order[start : start + batch]], shift)
            loss = F.binary_cross_entropy_with_logits(model(corrupt(clean)), clean)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        epoch += 1
        if epoch % 5 == 0 or done():
            model.eval()
            seen = train_x[:2000]
            history.append(
                {
                    "epoch": epoch,
                    "seconds": round(time.time() - started, 1),
                    "train_psnr": round(psnr(denoised(corrupt(seen)), seen), 2),
                    "test_psnr": round(psnr(denoised(test_noisy), test_x), 2),
                }
            )
            print(name, history[-1], flush=True)
    return {
        "name": name,
        "params": sum(p.numel() for p in model.parameters()),
        "epochs": epoch,
        "test_psnr": history[-1]["test_psnr"],
        "history": history,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tar", required=True, help="images/mnist10k-png.tar.gz")
    p.add_argument("--out", required=True)
    p.add_argument("--sweep", choices=("ceiling", "epochs"), default="ceiling")
    p.add_argument("--seconds", type=float, default=95, help="each ceiling run's training")
    args = p.parse_args()
    torch.backends.cudnn.benchmark = True
    device = "cuda" if torch.cuda.is_available() else "cpu"
    train_x, test_x = (torch.tensor(a, device=device) for a in load(args.tar))
    test_noisy = corrupt(test_x.cpu(), torch.Generator().manual_seed(123)).to(device)
    data = {"train": train_x, "test": test_x, "test_noisy": test_noisy}
    report = {
        "device": torch.cuda.get_device_name() if device == "cuda" else "cpu",
        "noisy_psnr": round(psnr(test_noisy, test_x), 2),
        "runs": [],
    }
    if args.sweep == "ceiling":
        runs = [
            ("ae256", AE256(), 0),
            ("unet64", UNet(64), 0),
            ("unet64_shift2", UNet(64), 2),
            ("dncnn17", DnCNN(), 0),
        ]
        for name, model, shift in runs:
            report["runs"].append(train(name, model, data, seconds=args.seconds, shift=shift))
    else:
        for width, epochs in [(16, 30), (32, 30), (32, 15), (64, 15), (24, 45)]:
            report["runs"].append(
                train(f"unet{width}_shift2_{epochs}ep", UNet(width), data, epochs=epochs, shift=2)
            )
    print(json.dumps(report, indent=1))
    with open(args.out, "w") as f:
        json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
