// Convolution and pooling steps on the training kernels (ops/conv.hpp, ops/conv_pool.hpp): ONNX
// geometry (auto_pad, explicit pads, ceil_mode, output_shape) resolved per axis into ConvShape /
// PoolShape, 1-d inputs as the H = 1 plane. The kernels pad symmetrically; other pads run through
// scratch and a copy of the wanted window (see ConvPlan). Shape letters as in ops/conv_shape.hpp.
#include <algorithm>
#include <climits>
#include <cstring>
#include <initializer_list>

#include "ops/conv.hpp"
#include "ops/conv_pool.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {
namespace {

// Largest im2col matrix or padded input copy a convolution plan may ask the kernels for (floats):
// a hostile kernel shape must not turn a small input into gigabytes of scratch.
constexpr int64_t kMaxConvScratch = int64_t(1) << 28;

// One spatial axis: input length, window, stride, dilation, pads, output length.
struct Axis {
  int64_t in = 1, k = 1, s = 1, d = 1, pb = 0, pe = 0, out = 1;
  int64_t eff() const { return d * (k - 1) + 1; }
};

int64_t attr(const std::vector<int64_t>& v, size_t i, int64_t def) { return v.empty() ? def : v[i]; }

// The spatial rank (1 or 2) of x (N, C, spatial...), which must match the attributes'.
size_t spatial_rank(const Step& s, const Shape& x, size_t attr_rank) {
  if (x.size() != 3 && x.size() != 4)
    op_fail(s, "input has shape " + shape_str(x) + ", expected 3-d (N, C, L) or 4-d (N, C, H, W)");
  const size_t r = x.size() - 2;
  if (attr_rank && attr_rank != r)
    op_fail(s, "input has shape " + shape_str(x) + " but the attributes are for a " + std::to_string(attr_rank) + "-d input");
  return r;
}

// The spatial rank the attributes give (load checked that they agree), 0 when none is given.
size_t attr_rank(const ConvAttrs& c) {
  if (!c.kernel.empty()) return c.kernel.size();
  if (!c.strides.empty()) return c.strides.size();
  if (!c.dilations.empty()) return c.dilations.size();
  return c.pads.size() / 2;
}

// Axis i (0 .. r-1) of the attributes as the kernels' H (first) or W (second) axis; a 1-d input
// is the W axis of a 1 x L plane.
void fill_axes(const ConvAttrs& c, const Shape& x, const Shape* w, size_t r, Axis ax[2]) {
  ax[0] = ax[1] = Axis{};
  for (size_t i = 0; i < r; ++i) {
    Axis& a = ax[2 - r + i];
    a.in = x[2 + i];
    a.k = w ? (*w)[2 + i] : c.kernel[i];
    a.s = attr(c.strides, i, 1);
    a.d = attr(c.dilations, i, 1);
    a.pb = attr(c.pads, i, 0);
    a.pe = c.pads.empty() ? 0 : c.pads[r + i];
  }
}

// auto_pad SAME_*: the output is ceil(in / stride); the total padding that needs is split with
// the odd one at the end (UPPER) or the beginning (LOWER).
void same_pads(AutoPad ap, Axis& a) {
  const int64_t out = (a.in + a.s - 1) / a.s;
  const int64_t total = std::max<int64_t>(0, (out - 1) * a.s + a.eff() - a.in);
  a.pb = ap == AutoPad::same_upper ? total / 2 : total - total / 2;
  a.pe = total - a.pb;
}

// Output length of a convolution or pooling along a; ceil_mode drops a last window that would
// start in the end padding (as PyTorch and onnx's reference do).
void window_out(const Step& s, Axis& a, bool ceil_mode) {
  const int64_t span = a.in + a.pb + a.pe - a.eff();
  if (span < 0)
    op_fail(s, "input length " + std::to_string(a.in) + " (padded " + std::to_string(a.in + a.pb + a.pe) +
                   ") is shorter than the window " + std::to_string(a.eff()));
  a.out = (ceil_mode ? (span + a.s - 1) / a.s : span / a.s) + 1;
  if (ceil_mode && (a.out - 1) * a.s >= a.in + a.pb) --a.out;
}

// The kernels' symmetric pad for an axis and the first kernel output that is the wanted one. The
// windows start at o * stride - pad, so a pad of pb + a multiple of the stride that is >= pe
// gives every wanted window, shifted by that multiple; the extra ones are cropped away.
int64_t symmetric(const Axis& a, int64_t& pad) {
  pad = a.pe > a.pb ? a.pb + (a.pe - a.pb + a.s - 1) / a.s * a.s : a.pb;
  return (pad - a.pb) / a.s;
}

// Product of non-negative sizes, saturating instead of overflowing (for the limit checks).
int64_t sat_mul(std::initializer_list<int64_t> v) {
  int64_t r = 1;
  for (int64_t x : v) {
    if (x == 0) return 0;
    r = r > INT64_MAX / x ? INT64_MAX : r * x;
  }
  return r;
}

void check_scratch(const Step& s, int64_t n, const char* what) {
  if (n > kMaxConvScratch)
    op_fail(s, std::string(what) + " needs more than 2^28 elements of scratch (absurd kernel or input shape)");
}

// Plans the copy of the wanted h x w window at (r0, c0) out of the kernel's kh x kw planes, when
// they differ (or always, with force).
void plan_crop(const Step& s, StepPlan& p, int64_t planes, int64_t h, int64_t w, int64_t r0, int64_t c0, int64_t kh,
               int64_t kw, bool force = false) {
  ConvPlan& cp = p.conv;
  cp.crop = force || r0 != 0 || c0 != 0 || kh != h || kw != w;
  if (!cp.crop) return;
  cp.crop_planes = planes;
  cp.crop_h = kh;
  cp.crop_w = kw;
  cp.crop_r0 = r0;
  cp.crop_c0 = c0;
  cp.out_h = h;
  cp.out_w = w;
  const int64_t n = checked_numel({planes, kh, kw}, s.op + " scratch");
  check_scratch(s, n, "the uncropped output");
  p.scratch = size_t(n) * sizeof(float);
}

void infer_pool(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p);

void infer_conv_fwd(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  const ConvAttrs& c = s.conv;
  const Shape& x = *in[0].shape;
  const Shape& w = *in[1].shape;
  const size_t r = spatial_rank(s, x, attr_rank(c));
  if (w.size() != r + 2) op_fail(s, "weight has shape " + shape_str(w) + ", expected " + std::to_string(r + 2) + "-d");
  for (size_t i = 0; i < r; ++i)
    if (!c.kernel.empty() && c.kernel[i] != w[2 + i])
      op_fail(s, "kernel_shape does not match the weight's shape " + shape_str(w));
  const int64_t O = w[0], G = c.group;
  if (O % G || x[1] % G)
    op_fail(s, "group " + std::to_string(G) + " does not divide the channels (" + std::to_string(x[1]) + " in, " +
                   std::to_string(O) + " out)");
  if (w[1] * G != x[1])
    op_fail(s, "input has " + std::to_string(x[1]) + " channels, the weight " + shape_str(w) + " with group " +
                   std::to_string(G) + " expects " + std::to_string(w[1] * G));
  if (in.size() > 2 && in[2].shape && (in[2].shape->size() != 1 || (*in[2].shape)[0] != O))
    op_fail(s, "bias has shape " + shape_str(*in[2].shape) + ", expected (" + std::to_string(O) + ",)");
  Axis ax[2];
  fill_axes(c, x, &w, r, ax);
  int64_t pad[2], first[2], kout[2];
  for (int i = 0; i < 2; ++i) {
    Axis& a = ax[i];
    if (a.k < 1) op_fail(s, "weight has shape " + shape_str(w) + ": empty kernel");
    if (c.auto_pad == AutoPad::valid) a.pb = a.pe = 0;
    else if (c.auto_pad != AutoPad::notset && (i == 1 || r == 2)) same_pads(c.auto_pad, a);
    window_out(s, a, false);
    first[i] = symmetric(a, pad[i]);
    kout[i] = conv_out_size(a.in, a.k, a.s, pad[i], a.d);
  }
  out = {x[0], O, ax[0].out, ax[1].out};
  if (r == 1) out.erase(out.begin() + 2);
  ConvShape& cs = p.conv.cs;
  cs = ConvShape{x[0], x[1], ax[0].in, ax[1].in, O, ax[0].k, ax[1].k, ax[0].s, ax[1].s, pad[0], pad[1],
                 ax[0].d, ax[1].d, G, kout[0], kout[1]};
  checked_numel({x[0], O, kout[0], kout[1]}, s.op + " output");
  check_scratch(s, sat_mul({cs.Cg(), ax[0].k, ax[1].k, kout[0], kout[1]}), "the im2col matrix");
  check_scratch(s, sat_mul({cs.Cg(), ax[0].in + 2 * pad[0], ax[1].in + 2 * pad[1]}), "the padded input");
  plan_crop(s, p, x[0] * O, ax[0].out, ax[1].out, first[0], first[1], kout[0], kout[1]);
  if (c.then_max_pool.empty()) return;
  // A fused MaxPool pools this output (max pooling never crops: see infer_pool). With a crop the
  // cropped conv output goes to scratch after the uncropped one, and is pooled from there.
  Step pool = s;
  pool.kind = StepKind::pool;
  pool.conv = c.then_max_pool[0];
  StepPlan pp;
  const Shape conv_out = out;
  infer_pool(pool, {InferIn{&conv_out, nullptr, Elem::f32}}, out, pp);
  p.conv.ps = pp.conv.ps;
  p.conv.pooled = true;
  if (p.conv.crop) {
    p.conv.conv_n = checked_numel(conv_out, s.op + " output");
    p.scratch += size_t(p.conv.conv_n) * sizeof(float);
  }
}

// ConvTranspose: the output length per axis is stride * (in - 1) + output_padding + window - pads,
// or output_shape (pads then follow from it). The kernel computes the adjoint of the convolution
// with symmetric pads whose output is x; other pads compute the full result (no pads) into
// scratch and copy the window [pb, pb + out) out, the bias filling what lies beyond it.
void infer_conv_transpose(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  const ConvAttrs& c = s.conv;
  const Shape& x = *in[0].shape;
  const Shape& w = *in[1].shape;
  const size_t r = spatial_rank(s, x, attr_rank(c));
  if (w.size() != r + 2) op_fail(s, "weight has shape " + shape_str(w) + ", expected " + std::to_string(r + 2) + "-d");
  for (size_t i = 0; i < r; ++i)
    if (!c.kernel.empty() && c.kernel[i] != w[2 + i])
      op_fail(s, "kernel_shape does not match the weight's shape " + shape_str(w));
  const int64_t G = c.group;
  if (w[0] != x[1])
    op_fail(s, "input has " + std::to_string(x[1]) + " channels, the weight " + shape_str(w) + " expects " +
                   std::to_string(w[0]));
  if (x[1] % G)
    op_fail(s, "group " + std::to_string(G) + " does not divide the " + std::to_string(x[1]) + " input channels");
  const int64_t C = w[1] * G;
  if (in.size() > 2 && in[2].shape && (in[2].shape->size() != 1 || (*in[2].shape)[0] != C))
    op_fail(s, "bias has shape " + shape_str(*in[2].shape) + ", expected (" + std::to_string(C) + ",)");
  if ((!c.output_padding.empty() && c.output_padding.size() != r) ||
      (!c.output_shape.empty() && c.output_shape.size() != r && c.output_shape.size() != r + 2))
    op_fail(s, "output_padding / output_shape do not match the input's spatial rank " + std::to_string(r));
  Axis ax[2];
  fill_axes(c, x, &w, r, ax);
  int64_t full[2], pad[2], op_[2] = {0, 0};
  bool direct = true;
  for (int i = 0; i < 2; ++i) {
    Axis& a = ax[i];
    const bool real = i == 1 || r == 2;
    const size_t ai = r == 2 ? size_t(i) : 0;
    if (a.k < 1) op_fail(s, "weight has shape " + shape_str(w) + ": empty kernel");
    if (a.in < 1) op_fail(s, "input has shape " + shape_str(x) + ": empty spatial axis");
    if (real) op_[i] = attr(c.output_padding, ai, 0);
    full[i] = a.s * (a.in - 1) + a.eff();
    const int64_t natural = full[i] + op_[i];
    int64_t want = -1;
    if (real && !c.output_shape.empty()) want = c.output_shape[c.output_shape.size() - r + ai];
    else if (real && (c.auto_pad == AutoPad::same_upper || c.auto_pad == AutoPad::same_lower)) want = a.in * a.s;
    if (want >= 0) {
      // NOTE: a negative total (output_shape beyond the natural size) adds bias-only rows at the
      // end; the halves round down, as in onnx's reference.
      const int64_t total = natural - want, half = total >= 0 ? total / 2 : -((1 - total) / 2);
      a.pb = c.auto_pad == AutoPad::same_upper ? half : total - half;
      a.pe = total - a.pb;
    } else if (c.auto_pad == AutoPad::valid) {
      a.pb = a.pe = 0;
    }
    a.out = natural - a.pb - a.pe;
    if (a.out < 1) op_fail(s, "the output would have length " + std::to_string(a.out) + " along a spatial axis");
    pad[i] = a.pb;
    direct &= a.pb == a.pe && a.pb >= 0 && conv_out_size(a.out, a.k, a.s, a.pb, a.d) == a.in;
  }
  out = {x[0], C, ax[0].out, ax[1].out};
  if (r == 1) out.erase(out.begin() + 2);
  checked_numel(out, s.op + " output");
  const int64_t H = direct ? ax[0].out : full[0], W = direct ? ax[1].out : full[1];
  ConvShape& cs = p.conv.cs;
  cs = ConvShape{x[0], C, H, W, x[1], ax[0].k, ax[1].k, ax[0].s, ax[1].s, direct ? pad[0] : 0, direct ? pad[1] : 0,
                 ax[0].d, ax[1].d, G, ax[0].in, ax[1].in};
  checked_numel({x[0], C, H, W}, s.op + " output");
  check_scratch(s, sat_mul({cs.Cg(), ax[0].k, ax[1].k, ax[0].in, ax[1].in}), "the column matrix");
  check_scratch(s, sat_mul({cs.Cg(), H + 2 * cs.ph, W + 2 * cs.pw}), "the padded output");
  if (!direct) plan_crop(s, p, x[0] * C, ax[0].out, ax[1].out, ax[0].pb, ax[1].pb, H, W, true);
}

void infer_pool(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  const ConvAttrs& c = s.conv;
  const Shape& x = *in[0].shape;
  PoolShape& ps = p.conv.ps;
  if (c.pool == PoolKind::global_avg || c.pool == PoolKind::global_max) {
    if (x.size() < 3) op_fail(s, "input has shape " + shape_str(x) + ", expected (N, C, spatial...)");
    const int64_t S = prod(x, 2, x.size());
    if (S < 1 && x[0] * x[1] > 0) op_fail(s, "input has shape " + shape_str(x) + ": nothing to pool");
    out = x;
    for (size_t i = 2; i < out.size(); ++i) out[i] = 1;
    ps = PoolShape{x[0] * x[1], 1, S, 1, S, 1, 1, 0, 0, 1, 1, 1, 1};
    return;
  }
  const size_t r = spatial_rank(s, x, c.kernel.size());
  Axis ax[2];
  fill_axes(c, x, nullptr, r, ax);
  int64_t pad[2], first[2], kout[2];
  for (int i = 0; i < 2; ++i) {
    Axis& a = ax[i];
    if (a.in < 1) op_fail(s, "input has shape " + shape_str(x) + ": empty spatial axis");
    const bool real = i == 1 || r == 2;
    if (c.auto_pad == AutoPad::valid) a.pb = a.pe = 0;
    else if (c.auto_pad != AutoPad::notset && real) same_pads(c.auto_pad, a);
    window_out(s, a, c.ceil_mode);
    // Max and exclusive average pooling clip windows at the input's end whatever the end pad,
    // so the kernel takes the begin pad and the wanted output length as they are. Average
    // pooling that counts the pads divides by the padded window: the end pad must be there.
    if (c.pool == PoolKind::avg && c.count_include_pad && a.pb != a.pe) {
      if (c.ceil_mode) op_fail(s, "ceil_mode with asymmetric pads and count_include_pad is not supported");
      first[i] = symmetric(a, pad[i]);
      kout[i] = conv_out_size(a.in, a.k, a.s, pad[i], a.d);
    } else {
      pad[i] = a.pb;
      first[i] = 0;
      kout[i] = a.out;
    }
    // Every window the max kernel visits must hold an input element: with dilation the taps of
    // a window that starts in the padding can step over a short input. (The average kernel
    // gives empty windows a zero sum; the only ones it meets are cropped away.)
    for (int64_t o = 0; c.pool == PoolKind::max && o < kout[i] && o * a.s < pad[i]; ++o) {
      const int64_t start = o * a.s - pad[i], kh0 = (-start + a.d - 1) / a.d;
      if (kh0 >= a.k || start + kh0 * a.d >= a.in)
        op_fail(s, "a window lies wholly in the padding (input length " + std::to_string(a.in) + ", pad " +
                       std::to_string(pad[i]) + ", dilation " + std::to_string(a.d) + ")");
    }
  }
  out = {x[0], x[1], ax[0].out, ax[1].out};
  if (r == 1) out.erase(out.begin() + 2);
  ps = PoolShape{x[0] * x[1], ax[0].in, ax[1].in, ax[0].k, ax[1].k, ax[0].s, ax[1].s, pad[0], pad[1],
                 ax[0].d, ax[1].d, kout[0], kout[1]};
  checked_numel({x[0], x[1], kout[0], kout[1]}, s.op + " output");
  plan_crop(s, p, x[0] * x[1], ax[0].out, ax[1].out, first[0], first[1], kout[0], kout[1]);
}

// dst (P, H, W) = the window of src (P, crop_h, crop_w) at (crop_r0, crop_c0); outside it each
// plane gets fill[plane % C] (fill null: 0).
void crop_copy(const ConvPlan& cp, int64_t H, int64_t W, const float* src, const float* fill, int64_t C, float* dst) {
  for (int64_t q = 0; q < cp.crop_planes; ++q) {
    const float f = fill ? fill[q % C] : 0.0f;
    const float* sp = src + q * cp.crop_h * cp.crop_w;
    float* dp = dst + q * H * W;
    const int64_t j0 = std::clamp<int64_t>(-cp.crop_c0, 0, W), j1 = std::clamp<int64_t>(cp.crop_w - cp.crop_c0, j0, W);
    for (int64_t i = 0; i < H; ++i) {
      float* row = dp + i * W;
      const int64_t si = i + cp.crop_r0;
      if (si < 0 || si >= cp.crop_h) {
        std::fill(row, row + W, f);
        continue;
      }
      std::fill(row, row + j0, f);
      if (j1 > j0) std::memcpy(row + j0, sp + si * cp.crop_w + j0 + cp.crop_c0, size_t(j1 - j0) * sizeof(float));
      std::fill(row + j1, row + W, f);
    }
  }
}

}  // namespace

