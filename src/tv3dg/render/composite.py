"""Front-to-back alpha compositing of binned 2D Gaussians, in chunks, with a hand-written backward.

For each tile the depth-sorted Gaussians are taken `chunk` at a time. log(alpha) =
log(opacity) - q/2 is a quadratic polynomial in the pixel position, so the alphas of all tile
pixels x chunk Gaussians ([tiles, pixels, chunk]) come from one matrix product; transmittance is
the exclusive cumulative product of (1 - alpha) (a cumulative sum of logs) carried over from the
previous chunk; colour is a batched matrix product of the blending weights with the Gaussians'
features. A tile leaves the loop when its Gaussians run out or when every one of its pixels has
transmittance below `transmittance_min` (early termination).

The chunk width adapts to the work left: `settings.chunk` Gaussians per tile when set, otherwise
as many as keep one step near `CHUNK_PAIRS` (pixel, Gaussian) pairs, so a small image (or the
few tiles still open late in the loop) takes a few wide steps instead of many narrow ones; each
step costs tens of tensor operations, whose fixed cost dominates on small tensors.

The backward pass reuses each chunk's blending weights w_i = T_i alpha_i and odds
alpha_i / (1 - alpha_i) instead of an autograd graph over every (pixel, Gaussian) pair. It runs
back to front with the closed form (g, g_T: gradients of the composited features and of the
final transmittance; S_i = sum_{j>i} w_j (g . f_j) + g_T T_final)

    dL/dlog(alpha_i) = alpha_i dL/dalpha_i = w_i (g . f_i) - S_i alpha_i / (1 - alpha_i)

carrying the suffix sum per pixel from chunk to chunk, then applies the chain rule to the
polynomial coefficients and from them to the per-Gaussian table.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from tv3dg.render.binning import TileBins

# Columns of the per-Gaussian table that the compositor reads.
MEAN_X, MEAN_Y, CONIC_A, CONIC_B, CONIC_C, LOG_OPACITY, FEATURES = 0, 1, 2, 3, 4, 5, 6

# Float32 arithmetic on denormal numbers (below ~1e-38) is ~100x slower on CPUs. Transmittance is
# floored far below anything visible and cut-off log-alphas are clamped before `exp`, so that no
# product of transmittance, alpha and a gradient gets near that range.
TRANSMITTANCE_FLOOR = 1e-20
LOG_TRANSMITTANCE_FLOOR = math.log(TRANSMITTANCE_FLOOR)
LOG_ALPHA_LOWEST = -20.0  # far below log(alpha_min); these alphas are cut to zero anyway
CHUNK_PAIRS = 2**19  # (pixel, Gaussian) pairs per compositing step when the chunk is sized automatically
CHUNK_RANGE = (32, 256)  # bounds of the automatic chunk width


@dataclass(frozen=True)
class CompositeSettings:
    """Truncation and blocking parameters (see `tv3dg.render.rasterizer.RasterSettings`)."""

    q_cutoff: float  # squared Mahalanobis distance beyond which a Gaussian is cut off
    alpha_min: float
    alpha_max: float
    transmittance_min: float
    chunk: int  # Gaussians per tile and step; 0: sized to about CHUNK_PAIRS pairs per step


@dataclass
class _Chunk:
    """What the backward pass needs from one chunk of the forward pass."""

    tiles: Tensor  # [Ta] tile indices
    ids: Tensor  # [Ta, C] Gaussian ids (padding points at a valid id and is masked)
    valid: Tensor  # [Ta, C] bool
    weights: Tensor  # [Ta, P, C] blending weights T_i alpha_i
    odds: Tensor  # [Ta, P, C] alpha / (1 - alpha), 0 where alpha is cut or capped (no gradient reaches it)
    rows: Tensor  # [Ta, C, cols] the table rows of `ids` (kept: gathering them again costs more than holding them)


def composite(
    table: Tensor, bins: TileBins, batch: int, width: int, height: int, settings: CompositeSettings
) -> tuple[Tensor, Tensor]:
    """Blend the per-Gaussian `table` [B*N, 6+F] (columns: mean x, mean y, conic a, b, c,
    log opacity, features) over the tiles. Returns features [B,H,W,F] and the final
    transmittance [B,H,W]; alpha = 1 - transmittance, and the caller adds the background."""
    if torch.is_grad_enabled() and table.requires_grad:
        acc, trans = _CompositeFunction.apply(table, bins, settings)
    else:
        acc, trans, _ = _forward(table.detach(), bins, settings, keep_chunks=False)
    return _untile(acc, bins, batch, width, height), _untile(trans.unsqueeze(-1), bins, batch, width, height)[..., 0]


class _CompositeFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, table: Tensor, bins: TileBins, settings: CompositeSettings):  # type: ignore[override]
        acc, trans, chunks = _forward(table, bins, settings, keep_chunks=True)
        ctx.bins, ctx.chunks = bins, chunks
        ctx.save_for_backward(table, trans)
        return acc, trans

    @staticmethod
    def backward(ctx, grad_acc: Tensor, grad_trans: Tensor):  # type: ignore[override]
        table, trans = ctx.saved_tensors
        grad_table = _backward(table, trans, grad_acc, grad_trans, ctx.bins, ctx.chunks)
        return grad_table, None, None


def _pixel_basis(bins: TileBins, dtype: torch.dtype, device: torch.device) -> Tensor:
    """[P, 6] monomials (x^2, xy, y^2, x, y, 1) of the pixel centres, relative to the tile corner.

    -q/2 + log(opacity) is a quadratic polynomial in the pixel position, so the log-alphas of a
    whole chunk are one matrix product of this basis with per-Gaussian coefficients.
    """
    local = torch.arange(bins.tile_size, dtype=dtype, device=device) + 0.5
    y, x = (t.reshape(-1) for t in torch.meshgrid(local, local, indexing="ij"))
    return torch.stack([x * x, x * y, y * y, x, y, torch.ones_like(x)], dim=-1)


def _chunk_width(settings: CompositeSettings, active_tiles: int, pixels: int) -> int:
    if settings.chunk > 0:
        return settings.chunk
    low, high = CHUNK_RANGE
    return max(low, min(high, CHUNK_PAIRS // max(active_tiles * pixels, 1)))


def _gather(table: Tensor, bins: TileBins, tiles: Tensor, first: int, chunk: int) -> tuple[Tensor, Tensor, Tensor]:
    """Rows of `table` for positions first..first+chunk-1 of each tile's list: [Ta, C, cols]."""
    counts = bins.tile_counts[tiles]
    width = min(chunk, int(counts.max()) - first)
    offsets = first + torch.arange(width, device=tiles.device)
    valid = offsets[None, :] < counts[:, None]
    entries = torch.where(valid, bins.tile_starts[tiles][:, None] + offsets[None, :], 0)
    ids = bins.gaussian_ids[entries]
    return table[ids], ids, valid


