// ONNX GRU and LSTM steps (default activations): forward, reverse and bidirectional, layouts 0
// and 1, optional B, sequence_lens, initial_h/initial_c, GRU's linear_before_reset 0 and 1.
// The input side of every gate, for all time steps and both directions, is one GEMM; then per
// direction and block of batch rows the hidden GEMM and a fused gate pass, as in the training
// kernels (cpp/ops/rnn_*.cpp), whose gate helpers this reuses. ONNX's gate orders are kept as
// they are (GRU z r h, LSTM i o f c), so weights need no reordering, constant or not.
// Shape letters: T time steps, B batch, I input features, H hidden size, D directions (1 or 2),
// G gates (3 GRU, 4 LSTM).
#include <algorithm>
#include <cstring>

#include "ops/rnn_util.hpp"
#include "runtime/onnx_model.hpp"
#include "runtime/ops.hpp"

namespace hepnn::rt {
namespace {

enum { kT, kB, kI, kH, kD };  // StepPlan::dims slots

struct Dims {
  int64_t T, B, I, H, D, G, GH;
  explicit Dims(const StepPlan& p, bool lstm)
      : T(p.dims[kT]), B(p.dims[kB]), I(p.dims[kI]), H(p.dims[kH]), D(p.dims[kD]), G(lstm ? 4 : 3), GH(G * H) {}
};

// Scratch of one call, in floats: every buffer sized at plan time (no allocation while running).
struct Work {
  float *xg, *h, *c, *hg, *aux, *bias;
  Work(const Dims& d, bool lstm, void* scratch) {
    float* f = static_cast<float*>(scratch);
    xg = f;  f += d.T * d.B * d.D * d.GH;  // gate inputs: x W^T + biases, (T*B rows, D*GH)
    h = f;   f += d.D * d.B * d.H;         // hidden state per direction and row
    c = lstm ? f : nullptr;
    f += lstm ? d.D * d.B * d.H : 0;       // LSTM cell state
    hg = f;  f += d.D * d.B * d.GH;        // hidden side of the gates, h R^T
    aux = f; f += d.D * d.B * d.H;         // GRU: r * h (linear_before_reset 0); LSTM: tanh(c)
    bias = f;                              // D*GH: the biases folded into the input side
  }
  static int64_t floats(const Dims& d, bool lstm) {
    return d.T * d.B * d.D * d.GH + d.D * d.B * d.H * (lstm ? 3 : 2) + d.D * d.B * d.GH + d.D * d.GH;
  }
};

// GRU row, linear_before_reset 1: g (z r h) holds the input side plus both z, r biases; hg is
// h R^T; rbh is Rb_h (or null), which the reset gate scales.
void gru_row_lbr(int64_t H, float* __restrict g, const float* __restrict hg, const float* __restrict rbh,
                 float* __restrict h) {
  for (int64_t j = 0; j < 2 * H; ++j) g[j] += hg[j];
  cpu::rnn::sigmoid_inplace(2 * H, g);
  const float* z = g;
  const float* r = g + H;
  float* n = g + 2 * H;
  for (int64_t j = 0; j < H; ++j) n[j] += r[j] * (hg[2 * H + j] + (rbh ? rbh[j] : 0.0f));
  cpu::rnn::tanh_into(H, n, n);
  for (int64_t j = 0; j < H; ++j) h[j] = (1.0f - z[j]) * n[j] + z[j] * h[j];
}

// LSTM row: g (i o f c) holds the input side plus all biases; hg is h R^T; tc is H floats of room.
void lstm_row(int64_t H, float* __restrict g, const float* __restrict hg, float* __restrict c, float* __restrict h,
              float* __restrict tc) {
  for (int64_t j = 0; j < 4 * H; ++j) g[j] += hg[j];
  cpu::rnn::sigmoid_inplace(3 * H, g);
  cpu::rnn::tanh_into(H, g + 3 * H, g + 3 * H);
  const float* i = g;
  const float* o = g + H;
  const float* f = g + 2 * H;
  const float* cc = g + 3 * H;
  for (int64_t j = 0; j < H; ++j) c[j] = f[j] * c[j] + i[j] * cc[j];
  cpu::rnn::tanh_into(H, c, tc);
  for (int64_t j = 0; j < H; ++j) h[j] = o[j] * tc[j];
}

struct Args {
  const float *x, *w, *r, *b, *h0, *c0;
  const int64_t* lens;
  float *y, *yh, *yc;
};

// The time loop of direction d for batch rows [b0, b1).
void run_block(const Step& s, const Dims& n, const Args& a, const Work& w, int64_t d, int64_t b0, int64_t b1) {
  const bool lstm = s.kind == StepKind::lstm, lbr = s.linear_before_reset;
  const bool reverse = s.reverse || d == 1;
  const int64_t nb = b1 - b0, H = n.H, GH = n.GH, DGH = n.D * GH;
  const float* R = a.r + d * GH * H;
  float* h = w.h + (d * n.B + b0) * H;
  float* c = lstm ? w.c + (d * n.B + b0) * H : nullptr;
  float* hg = w.hg + (d * n.B + b0) * GH;
  float* aux = w.aux + (d * n.B + b0) * H;
  // Offsets of row b in X's rows, Y and the (D, B, H) states, for either layout.
  auto xrow = [&](int64_t t, int64_t b) { return s.batch_major ? b * n.T + t : t * n.B + b; };
  auto yoff = [&](int64_t t, int64_t b) { return (s.batch_major ? (b * n.T + t) * n.D + d : (t * n.D + d) * n.B + b) * H; };
  auto soff = [&](int64_t b) { return (s.batch_major ? b * n.D + d : d * n.B + b) * H; };
  for (int64_t r = 0; r < nb; ++r) {
    if (a.h0) std::memcpy(h + r * H, a.h0 + soff(b0 + r), size_t(H) * sizeof(float));
    else std::fill(h + r * H, h + (r + 1) * H, 0.0f);
    if (lstm && a.c0) std::memcpy(c + r * H, a.c0 + soff(b0 + r), size_t(H) * sizeof(float));
    else if (lstm) std::fill(c + r * H, c + (r + 1) * H, 0.0f);
  }
  const float* rbh = !lstm && lbr && a.b ? a.b + d * 2 * GH + GH + 2 * H : nullptr;
  // GRU without linear_before_reset: h R_h^T waits for r, so the first product covers z and r only.
  const int64_t first_cols = !lstm && !lbr ? 2 * H : GH;
  auto active = [&](int64_t b, int64_t t) { return !a.lens || t < a.lens[b]; };
  for (int64_t step = 0; step < n.T; ++step) {
    const int64_t t = reverse ? n.T - 1 - step : step;
    const bool zero_state = step == 0 && !a.h0;
    if (zero_state) std::fill(hg, hg + nb * GH, 0.0f);
    else cpu::rnn::gemm_nt_serial<float>(nb, first_cols, H, h, H, R, H, hg, GH);
    auto gates = [&](int64_t r) { return w.xg + xrow(t, b0 + r) * DGH + d * GH; };
    if (lstm) {
      for (int64_t r = 0; r < nb; ++r)
        if (active(b0 + r, t)) lstm_row(H, gates(r), hg + r * GH, c + r * H, h + r * H, aux + r * H);
    } else if (lbr) {
      for (int64_t r = 0; r < nb; ++r)
        if (active(b0 + r, t)) gru_row_lbr(H, gates(r), hg + r * GH, rbh, h + r * H);
    } else {
      // h~ = tanh(x W_h^T + (r * h) R_h^T + biases): z and r first, then the second product.
      for (int64_t r = 0; r < nb; ++r) {
        float* g = gates(r);
        float* rh = aux + r * H;
        if (!active(b0 + r, t)) {
          std::fill(rh, rh + H, 0.0f);
          continue;
        }
        for (int64_t j = 0; j < 2 * H; ++j) g[j] += hg[r * GH + j];
        cpu::rnn::sigmoid_inplace(2 * H, g);
        for (int64_t j = 0; j < H; ++j) rh[j] = g[H + j] * h[r * H + j];
      }
      if (zero_state) std::fill(hg, hg + nb * GH, 0.0f);
      else cpu::rnn::gemm_nt_serial<float>(nb, H, H, aux, H, R + 2 * H * H, H, hg + 2 * H, GH);
      for (int64_t r = 0; r < nb; ++r) {
        if (!active(b0 + r, t)) continue;
        float* g = gates(r);
        float* nn = g + 2 * H;
        float* hr = h + r * H;
        for (int64_t j = 0; j < H; ++j) nn[j] += hg[r * GH + 2 * H + j];
        cpu::rnn::tanh_into(H, nn, nn);
        for (int64_t j = 0; j < H; ++j) hr[j] = (1.0f - g[j]) * nn[j] + g[j] * hr[j];
      }
    }
    // NOTE: steps past a row's sequence length leave its state as it was and output zeros, so
    // Y_h is the state after the row's last valid step (for reverse: after t = 0).
    for (int64_t r = 0; r < nb; ++r) {
      float* yr = a.y + yoff(t, b0 + r);
      if (active(b0 + r, t)) std::memcpy(yr, h + r * H, size_t(H) * sizeof(float));
      else std::fill(yr, yr + H, 0.0f);
    }
  }
  for (int64_t r = 0; r < nb; ++r) {
    std::memcpy(a.yh + soff(b0 + r), h + r * H, size_t(H) * sizeof(float));
    if (lstm) std::memcpy(a.yc + soff(b0 + r), c + r * H, size_t(H) * sizeof(float));
  }
}

}  // namespace

void infer_rnn(const Step& s, const std::vector<InferIn>& in, Shape& out, Shape& out2, StepPlan& p) {
  const bool lstm = s.kind == StepKind::lstm;
  auto need = [&](bool ok, const std::string& what) {
    if (!ok) op_fail(s, what);
  };
  const Shape& x = *in[0].shape;
  const Shape& w = *in[1].shape;
  const Shape& r = *in[2].shape;
  need(x.size() == 3, "X has shape " + shape_str(x) + ", expected 3-D " + (s.batch_major ? "(B, T, I)" : "(T, B, I)"));
  need(r.size() == 3, "R has shape " + shape_str(r) + ", expected 3-D (D, G*H, H)");
  const int64_t D = s.directions, G = lstm ? 4 : 3;
  const int64_t T = s.batch_major ? x[1] : x[0], B = s.batch_major ? x[0] : x[1], I = x[2];
  const int64_t H = r[2];
  need(!s.hidden || s.hidden == H, "hidden_size " + std::to_string(s.hidden) + " does not match R of shape " + shape_str(r));
  const std::string dh = std::to_string(D) + ", " + std::to_string(G * H);
  need(w == Shape{D, G * H, I}, "W has shape " + shape_str(w) + ", expected (" + dh + ", " + std::to_string(I) + ")");
  need(r == Shape{D, G * H, H}, "R has shape " + shape_str(r) + ", expected (" + dh + ", " + std::to_string(H) + ")");
  if (in[3].shape)
    need(*in[3].shape == Shape{D, 2 * G * H},
         "B has shape " + shape_str(*in[3].shape) + ", expected (" + std::to_string(D) + ", " + std::to_string(2 * G * H) + ")");
  if (in[4].shape)
    need(*in[4].shape == Shape{B}, "sequence_lens has shape " + shape_str(*in[4].shape) + ", expected (" + std::to_string(B) + ",)");
  const Shape state = s.batch_major ? Shape{B, D, H} : Shape{D, B, H};
  for (size_t i : {size_t(5), size_t(6)})
    if (i < in.size() && in[i].shape)
      need(*in[i].shape == state, std::string(i == 5 ? "initial_h" : "initial_c") + " has shape " +
                                      shape_str(*in[i].shape) + ", expected " + shape_str(state));
  out = s.batch_major ? Shape{B, T, D, H} : Shape{T, D, B, H};
  out2 = state;
  p.dims[kT] = T;
  p.dims[kB] = B;
  p.dims[kI] = I;
  p.dims[kH] = H;
  p.dims[kD] = D;
  // Every buffer of Work; each product checked so a hostile shape cannot overflow the sum.
  checked_numel({T, B, D, G * H}, s.op + " gate buffer");
  checked_numel({D, B, G * H}, s.op + " hidden gate buffer");
  const Dims n(p, lstm);
  const int64_t floats = Work::floats(n, lstm);
  need(floats <= kMaxElements, "the scratch buffers need more than 2^31 floats");
  p.scratch = size_t(floats) * sizeof(float);
}

void run_rnn(const Step& s, const StepPlan& p, const void* const* in, void* y, void* yh, void* yc, void* scratch) {
  const bool lstm = s.kind == StepKind::lstm;
  const Dims n(p, lstm);
  Args a{static_cast<const float*>(in[0]), static_cast<const float*>(in[1]), static_cast<const float*>(in[2]),
         static_cast<const float*>(in[3]), static_cast<const float*>(in[5]), lstm ? static_cast<const float*>(in[6]) : nullptr,
         static_cast<const int64_t*>(in[4]), static_cast<float*>(y), static_cast<float*>(yh), static_cast<float*>(yc)};
  if (a.lens)
    for (int64_t b = 0; b < n.B; ++b)
      if (a.lens[b] < 0 || a.lens[b] > n.T)
        op_fail(s, "sequence_lens[" + std::to_string(b) + "] = " + std::to_string(a.lens[b]) + " is outside [0, " +
                       std::to_string(n.T) + "]");
  const Work w(n, lstm, scratch);
  const int64_t GH = n.GH, DGH = n.D * GH;
  const float* bias = nullptr;
  if (a.b) {
    // B holds [Wb, Rb] per direction; Rb joins the input side except GRU's Rb_h with
    // linear_before_reset, which the reset gate scales.
    for (int64_t d = 0; d < n.D; ++d) {
      const float* wb = a.b + d * 2 * GH;
      const float* rb = wb + GH;
      for (int64_t j = 0; j < GH; ++j)
        w.bias[d * GH + j] = wb[j] + (lstm || !s.linear_before_reset || j < 2 * n.H ? rb[j] : 0.0f);
    }
    bias = w.bias;
  }
  if (n.T * n.B > 0) cpu::linear_forward<float>(n.T * n.B, n.I, DGH, a.x, a.w, bias, Act::none, 0.0, w.xg, nullptr);
  // Directions and row blocks are independent: one range over D*B rows, split at direction ends
  // (a grain of at most B lets the two directions of a small batch run on two threads).
  auto body = [&](index_t i0, index_t i1) {
    while (i0 < i1) {
      const int64_t d = i0 / n.B, b0 = i0 % n.B, b1 = std::min<int64_t>(n.B, b0 + (i1 - i0));
      run_block(s, n, a, w, d, b0, b1);
      i0 += b1 - b0;
    }
  };
  parallel_for(n.D * n.B, std::min<int64_t>(cpu::rnn::kRowGrain, std::max<int64_t>(n.B, 1)), body);
}

}  // namespace hepnn::rt
