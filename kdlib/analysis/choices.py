"""What the paper leaves open about its MNIST students, and what the book's recipe chose
(``kdlib.runs.student_recipe``), for the results chapter's table."""
from __future__ import annotations

from ..runs.student_recipe import RECIPE
from ..runs.search import HARD_WEIGHTS, STAGE3_EPOCHS


def protocol_choices() -> list[tuple[str, str, str]]:
    """(what the paper leaves open, our choice, why), for the results chapter; values read from
    the recipes and ``kdlib.runs.student_recipe``."""
    from ..runs import recipes as rc
    p = RECIPE
    d = rc.distill_spec()
    teacher = rc.PAPER_TEACHER
    optimiser = ({"sgd": f"SGD, momentum {d.momentum:g}", "adam": "Adam"}.get(d.optimizer, d.optimizer)
                 + f", batch {d.batch_size}")
    narrow = "".join(f"; 2x{w} students {lr:g}" for w, lr in p.width_lrs)
    return [
        ("Optimiser (students)", optimiser,
         "chosen on the validation split with its learning rate (chapter 6: SGD, Adam and the "
         "schedule of Hinton et al. 2012)"),
        ("Learning rate and schedule (students)",
         f"{d.lr:g}{narrow}; linear warm-up over {d.warmup_epochs} epochs, then cosine decay to 0",
         "chosen on the validation split (narrow students: their own search stage); "
         "the last epoch is reported, never the best one; without the warm-up a 2x800 student "
           "at T = 20 collapsed to one class in its first epoch"),
        ("Teacher", f"{teacher.epochs} epochs, dropout {teacher.input_dropout:g} input / "
         f"{teacher.hidden_dropout:g} hidden, max-norm {teacher.max_norm:.3g}, jitter up to "
         f"{teacher.jitter} px" + (", the schedule of Hinton et al. (2012)"
                                   if teacher.schedule == "hinton2012" else ""),
         "the recipe the paper cites (Hinton et al. 2012; chapter 6 lists our deviations)"),
        ("Student budget", f"{p.student_epochs} epochs for every student",
         f"chosen on the validation split among {', '.join(map(str, STAGE3_EPOCHS))} (chapter 6)"),
        ("Distillation loss", f"soft weight {rc.SOFT_WEIGHT:g} x T^2, hard weight "
         f"{p.hard_weight:g}, T = {rc.DISTILL_TEMPERATURE:g}",
         f"T from Section 3; the hard weight chosen on the validation split among "
         f"{', '.join(f'{w:g}' for w in HARD_WEIGHTS)} (chapter 6)"),
        ("Arithmetic (students)", f"{d.precision} matrix products, float32 weights and update",
         "speed on CPUs with AVX-512 BF16; parity with float32 measured on the validation split "
         "(benchmarks/README.md)"),
        ("Gradient clipping", "none", "not needed by the searched recipe"),
        ("Transfer set", "the 60,000 training images, no jitter, teacher logits computed once",
         "Section 3: the transfer set has no translations"),
        ("Initialisation", "U(-1/sqrt(fan_in), 1/sqrt(fan_in)) per member seed",
         "PyTorch's nn.Linear default; the paper does not say"),
        ("Tuning", "nothing tuned on the test set; the validation split (`--validation`) trains "
         "teacher and students on the first 50,000 training images and counts errors on the "
         "last 10,000", "the student recipe was chosen there (chapter 6)"),
    ]