def _local_means(rows: Tensor, tiles: Tensor, bins: TileBins) -> tuple[Tensor, Tensor]:
    """Gaussian centres relative to the corner of the tile they are evaluated in, [Ta, C]."""
    ox = (tiles % bins.tiles_x) * bins.tile_size
    oy = (torch.div(tiles, bins.tiles_x, rounding_mode="floor") % bins.tiles_y) * bins.tile_size
    return rows[..., MEAN_X] - ox[:, None].to(rows.dtype), rows[..., MEAN_Y] - oy[:, None].to(rows.dtype)


def _log_alpha_coefficients(rows: Tensor, mx: Tensor, my: Tensor) -> Tensor:
    """[Ta, 6, C] coefficients of log(opacity) - q/2 on the basis of `_pixel_basis`."""
    a, b, c = rows[..., CONIC_A], rows[..., CONIC_B], rows[..., CONIC_C]
    lin_x = a * mx + b * my
    lin_y = b * mx + c * my
    const = rows[..., LOG_OPACITY] - 0.5 * (mx * lin_x + my * lin_y)
    return torch.stack([-0.5 * a, -b, -0.5 * c, lin_x, lin_y, const], dim=1)


def _alpha(
    rows: Tensor, valid: Tensor, tiles: Tensor, bins: TileBins, basis: Tensor, settings: CompositeSettings
) -> Tensor:
    """Alphas [Ta, P, C], truncated and capped as the settings say."""
    mx, my = _local_means(rows, tiles, bins)
    log_alpha = torch.matmul(basis, _log_alpha_coefficients(rows, mx, my))
    # Cut where alpha < alpha_min or q > q_cutoff, i.e. log_alpha < log(opacity) - q_cutoff / 2.
    floor = torch.clamp_min(rows[..., LOG_OPACITY] - 0.5 * settings.q_cutoff, math.log(settings.alpha_min))
    floor = torch.where(valid, floor, math.inf)
    alpha = torch.exp(torch.clamp(log_alpha, LOG_ALPHA_LOWEST, math.log(settings.alpha_max)))
    return torch.where(log_alpha >= floor[:, None, :], alpha, 0.0)


def _transmittance(alpha: Tensor, trans_before: Tensor) -> tuple[Tensor, Tensor]:
    """Transmittance in front of each Gaussian [Ta, P, C] and what is left after the chunk [Ta, P].

    Computed as a cumulative sum of log(1 - alpha) and floored at TRANSMITTANCE_FLOOR.
    """
    running = torch.empty(alpha.shape[:2] + (alpha.shape[2] + 1,), dtype=alpha.dtype, device=alpha.device)
    torch.log(trans_before, out=running[:, :, 0])
    torch.log1p(-alpha, out=running[:, :, 1:])
    running = torch.cumsum(running, dim=2).clamp_min_(LOG_TRANSMITTANCE_FLOOR).exp_()
    return running[:, :, :-1], running[:, :, -1]