void infer_conv(const Step& s, const std::vector<InferIn>& in, Shape& out, StepPlan& p) {
  if (s.kind == StepKind::conv) infer_conv_fwd(s, in, out, p);
  else if (s.kind == StepKind::conv_transpose) infer_conv_transpose(s, in, out, p);
  else infer_pool(s, in, out, p);
}

void run_conv(const Step& s, const StepPlan& p, const void* const* in, void* out, void* scratch) {
  const ConvPlan& cp = p.conv;
  const float* x = static_cast<const float*>(in[0]);
  float* y = static_cast<float*>(out);
  float* dst = cp.crop ? static_cast<float*>(scratch) : y;
  const float* b = s.in.size() > 2 ? static_cast<const float*>(in[2]) : nullptr;
  if (s.kind == StepKind::conv && cp.pooled && !cp.crop) {
    cpu::conv2d_maxpool2d_forward<float>(cp.cs, cp.ps, x, static_cast<const float*>(in[1]), b, s.act, s.alpha, y);
    return;
  }
  if (s.kind == StepKind::conv) {
    cpu::conv2d_forward<float>(cp.cs, x, static_cast<const float*>(in[1]), b, s.act, s.alpha, dst, nullptr);
    if (cp.pooled) {
      float* cropped = dst + cp.crop_planes * cp.crop_h * cp.crop_w;
      crop_copy(cp, cp.out_h, cp.out_w, dst, nullptr, 1, cropped);
      cpu::max_pool2d_forward<float>(cp.ps, cropped, y, nullptr);
      return;
    }
  } else if (s.kind == StepKind::conv_transpose) {
    cpu::conv_transpose2d_forward<float>(cp.cs, x, static_cast<const float*>(in[1]), b, dst);
  } else if (s.conv.pool == PoolKind::global_avg) {
    cpu::adaptive_avg_pool2d_forward<float>(cp.ps.P, 1, cp.ps.W, 1, 1, x, y);
  } else if (s.conv.pool == PoolKind::max || s.conv.pool == PoolKind::global_max) {
    cpu::max_pool2d_forward<float>(cp.ps, x, dst, nullptr);
  } else {
    cpu::avg_pool2d_forward<float>(cp.ps, s.conv.count_include_pad, x, dst);
  }
  if (!cp.crop) return;
  const bool tr = s.kind == StepKind::conv_transpose;
  crop_copy(cp, cp.out_h, cp.out_w, dst, tr ? b : nullptr, tr ? cp.cs.C : 1, y);
}

}  // namespace hepnn::rt
