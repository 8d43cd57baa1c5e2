// The fused attention's tile loops (attention_tile.hpp) compiled with -mavx2 -mfma for float32:
// the score, softmax and accumulation loops vectorise 8 wide, exp goes through the AVX2 kernel.
#include "ops/activation_avx2.hpp"
#include "ops/attention_tile.hpp"

namespace hepnn::cpu::attn {
namespace {
struct VecAvx2 {
  float max(index_t n, const float* x) const { return avx2::max_f32(n, x); }
  double exp_sum(index_t n, const float* x, float shift, float* y) const {
    return avx2::exp_shifted_sum_f32(n, x, shift, y);
  }
  void exp_nonpos(index_t n, const float* x, float* y) const { avx2::exp_nonpos_f32(n, x, y); }
};
}  // namespace

void forward_f32_avx2(const Problem<float>& P, index_t t0, index_t t1, float* out, float* lse) {
  run_forward(P, t0, t1, out, lse, VecAvx2{});
}

void backward_f32_avx2(const Problem<float>& P, index_t t0, index_t t1, bool per_batch,
                       const float* out, const float* lse, const float* dout, float* dq, float* dk,
                       float* dv, float* dbias) {
  run_backward(P, t0, t1, per_batch, out, lse, dout, dq, dk, dv, dbias, VecAvx2{});
}

}  // namespace hepnn::cpu::attn