def _forward(table: Tensor, bins: TileBins, settings: CompositeSettings, keep_chunks: bool):
    features = table.shape[1] - FEATURES
    pixels = bins.tile_size * bins.tile_size
    acc = table.new_zeros(bins.num_tiles, pixels, features)
    trans = table.new_ones(bins.num_tiles, pixels)
    basis = _pixel_basis(bins, table.dtype, table.device)
    chunks: list[_Chunk] = []
    tiles = torch.nonzero(bins.tile_counts > 0, as_tuple=True)[0]
    first = 0
    while tiles.numel() > 0:
        rows, ids, valid = _gather(table, bins, tiles, first, _chunk_width(settings, tiles.numel(), pixels))
        alpha = _alpha(rows, valid, tiles, bins, basis, settings)
        exclusive, after = _transmittance(alpha, trans[tiles])
        weights = alpha * exclusive
        acc.index_add_(0, tiles, torch.bmm(weights, rows[..., FEATURES:]))
        trans[tiles] = after
        if keep_chunks:
            # d alpha / d log_alpha = alpha, except where alpha is capped (or cut, where alpha = 0);
            # capped alphas equal alpha_max up to rounding, hence the relative margin.
            odds = torch.where(alpha < settings.alpha_max * (1 - 1e-6), alpha / (1.0 - alpha), 0.0)
            chunks.append(_Chunk(tiles, ids, valid, weights, odds, rows))
        first += rows.shape[1]
        more = (bins.tile_counts[tiles] > first) & (after.amax(dim=1) > settings.transmittance_min)
        tiles = tiles[more]
    return acc, trans, chunks


def _backward(
    table: Tensor, trans: Tensor, grad_acc: Tensor, grad_trans: Tensor, bins: TileBins, chunks: list[_Chunk]
) -> Tensor:
    """Back to front over the chunks, carrying per pixel g . (everything behind the chunk)."""
    basis = _pixel_basis(bins, table.dtype, table.device)
    grad_table = torch.zeros_like(table)
    behind = grad_trans * trans  # the final transmittance is "behind" every Gaussian
    for chunk in reversed(chunks):
        tiles, weights, odds, rows = chunk.tiles, chunk.weights, chunk.odds, chunk.rows
        g_acc = grad_acc[tiles]
        feature_dot = torch.bmm(g_acc, rows[..., FEATURES:].transpose(1, 2))  # [Ta, P, C]
        contrib = weights * feature_dot
        inclusive = torch.cumsum(contrib, dim=2)
        chunk_total = inclusive[:, :, -1]
        after = (behind[tiles] + chunk_total)[:, :, None] - inclusive  # sum over j > i, plus behind
        behind[tiles] += chunk_total
        # alpha dL/dalpha, zero where the odds are (cut alphas have no weight, capped ones no gradient)
        g_log_alpha = torch.where(odds > 0, contrib - after * odds, 0.0)
        g_coeff = torch.matmul(basis.t(), g_log_alpha)  # [Ta, 6, C]
        g_rows = _coefficient_backward(rows, g_coeff, tiles, bins)
        g_features = torch.bmm(weights.transpose(1, 2), g_acc)  # [Ta, C, F]
        g_rows = torch.cat([g_rows, g_features], dim=-1)
        grad_table.index_add_(0, chunk.ids[chunk.valid], g_rows[chunk.valid])
    return grad_table


def _coefficient_backward(rows: Tensor, g_coeff: Tensor, tiles: Tensor, bins: TileBins) -> Tensor:
    """Chain rule from the polynomial coefficients to (mean x, mean y, a, b, c, log opacity)."""
    mx, my = _local_means(rows, tiles, bins)
    a, b, c = rows[..., CONIC_A], rows[..., CONIC_B], rows[..., CONIC_C]
    g_xx, g_xy, g_yy, g_x, g_y, g_1 = g_coeff.unbind(1)
    g_a = -0.5 * g_xx + mx * g_x - 0.5 * mx * mx * g_1
    g_b = -g_xy + my * g_x + mx * g_y - mx * my * g_1
    g_c = -0.5 * g_yy + my * g_y - 0.5 * my * my * g_1
    g_mx = a * g_x + b * g_y - (a * mx + b * my) * g_1
    g_my = b * g_x + c * g_y - (b * mx + c * my) * g_1
    return torch.stack([g_mx, g_my, g_a, g_b, g_c, g_1], dim=-1)


def _untile(values: Tensor, bins: TileBins, batch: int, width: int, height: int) -> Tensor:
    """[num_tiles, P, F] in tile order -> [B, H, W, F], cropping the padding of partial tiles."""
    size = bins.tile_size
    grid = values.reshape(batch, bins.tiles_y, bins.tiles_x, size, size, values.shape[-1])
    image = grid.permute(0, 1, 3, 2, 4, 5).reshape(batch, bins.tiles_y * size, bins.tiles_x * size, values.shape[-1])
    return image[:, :height, :width]
