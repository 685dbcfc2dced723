"""``build(Arch) -> nn.Module``: a hierarchical video backbone whose blocks come from the mixer registry; presets.

Skeleton (shared by PosMLP-Video and MorphMLP, ``docs/seed_blocks.md``, PosMLP-Video): a two-conv 3-D stem to a
channels-last grid ``(B, T, H, W, C)``, stages of registry blocks separated by strided (1,3,3) convs + LayerNorm,
and a LayerNorm → mean-pool → Linear head.

Set-layout stages (attention, ``blocks.registry.MixerEntry.layout == "set"``) flatten the grid to a token set and
may merge tokens (``StageSpec.merge``: ToMe/STTM, ``blocks/merge.py``); the head then pools the remaining tokens
(size-weighted when ``merge.size_weighted_pool``). A set stage must be the last stage.

Global tokens (Mobile-Former, ``StageSpec.global_tokens``): the backbone owns one learned ``M×d`` token set,
identical for every sample, and carries it through the grid stages that declare it (``TokenStage``); blocks of
other mixers get the generic bridges around them (``blocks/mobile_former.py``). M and d must agree in every such
stage; the head pools the local features only.

Released Mobile-Formers (``docs/seed_blocks.md``, Mobile-Former) use three more pieces: a ``single_conv``
stem, ``down.kind = "none"`` (the stage's first block — a DnaBlock3 — changes width and resolution itself:
``BlockContext.in_dim``/``stride``, mixers registered with ``resamples``) and the ``mobile_former`` head
(``MobileFormerHead``: a last Mobile→Former bridge, then local features and token z_0 to the classifier).
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn as nn
from timm.data import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD
from timm.layers import calculate_drop_path_rates, trunc_normal_

from explorer.arch import Arch, ArchError, DownSpec, MergeSpec, MixerSpec, StemSpec, after_stem, stage_grids
from explorer.blocks import BlockContext, get_mixer, mixer_names, parse_options, preset_spec
from explorer.blocks import preset_names as registered_presets
from explorer.blocks.layers import init_linear
from explorer.blocks.merge import TokenState, build_merger
from explorer.blocks.mobile_former import GlobalTokenBridge, GlobalTokens, MobileFormerHead


def validate_arch(arch: Arch) -> Arch:
    """Check every stage's mixer against the registry and return the spec with options completed by defaults,
    so two specs that build the same model also hash the same."""
    stages = []
    first_tokens = None  # (stage index, GlobalTokensSpec) of the first stage carrying global tokens
    for i, stage in enumerate(arch.stages):
        path = f"stages[{i}].mixer"
        if stage.mixer.kind not in mixer_names():
            raise ArchError(
                f"{path}.kind", f"unknown mixer {stage.mixer.kind!r}; known mixers: {', '.join(mixer_names())}"
            )
        try:
            opts = parse_options(stage.mixer.kind, stage.mixer.options)
        except ValueError as err:
            raise ArchError(f"{path}.options", str(err)) from None
        layout = get_mixer(stage.mixer.kind).layout
        tokens = stage.global_tokens
        if tokens is not None and tokens.num > 0:
            if layout == "set":
                raise ArchError(
                    f"stages[{i}].global_tokens",
                    f"global tokens attach to grid-layout stages; {stage.mixer.kind!r} works on a token set",
                )
            if first_tokens is None:
                first_tokens = (i, tokens)
            elif (tokens.num, tokens.width) != (first_tokens[1].num, first_tokens[1].width):
                j, other = first_tokens
                raise ArchError(
                    f"stages[{i}].global_tokens",
                    f"one token set runs through the network: {tokens.num} tokens of width "
                    f"{tokens.width} here, but {other.num} of width {other.width} in stage {j}",
                )
        prev = arch.stages[i - 1].width if i else (arch.stem.width or stage.width)
        if stage.down.kind == "none" and not get_mixer(stage.mixer.kind).resamples:
            if prev != stage.width or (stage.down.spatial_stride, stage.down.temporal_stride) != (1, 1):
                raise ArchError(
                    f"stages[{i}].down.kind",
                    f"down 'none' leaves the width change {prev}→"
                    f"{stage.width} and the strides to the first block, "
                    f"but mixer {stage.mixer.kind!r} cannot resample",
                )
        if i == 0 and prev != stage.width and stage.down.kind != "none":
            raise ArchError(
                "stem.width",
                f"stem width {prev} differs from the first stage's {stage.width}: give "
                f"stages[0] a down of kind 'none' and a mixer that resamples",
            )
        if i > 0 and get_mixer(arch.stages[i - 1].mixer.kind).layout == "set":
            raise ArchError(
                f"stages[{i}]",
                f"a stage after the set-layout stage {i - 1} "
                f"({arch.stages[i - 1].mixer.kind!r}) is not supported: its tokens are "
                f"a set (merged or not), with no grid to downsample; make the set "
                f"stage the last one",
            )
        merge = stage.merge
        if merge is not None:
            if layout != "set":
                set_mixers = ", ".join(n for n in mixer_names() if get_mixer(n).layout == "set")
                raise ArchError(
                    f"stages[{i}].merge",
                    f"token merging needs a set-layout mixer; "
                    f"{stage.mixer.kind!r} works on the grid "
                    f"(set mixers: {set_mixers})",
                )
            conflict = getattr(opts, "merge_conflict", lambda: None)()
            if conflict:
                raise ArchError(f"stages[{i}].merge", f"mixer {stage.mixer.kind!r}: {conflict}")
            if merge.method == "sttm" and merge.temporal_ratio is None:  # defaults filled, as for mixer options
                merge = dataclasses.replace(merge, temporal_ratio=0.5)
        stages.append(dataclasses.replace(stage, mixer=MixerSpec(stage.mixer.kind, _dump(opts)), merge=merge))
    return arch.replace(stages=tuple(stages))


def _dump(opts) -> dict:
    """Options completed by defaults, less those marked ``omit_default`` (options added to a family later) while
    at their default, so specs written before such an option existed keep their hashes."""
    omit = {
        name
        for name, f in type(opts).model_fields.items()
        if (f.json_schema_extra or {}).get("omit_default") and getattr(opts, name) == f.default
    }
    return opts.model_dump(exclude=omit)


class Stem(nn.Module):
    """``conv`` stem: Conv3d (kt,3,3)/(st,2,2) → BN → GELU → Conv3d (1,3,3)/(1,2,2) → BN for patch 4;
    one conv + BN for patch 2."""

    def __init__(self, in_chans: int, dim: int, spec: StemSpec):
        super().__init__()
        kt, st = spec.temporal_kernel, spec.temporal_stride
        first = dim // 2 if spec.patch == 4 else dim
        layers: list[nn.Module] = [
            nn.Conv3d(in_chans, first, (kt, 3, 3), stride=(st, 2, 2), padding=(kt // 2, 1, 1)),
            nn.BatchNorm3d(first),
        ]
        if spec.patch == 4:
            layers += [
                nn.GELU(),
                nn.Conv3d(first, dim, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
                nn.BatchNorm3d(dim),
            ]
        self.proj = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, T, H, W) -> (B, T, H, W, C)
        return self.proj(x).permute(0, 2, 3, 4, 1)


class FramePatchStem(nn.Module):
    """``frame_patch`` stem (Video-FocalNet): per-frame Conv2d patch×patch stride patch, then LayerNorm."""

    def __init__(self, in_chans: int, dim: int, spec: StemSpec):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, dim, spec.patch, stride=spec.patch)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, t = x.shape[:3]
        x = self.proj(x.transpose(1, 2).flatten(0, 1))  # frames folded into the batch
        return self.norm(x.unflatten(0, (b, t)).permute(0, 1, 3, 4, 2))


class TubeletStem(nn.Module):
    """``tubelet`` stem (ViT): Conv3d kt×p×p with stride st×p×p, plus an optional learned position embedding
    over the whole (T', H', W') grid."""

    def __init__(self, in_chans: int, dim: int, spec: StemSpec, grid: tuple[int, int, int]):
        super().__init__()
        p, kt, st = spec.patch, spec.temporal_kernel, spec.temporal_stride
        self.proj = nn.Conv3d(in_chans, dim, (kt, p, p), stride=(st, p, p))
        self.pos_embed = nn.Parameter(torch.zeros(1, *grid, dim)) if spec.pos_embed else None
        if self.pos_embed is not None:
            trunc_normal_(self.pos_embed, std=0.02)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"} if self.pos_embed is not None else set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x).permute(0, 2, 3, 4, 1)
        return x + self.pos_embed if self.pos_embed is not None else x


class SingleConvStem(nn.Module):
    """``single_conv`` stem (Mobile-Former): Conv3d (kt,3,3) stride (st,2,2), no bias → BN → ReLU6."""

    def __init__(self, in_chans: int, dim: int, spec: StemSpec):
        super().__init__()
        kt, st = spec.temporal_kernel, spec.temporal_stride
        self.proj = nn.Sequential(
            nn.Conv3d(in_chans, dim, (kt, 3, 3), stride=(st, 2, 2), padding=(kt // 2, 1, 1), bias=False),
            nn.BatchNorm3d(dim),
            nn.ReLU6(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(x).permute(0, 2, 3, 4, 1)


class PositionEmbedded(nn.Module):
    """Any stem followed by a learned position embedding over its (T', H', W') grid (σ = 0.02, as the tubelet
    stem's): what an order-blind mixer (attention) needs to see where and when a token is."""

    def __init__(self, body: nn.Module, grid: tuple[int, int, int], dim: int):
        super().__init__()
        self.body = body
        self.pos_embed = nn.Parameter(trunc_normal_(torch.zeros(1, *grid, dim), std=0.02))

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed"}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + self.pos_embed


def make_stem(arch: Arch, dim: int) -> nn.Module:
    spec = arch.stem
    t, h = after_stem(arch)
    if spec.kind == "tubelet":  # its position embedding is its own (the ViT layout)
        return TubeletStem(arch.input.in_chans, dim, spec, (t, h, h))
    if spec.kind == "single_conv":
        stem: nn.Module = SingleConvStem(arch.input.in_chans, dim, spec)
    elif spec.kind == "frame_patch":
        stem = FramePatchStem(arch.input.in_chans, dim, spec)
    else:
        stem = Stem(arch.input.in_chans, dim, spec)
    return PositionEmbedded(stem, (t, h, h), dim) if spec.pos_embed else stem


class PatchMerge(nn.Module):
    """``patch_merge`` downsampling (Video-FocalNet): per-frame Conv2d s×s stride s, then LayerNorm."""

    def __init__(self, in_dim: int, out_dim: int, spec: DownSpec):
        super().__init__()
        self.proj = nn.Conv2d(in_dim, out_dim, spec.spatial_stride, stride=spec.spatial_stride)
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, T, H, W, C)
        b, t = x.shape[:2]
        x = self.proj(x.flatten(0, 1).permute(0, 3, 1, 2))
        return self.norm(x.permute(0, 2, 3, 1).unflatten(0, (b, t)))


def make_down(in_dim: int, out_dim: int, spec: DownSpec) -> nn.Module:
    if spec.kind == "none":
        return nn.Identity()  # the stage's first block resamples
    return PatchMerge(in_dim, out_dim, spec) if spec.kind == "patch_merge" else Downsample(in_dim, out_dim, spec)


class Downsample(nn.Module):
    """Conv3d (ts,3,3) with stride (ts,ss,ss) then LayerNorm, on channels-last grids."""

    def __init__(self, in_dim: int, out_dim: int, spec: DownSpec):
        super().__init__()
        ts, ss = spec.temporal_stride, spec.spatial_stride
        self.conv = nn.Conv3d(in_dim, out_dim, (ts, 3, 3), stride=(ts, ss, ss), padding=(0, 1, 1))
        self.norm = nn.LayerNorm(out_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(self.conv(x.permute(0, 4, 1, 2, 3)).permute(0, 2, 3, 4, 1))


class SetStage(nn.Module):
    """A stage of set-layout blocks: flattens the grid ``(B, T, H, W, C)`` to raster-ordered tokens ``(B, N, C)``
    with sizes 1 (and positions when STTM needs them), then runs ``x, state = block(x, state, merger)`` with the
    stage's merger for the blocks listed in ``merge.layers`` (all blocks when unset). Returns ``(x, state)``."""

    def __init__(self, blocks: list[nn.Module], width: int, grid: tuple[int, int, int], merge: MergeSpec | None):
        super().__init__()
        self.blocks = nn.ModuleList(blocks)
        self.grid = grid
        self.merge = merge
        self.mergers = nn.ModuleDict()
        if merge is not None:
            for j in range(len(blocks)) if merge.layers is None else merge.layers:
                self.mergers[str(j)] = build_merger(merge.method, width, merge.r, merge.ratio, merge.temporal_ratio)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, TokenState]:
        x = x.flatten(1, 3)
        merge = self.merge
        state = TokenState.start(
            x,
            self.grid,
            with_pos=merge is not None and merge.method == "sttm",
            prop_attn=merge is None or merge.prop_attn,
        )
        for j, block in enumerate(self.blocks):
            x, state = block(x, state, self.mergers[str(j)] if str(j) in self.mergers else None)
        return x, state


class TokenStage(nn.Module):
    """A grid stage carrying Mobile-Former global tokens: ``(x, z) -> (x, z)``. Blocks that handle the tokens
    themselves (``carries_tokens``, e.g. ``mobile_former``) get them directly; any other block is wrapped in a
    ``GlobalTokenBridge`` (Mobile→Former and Former before it, Former→Mobile after)."""

    def __init__(self, blocks: list[nn.Module], width: int, token_dim: int):
        super().__init__()
        self.blocks = nn.ModuleList(
            b if getattr(b, "carries_tokens", False) else GlobalTokenBridge(b, width, token_dim) for b in blocks
        )

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        for block in self.blocks:
            x, z = block(x, z)
        return x, z


def _tokens(stage) -> tuple[int, int]:
    t = stage.global_tokens
    return (t.num, t.width) if t is not None and t.num > 0 else (0, 0)


def stem_width(arch: Arch) -> int:
    return arch.stem.width or arch.stages[0].width


def drop_path_rates(arch: Arch) -> list[list[float]]:
    """Each stage's blocks' stochastic-depth rates: timm's linear rule over all blocks of the model."""
    total = sum(s.depth for s in arch.stages)
    rates = calculate_drop_path_rates(arch.drop_path_rate, total) if total > 1 else [0.0]
    starts = [sum(s.depth for s in arch.stages[:i]) for i in range(len(arch.stages))]
    return [rates[k : k + s.depth] for k, s in zip(starts, arch.stages)]


def make_stage(arch: Arch, i: int, grid: tuple[int, int, int], rates: list[float]) -> tuple[nn.Module, nn.Module]:
    """Stage ``i`` of the backbone and the down-sampling in front of it (an identity for the first stage), on the
    stage's token ``grid``, with its blocks' drop-path ``rates``."""
    stage = arch.stages[i]
    in_width = arch.stages[i - 1].width if i else stem_width(arch)
    down = make_down(in_width, stage.width, stage.down) if i else nn.Identity()
    entry = get_mixer(stage.mixer.kind)
    opts = entry.options(**stage.mixer.options)
    blocks = []
    for j in range(stage.depth):
        resample = j == 0 and stage.down.kind == "none"
        ctx = BlockContext(
            stage.width,
            grid,
            stage.mlp_ratio,
            rates[j],
            _tokens(stage),
            in_dim=in_width if resample else None,
            index=j,
            stride=(stage.down.temporal_stride, stage.down.spatial_stride, stage.down.spatial_stride)
            if resample
            else (1, 1, 1),
        )
        blocks.append(entry.build(ctx, opts))
    if _tokens(stage)[0]:
        return down, TokenStage(blocks, stage.width, _tokens(stage)[1])
    if entry.layout == "set":
        return down, SetStage(blocks, stage.width, grid, stage.merge)
    return down, nn.Sequential(*blocks)


def run_stage(
    down: nn.Module, stage: nn.Module, x: torch.Tensor, state: TokenState | None, z: torch.Tensor | None
) -> tuple[torch.Tensor, TokenState | None, torch.Tensor | None]:
    """One stage's forward after its down-sampling: a token stage carries the global tokens ``z``, a set stage
    returns a new token state, a grid stage passes both through."""
    x = down(x)
    if isinstance(stage, TokenStage):
        x, z = stage(x, z)
    elif isinstance(stage, SetStage):
        x, state = stage(x)
    else:
        x = stage(x)
    return x, state, z


class VideoBackbone(nn.Module):
    def __init__(self, arch: Arch, stages: bool = True):
        """The model of ``arch``. ``stages=False`` builds a shell, the stem, global tokens and head with no
        stages, that does not run end to end: the cost layer counts stages one at a time (``make_stage``) and
        adds the shell's parts."""
        super().__init__()
        arch = validate_arch(arch)
        self.arch = arch
        widths = [s.width for s in arch.stages]
        self.stem = make_stem(arch, stem_width(arch))
        self.downs = nn.ModuleList()
        self.stages = nn.ModuleList()
        if stages:
            for i, (grid, rates) in enumerate(zip(stage_grids(arch), drop_path_rates(arch))):
                down, stage = make_stage(arch, i, grid, rates)
                self.downs.append(down)
                self.stages.append(stage)
        self.grad_checkpointing = False
        carried = [_tokens(s) for s in arch.stages if _tokens(s)[0]]
        self.global_tokens = GlobalTokens(*carried[0]) if carried else None  # one set, carried through
        self.num_classes = arch.input.num_classes
        if arch.head.pool == "mobile_former":
            self.norm = None
            self.head = MobileFormerHead(
                widths[-1],
                _tokens(arch.stages[-1])[1],
                arch.head.hidden,
                arch.head.expansion,
                arch.input.num_classes,
                arch.head.dropout,
                groups=arch.head.groups,
            )
            self.num_features = self.head_hidden_size = arch.head.hidden
            return
        self.num_features = self.head_hidden_size = widths[-1]
        self.norm = nn.LayerNorm(widths[-1])
        self.head_drop = nn.Dropout(arch.head.dropout)
        self.head = nn.Linear(widths[-1], arch.input.num_classes)
        init_linear(self.head)

    def forward_tokens(self, x: torch.Tensor) -> tuple[torch.Tensor, TokenState | None]:
        """Features of the last stage — a grid ``(B, T, H, W, C)``, or a set ``(B, N, C)`` with its token state
        when the last stage is set-layout."""
        x, state, _ = self.forward_trunk(x)
        return x, state

    def forward_trunk(self, x: torch.Tensor) -> tuple[torch.Tensor, TokenState | None, torch.Tensor | None]:
        """Last-stage features, their token state, and the global tokens (None without them)."""
        z = self.global_tokens(x.shape[0]) if self.global_tokens is not None else None
        x = self.stem(x)
        state = None
        for down, stage in zip(self.downs, self.stages):
            if self.grad_checkpointing and torch.is_grad_enabled():
                x, state, z = self._checkpointed(stage, down(x), state, z)
            else:
                x, state, z = run_stage(down, stage, x, state, z)
        return x, state, z

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_tokens(x)[0]

    @torch.jit.ignore
    def no_weight_decay(self) -> set[str]:
        """Names of the parameters weight decay must not touch (timm's contract, read by
        ``timm.optim.create_optimizer_v2``): position embeddings, LRPE tables, the global-token embedding, as each
        module that owns one declares. timm also exempts every 1-D parameter (norms, biases) by itself."""
        names = set()
        for prefix, module in self.named_modules():
            if module is not self and hasattr(module, "no_weight_decay"):
                names |= {f"{prefix}.{name}" for name in module.no_weight_decay()}
        return names

    @staticmethod
    def _checkpointed(stage: nn.Module, x: torch.Tensor, state: TokenState | None, z: torch.Tensor | None):
        """One stage under activation checkpointing (recomputed in the backward pass to save memory)."""
        from torch.utils.checkpoint import checkpoint

        if isinstance(stage, TokenStage):
            x, z = checkpoint(stage, x, z, use_reentrant=False)
        elif isinstance(stage, SetStage):
            x, state = checkpoint(stage, x, use_reentrant=False)
        else:
            x = checkpoint(stage, x, use_reentrant=False)
        return x, state, z

    def forward_head(
        self,
        x: torch.Tensor,
        pre_logits: bool = False,
        state: TokenState | None = None,
        tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """timm's head contract on ``forward_features`` output: norm, pool, (dropout,) classifier; ``pre_logits``
        stops before the classifier. A merged token set pools size-weighted only when given its ``state``, and the
        Mobile-Former head needs the global ``tokens``: ``forward`` passes both (``forward_tokens`` returns the
        state)."""
        if self.norm is None:  # Mobile-Former head: features and global tokens
            if tokens is None:
                raise ValueError("the Mobile-Former head reads the global tokens: pass tokens=, or call the model")
            return self.head.pre_logits(x, tokens) if pre_logits else self.head(x, tokens)
        x = self.norm(x)
        if x.dim() == 5:
            x = x.mean(dim=(1, 2, 3))
        elif state is not None and state.merged and self.size_weighted_pool:
            x = (x * state.size).sum(dim=1) / state.size.sum(dim=1)  # ToMe (MAE/video): Σ s·x / Σ s
        else:
            x = x.mean(dim=1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, state, z = self.forward_trunk(x)
        return self.forward_head(x, state=state, tokens=z)

    def get_classifier(self) -> nn.Module:
        return self.head.classifier if self.norm is None else self.head

    def reset_classifier(self, num_classes: int, global_pool: str | None = None) -> None:
        """A new, freshly initialised classifier for ``num_classes`` (0: an identity, features out); the spec
        follows (for num_classes > 0) so cost and export describe the new model. ``global_pool`` is accepted for
        timm's signature; the pooling is part of the spec."""
        head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()
        if isinstance(head, nn.Linear):
            init_linear(head)
        if self.norm is None:
            self.head.classifier = head
        else:
            self.head = head
        self.num_classes = num_classes
        if num_classes > 0:  # a spec always has a classifier; a feature extractor keeps the old one's
            self.arch = self.arch.replace(input=dataclasses.replace(self.arch.input, num_classes=num_classes))

    @torch.jit.ignore
    def set_grad_checkpointing(self, enable: bool = True) -> None:
        self.grad_checkpointing = enable

    @property
    def size_weighted_pool(self) -> bool:
        merge = self.arch.stages[-1].merge
        return merge is not None and merge.size_weighted_pool


def build(arch: Arch) -> VideoBackbone:
    """The model for a spec. Raises ``ArchError`` for a bad spec, ``InvalidCombination`` for options that do
    not fit a stage's grid."""
    return VideoBackbone(arch)


def preset(name: str) -> Arch:
    """A named preset (registered by its family file) as a validated ``Arch``."""
    return validate_arch(Arch.from_dict(preset_spec(name), source=f"preset {name}"))


def preset_names() -> list[str]:
    return registered_presets()


# the name of the first conv of each stem kind (timm's ``first_conv``: what adapting ``in_chans`` would change)
_FIRST_CONV = {"conv": "stem.proj.0", "frame_patch": "stem.proj", "tubelet": "stem.proj", "single_conv": "stem.proj.0"}


def default_cfg(arch: Arch) -> dict:
    """timm's pretrained config for a preset: the clip shape ``(C, T, H, W)`` as ``input_size`` (so
    ``timm.data.resolve_data_config(model=m)`` gives it), the ImageNet mean/std the released video models are
    trained with, the classifier's name; no weights (``url`` empty)."""
    shape = arch.input
    return {
        "url": "",
        "num_classes": shape.num_classes,
        "input_size": (shape.in_chans, shape.frames, shape.resolution, shape.resolution),
        "pool_size": None,
        "crop_pct": 1.0,
        "interpolation": "bicubic",
        "fixed_input_size": True,
        "mean": IMAGENET_DEFAULT_MEAN,
        "std": IMAGENET_DEFAULT_STD,
        "first_conv": _FIRST_CONV.get(arch.stem.kind, "stem"),
        "classifier": "head.classifier" if arch.head.pool == "mobile_former" else "head",
    }


def _timm_entry(name: str):
    """A timm model function for a preset: ``num_classes`` and ``drop_path_rate`` override the spec."""

    def create(pretrained: bool = False, **kwargs) -> VideoBackbone:
        from timm.models import get_pretrained_cfg

        if pretrained:
            raise ValueError(f"{name}: the explorer ships no pretrained weights")
        arch = preset(name)
        if "num_classes" in kwargs:
            arch = arch.replace(input=dataclasses.replace(arch.input, num_classes=int(kwargs.pop("num_classes"))))
        if "drop_path_rate" in kwargs:
            arch = arch.replace(drop_path_rate=float(kwargs.pop("drop_path_rate")))
        kwargs.pop("cache_dir", None)
        cfg = kwargs.pop("pretrained_cfg", None) or get_pretrained_cfg(name).to_dict()
        cfg = {**cfg, **(kwargs.pop("pretrained_cfg_overlay", None) or {})}
        if kwargs:
            raise TypeError(f"{name}: unsupported arguments {sorted(kwargs)}")
        # what timm's build_model_with_cfg does without weights; it cannot be used itself, as it asserts a
        # 3-entry (C, H, W) input_size where a clip has (C, T, H, W)
        model = build(arch)
        model.pretrained_cfg = model.default_cfg = cfg
        return model

    create.__name__ = create.__qualname__ = name
    create.__module__ = __name__
    create.__doc__ = f"explorer preset {name!r} (see `explorer presets`)."
    return create


# timm's register_model reads the pretrained configs from the registering module's ``default_cfgs``
default_cfgs: dict = {}


def register_timm_models() -> list[str]:
    """Register every preset with timm's model registry, with its default config (idempotent); returns the
    names added. Called once at the end of this module's import."""
    from timm.models import generate_default_cfgs, is_model, register_model

    names = [name for name in preset_names() if not is_model(name)]
    default_cfgs.update(generate_default_cfgs({name: default_cfg(preset(name)) for name in names}))
    for name in names:
        register_model(_timm_entry(name))
    return names


register_timm_models()
