"""The generative-discriminative continuum for the GPT-2 arm (Bouchard & Triggs 2004;
Lasserre, Bishop & Minka 2006): one class-conditional LM trained on a blend of

- the generative term: the mean per-token NLL of each message under its true class, exactly
  the language-model loss the Trainer computes today; and
- the discriminative term: the cross-entropy of the Bayes posterior
  ``softmax_y(log P(x | y) + log P(y))`` against the true class, where ``log P(x | y)`` is the
  sum :meth:`GPT2Classifier.log_likelihood` computes and ``log P(y)`` the train prior.

``loss = generative_weight * generative + discriminative_weight * discriminative``. Every
class's ``log P(x | y)`` comes from one batched forward pass: with prefix conditioning the
batch is repeated once per class with that class's label token in front; with ``per_class``
conditioning the class LMs are wrapped in one module (:class:`JointLMs`) that runs each on
the batch. The loss goes through the transformers ``Trainer`` (:func:`make_trainer`, a
``compute_loss`` override), so resume, bf16 on a GPU, DDP, the validation loss (blended
too) and the progress callbacks work as for the pure LM. At the default weights (1, 0)
:func:`make_trainer` returns the plain ``Trainer`` with today's collator.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from typing import Any, Sequence

import torch
import torch.nn.functional as F

from nlpgd.models.causal_lm import collate, sequence_log_likelihood


def plain_lm_loss(params) -> bool:
    """Whether ``params`` train on the plain language-model loss alone (weights (1, 0)); which
    family the model is in is ``GPT2Params.objective``."""
    return (params.generative_weight, params.discriminative_weight) == (1.0, 0.0)


def lm_pair_kind(checkpoint: str) -> str:
    """The matched pair a class-conditional LM that is not a hybrid belongs to."""
    return "scratch" if checkpoint == "scratch" else "pretrained"


def lm_training_summary(params) -> dict[str, str]:
    """The rows of the claims page's "what differs" table that are the LM's own."""
    loss = {"generative": "LM loss", "discriminative": "posterior cross-entropy"}.get(params.objective, "blended loss")
    scratch = params.checkpoint == "scratch"
    return {
        "oversampling": f"class_balance {params.class_balance:g}" if params.class_balance else "none",
        "init": "GPT-2 default (std 0.02)" if scratch else f"pretrained {params.checkpoint}",
        "selection rule": f"epoch with the lowest validation {loss}",
    }


def joint_training(params) -> bool:
    """``per_class`` conditioning with a discriminative term: the class LMs train together."""
    return params.conditioning == "per_class" and params.discriminative_weight > 0


def hybrid_collate(filler_id: int):
    """:func:`~nlpgd.models.causal_lm.collate` plus ``class_index``: each row's true class."""
    plain = collate(filler_id)

    def collate_with_class(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        batch = plain(features)
        batch["class_index"] = torch.tensor([int(f["class_index"]) for f in features], dtype=torch.long)
        return batch

    return collate_with_class


def shifted_targets(labels: torch.Tensor) -> torch.Tensor:
    """Each position's next token (-100 where none is scored), as :func:`padded_batch` builds them."""
    targets = torch.full_like(labels, -100)
    targets[:, :-1] = labels[:, 1:]
    return targets


def class_log_likelihoods(model, input_ids: torch.Tensor, labels: torch.Tensor, start_ids: Sequence[int] | None):
    """``(B, C)`` ``log P(x | y = c)`` of every row under every class, from one forward pass.

    ``start_ids`` (prefix conditioning): the batch is repeated once per class with that
    class's label token in column 0. None: ``model`` is a :class:`JointLMs` and returns every
    class's logits itself. Only each row's own tokens (and its end token) are summed."""
    targets = shifted_targets(labels)
    if start_ids is not None:
        n_classes, rows = len(start_ids), input_ids.shape[0]
        repeated = input_ids.repeat(n_classes, 1)
        repeated[:, 0] = torch.tensor(list(start_ids), device=input_ids.device).repeat_interleave(rows)
        logits = model(input_ids=repeated).logits
    else:
        logits = model(input_ids=input_ids)["logits"]
        n_classes = logits.shape[0]
        logits = logits.flatten(0, 1)
    ll = sequence_log_likelihood(logits, targets.repeat(n_classes, 1))
    return ll.view(n_classes, -1).T


def discriminative_term(ll: torch.Tensor, class_index: torch.Tensor, log_prior: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of ``softmax_y(log P(x | y) + log P(y))`` against the true class."""
    return F.cross_entropy(ll + log_prior.to(ll.device, ll.dtype), class_index)


class JointLMs(torch.nn.Module):
    """The class LMs of ``per_class`` conditioning as one module, so that one Trainer trains
    them together on the discriminative term and DDP sees every parameter in one forward."""

    def __init__(self, lms: Sequence[torch.nn.Module]):
        super().__init__()
        self.lms = torch.nn.ModuleList(lms)
        full = super().state_dict()
        # the Trainer re-ties (tie_weights) when exactly these keys are missing from a checkpoint
        self._keys_to_ignore_on_save = [k for k in full if k not in self._without_aliases(full)]

    def forward(self, input_ids: torch.Tensor, labels: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        return {"logits": torch.stack([lm(input_ids=input_ids).logits for lm in self.lms])}

    def tie_weights(self) -> None:
        for lm in self.lms:
            lm.tie_weights()

    def state_dict(self, *args, **kwargs):
        """Without aliases: a tied output layer is the input embedding under a second name,
        which safetensors refuses to write twice; loading re-ties it (:meth:`tie_weights`)."""
        return self._without_aliases(super().state_dict(*args, **kwargs))

    @staticmethod
    def _without_aliases(state: dict) -> OrderedDict:
        seen, out = set(), OrderedDict()
        for key, value in state.items():
            ident = (value.untyped_storage().data_ptr(), value.storage_offset(), tuple(value.shape))
            if ident not in seen:
                seen.add(ident)
                out[key] = value
        return out


@functools.lru_cache(maxsize=None)
def _trainer_class():
    from transformers import Trainer

    class HybridTrainer(Trainer):
        """``Trainer`` whose loss blends the LM loss with the Bayes-posterior cross-entropy."""

        def __init__(self, *args, weights: tuple[float, float], start_ids, log_prior, **kwargs):
            super().__init__(*args, **kwargs)
            self.weights = (float(weights[0]), float(weights[1]))
            self.start_ids = None if start_ids is None else list(start_ids)
            self.log_prior = torch.as_tensor(log_prior, dtype=torch.float32)

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            inputs = dict(inputs)
            class_index = inputs.pop("class_index")
            gen_w, disc_w = self.weights
            joint = isinstance(self.accelerator.unwrap_model(model), JointLMs)
            if disc_w == 0 and not joint:  # the language-model loss exactly as the plain Trainer computes it
                loss, outputs = super().compute_loss(model, inputs, True, num_items_in_batch)
                loss = loss if gen_w == 1 else gen_w * loss
                return (loss, outputs) if return_outputs else loss
            ll = class_log_likelihoods(model, inputs["input_ids"], inputs["labels"], self.start_ids)
            loss = torch.zeros((), device=ll.device)
            if disc_w:
                disc = discriminative_term(ll, class_index, self.log_prior)
                if self.model_accepts_loss_kwargs and num_items_in_batch is not None and model.training:
                    disc = disc / getattr(self, "current_gradient_accumulation_steps", 1)  # the Trainer will not
                loss = loss + disc_w * disc
            if gen_w:
                loss = loss + gen_w * self._generative_term(ll, class_index, inputs["labels"], num_items_in_batch)
            return (loss, {"logits": ll}) if return_outputs else loss

        def _generative_term(self, ll, class_index, labels, num_items_in_batch):
            """The LM loss from the true-class rows of the batched pass: summed token NLL over
            the tokens of the batch (``num_items_in_batch``, across devices, as the model's own
            loss does) or, without that count, its mean over this batch's tokens."""
            nll = -ll.gather(1, class_index[:, None]).sum()
            if not (self.model_accepts_loss_kwargs and num_items_in_batch is not None):
                return nll / (labels[:, 1:] != -100).sum().clamp(min=1)
            nll = nll / num_items_in_batch
            if self.args.average_tokens_across_devices:  # as Trainer.compute_loss scales the model's loss
                nll = nll * (
                    self.accelerator.num_processes // self.get_tp_size() if self.args.n_gpu <= 1 else self.args.n_gpu
                )
            return nll

    return HybridTrainer


def make_trainer(clf, model, args, train_ds, eval_ds):
    """The Trainer for one fit of ``clf`` (a GPT2Classifier): the plain ``Trainer`` and collator
    at the default weights (1, 0), else :func:`hybrid_trainer` with the params' weights."""
    from transformers import Trainer

    p = clf.params
    if plain_lm_loss(p):
        return Trainer(
            model=model, args=args, train_dataset=train_ds, eval_dataset=eval_ds, data_collator=collate(clf.eos_id_)
        )
    return hybrid_trainer(clf, model, args, (p.generative_weight, p.discriminative_weight), train_ds, eval_ds)


def hybrid_trainer(clf, model, args, weights: tuple[float, float], train_ds=None, eval_ds=None):
    """The blended-loss Trainer for ``clf``'s classes, label tokens and train prior, with
    ``weights`` = (generative, discriminative)."""
    start_ids = [clf.start_ids_[c] for c in clf.classes_] if clf.params.conditioning == "prefix" else None
    return _trainer_class()(
        model=model,
        args=args,
        train_dataset=train_ds,
        eval_dataset=eval_ds,
        data_collator=hybrid_collate(clf.eos_id_),
        weights=weights,
        start_ids=start_ids,
        log_prior=clf.class_log_prior_,
    )
