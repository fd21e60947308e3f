"""One-process timing of the distilled 2x800 student epoch (60,000 random images, T = 20, random
teacher logits of sd 10): float32 and bfloat16, update eager and compiled, one thread.

``.venv/bin/python benchmarks/quick_epoch_timing.py [THREADS] [sgd|adam]`` prints the seconds
of one epoch (the mean of two, after a 10-batch warm-up that also compiles). The scratch
measurement behind the first numbers of benchmarks/README.md's student section; the fuller
``student_epoch.py`` measures the same and the floor.
"""
import sys

import torch

from kdlib.core.spec import Member, TrainSpec
from kdlib.core.train import train

torch.set_num_threads(int(sys.argv[1]) if len(sys.argv) > 1 else 1)
g = torch.Generator().manual_seed(0)
N = 60000
images = (torch.rand(N, 28, 28, generator=g) * 255).to(torch.uint8)
labels = torch.randint(0, 10, (N,), generator=g)
logits = torch.randn(N, 10, generator=g) * 10
optimizer = sys.argv[2] if len(sys.argv) > 2 else "sgd"
member = Member(0, 20.0, 1.0, 0.0)
for precision in ("float32", "bfloat16"):
    for compiled in (False, True):
        spec = TrainSpec(widths=(800, 800), epochs=2, batch_size=128, lr=0.001, momentum=0.9,
                         precision=precision, optimizer=optimizer)
        train(images[:1280], labels[:1280], spec, [member], teacher_logits=logits[:1280],
              progress=False, check_collapse=False, compile=compiled)
        r = train(images, labels, spec, [member], teacher_logits=logits, progress=False,
                  check_collapse=False, compile=compiled)
        print(optimizer, precision, "compiled" if compiled else "eager", "s/epoch",
              round(r.wall_time / 2, 3), flush=True)
