"""Trainer throughput, measured side by side in one run.

1. This trainer's input path (uint8 data held on the device, augmented there in
   batches) against the usual torchvision one (DataLoader workers running PIL
   transforms: RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
   Normalize), on the same small ResNet and batch size. CPU always, CUDA too
   when there is one.
2. CUDA only: 4 small jobs sharing the GPU (4 processes at once) against the
   same jobs one at a time.

    python bench/trainer_throughput.py --quick     # CPU part well under a minute
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

from tuiexp.trainer.augment import prepare
from tuiexp.trainer.config import Augment
from tuiexp.trainer.data import TensorSource
from tuiexp.trainer.models import build

AUG = Augment(crop_padding=4, flip=True, color_jitter=0.0, rotation=0.0, erasing=0.0)
MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)


def machine() -> str:
    gpu = torch.cuda.get_device_name() if torch.cuda.is_available() else "no GPU"
    return (f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
            f"torch {torch.__version__}, {gpu}")


def cifar_like(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g), torch.randint(0, 10, (n,), generator=g)


class Step:
    """One training step of a small ResNet, set up as the trainer does on this device."""

    def __init__(self, device: torch.device):
        self.device = device
        self.cuda = device.type == "cuda"
        self.model = build("resnet", {}, 10, 3, 0.0).to(device)
        if self.cuda:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=0.05, momentum=0.9, nesterov=True)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.cuda):
            loss = F.cross_entropy(self.model(x).float(), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return loss


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def ours(device: torch.device, n: int, batch: int, steps: int) -> float:
    x, y = cifar_like(n)
    src = TensorSource(x.to(device), y.to(device), device)
    mean, std = torch.tensor(MEAN, device=device), torch.tensor(STD, device=device)
    gen = torch.Generator(device).manual_seed(0)
    step = Step(device)
    cl = device.type == "cuda"

    def batches():
        while True:
            yield from src.batches(batch, gen)

    it = batches()
    for _ in range(3):  # warm-up
        xb, yb = next(it)
        step(prepare(xb, mean, std, AUG, gen, cl), yb)
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        xb, yb = next(it)
        step(prepare(xb, mean, std, AUG, gen, cl), yb)
    sync(device)
    return steps * batch / (time.perf_counter() - t0)


def torchvision_loader(device: torch.device, n: int, batch: int, steps: int, workers: int) -> float:
    import torchvision.transforms as T
    from PIL import Image

    x, y = cifar_like(n)
    pixels = x.permute(0, 2, 3, 1).numpy()

    class PilSet(torch.utils.data.Dataset):
        tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                        T.Normalize(MEAN, STD)])

        def __len__(self) -> int:
            return n

        def __getitem__(self, i: int):
            return self.tf(Image.fromarray(pixels[i])), int(y[i])

    # one pass over enough images: no persistent workers to tear down at exit
    assert n >= (steps + 3) * batch, "the torchvision path needs (steps + 3) batches of images"
    loader = torch.utils.data.DataLoader(
        PilSet(), batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
        pin_memory=device.type == "cuda")
    step = Step(device)
    it = iter(loader)
    for _ in range(3):
        xb, yb = next(it)
        step(xb.to(device, non_blocking=True), yb.to(device, non_blocking=True))
    sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        xb, yb = next(it)
        xb = xb.to(device, non_blocking=True)
        if device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        step(xb, yb.to(device, non_blocking=True))
    sync(device)
    ips = steps * batch / (time.perf_counter() - t0)
    del it  # stops the workers
    return ips


def compare(device: torch.device, n: int, batch: int, steps: int) -> None:
    workers = min(4, os.cpu_count() or 1)
    a = ours(device, n, batch, steps)
    b = torchvision_loader(device, n, batch, steps, workers)
    print(f"[{device.type}] batch {batch}, {steps} steps")
    print(f"  on-device uint8 + batched augment : {a:10.0f} images/s")
    print(f"  DataLoader({workers} workers) + PIL    : {b:10.0f} images/s")
    print(f"  ratio                             : {a / b:10.2f}x")


def shared_gpu(batch: int, steps: int, jobs: int = 4) -> None:
    """Aggregate images/s of `jobs` processes at once on one GPU, against one at a time."""
    cmd = [sys.executable, __file__, "--worker", str(batch), str(steps)]
    alone = [json.loads(subprocess.check_output(cmd))["images_per_s"] for _ in range(jobs)]
    t0 = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE) for _ in range(jobs)]
    for p in procs:
        p.wait()
    wall = time.perf_counter() - t0
    together = [json.loads(p.stdout.read())["images_per_s"] for p in procs]  # type: ignore[union-attr]
    one_at_a_time = sum(alone) / jobs
    print(f"[cuda] {jobs} jobs sharing one GPU (batch {batch}, {steps} steps each)")
    print(f"  one at a time, aggregate          : {one_at_a_time:10.0f} images/s")
    print(f"  {jobs} at once, aggregate (steady)   : {sum(together):10.0f} images/s")
    print(f"  {jobs} at once, incl. start-up, wall : {jobs * steps * batch / wall:10.0f} images/s")
    print(f"  ratio (steady)                    : {sum(together) / one_at_a_time:10.2f}x")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small sizes: CPU part in well under a minute")
    ap.add_argument("--worker", nargs=2, type=int, metavar=("BATCH", "STEPS"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        ips = ours(torch.device("cuda"), 10_000, args.worker[0], args.worker[1])
        print(json.dumps({"images_per_s": ips}))
        return
    print(machine())
    cpu_steps = 4 if args.quick else 30
    compare(torch.device("cpu"), (cpu_steps + 3) * 128, 128, cpu_steps)
    if torch.cuda.is_available():
        gpu_steps = 50 if args.quick else 200
        compare(torch.device("cuda"), (gpu_steps + 3) * 512, 512, gpu_steps)
        shared_gpu(128, gpu_steps * 2)


if __name__ == "__main__":
    main()
