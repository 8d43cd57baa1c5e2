// Python entry points of the recurrent layers, one layer and direction per call: lstm_forward,
// lstm_backward, gru_forward, gru_backward (CPU or CUDA by where the arrays live). y / dy are
// (L, B, H), or (L, B, 2H) for a bidirectional layer, whose reverse direction uses the second half.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <utility>

#include "common.hpp"
#include "ops/rnn.hpp"
#if defined(HEPNN_WITH_CUDA)
#include "cuda/rnn.hpp"
#endif

namespace nb = nanobind;

namespace hepnn::py {
namespace {

const Array* opt(const OptArray& a) { return a ? &*a : nullptr; }

// Sizes of one call, read from x (L, B, I) and w_hh (G*H, H).
struct Dims {
  int64_t L, B, I, H, G;
  int64_t ldy = 0, y_off = 0;
};

DType check_arrays(const char* op, std::initializer_list<Named> arrays) {
  const Array& ref = *arrays.begin()->first;
  const DType dt = float_dtype(ref, op, arrays.begin()->second);
  require_supported_device(ref, op, arrays.begin()->second);
  for (const auto& [a, name] : arrays) {
    if (!a) continue;
    require_same_device(*a, ref, op, name);
    require_dtype(*a, dt, op, name);
    require_contiguous(*a, op, name);
  }
  return dt;
}

Dims check_dims(const char* op, int64_t G, const Array& x, const Array& w_ih, const Array& w_hh) {
  require_ndim(x, 3, op, "x");
  require_ndim(w_hh, 2, op, "w_hh");
  const int64_t L = x.shape(0), B = x.shape(1), I = x.shape(2), H = w_hh.shape(1);
  if (H < 1)
    throw ValueError(op_message(op, "hidden size must be >= 1, w_hh has shape " + shape_str(w_hh)));
  require_shape(w_hh, {G * H, H}, op, "w_hh");
  require_shape(w_ih, {G * H, I}, op, "w_ih");
  return {L, B, I, H, G};
}

// y (or dy): (L, B, H) or (L, B, 2H); the reverse direction of a 2H array takes the second half.
void check_y(const char* op, const char* name, const Array& y, Dims& d, bool reverse) {
  require_ndim(y, 3, op, name);
  const int64_t W = y.shape(2);
  if (y.shape(0) != d.L || y.shape(1) != d.B || (W != d.H && W != 2 * d.H))
    throw ValueError(op_message(op, std::string(name) + " has shape " + shape_str(y) + ", expected (" +
                                        std::to_string(d.L) + ", " + std::to_string(d.B) + ", " +
                                        std::to_string(d.H) + ") or (..., " + std::to_string(2 * d.H) +
                                        ") for both directions"));
  d.ldy = W;
  d.y_off = (W == 2 * d.H && reverse) ? d.H : 0;
}

void check_lengths(const char* op, const OptArray& lengths, const Array& x, const Dims& d) {
  if (!lengths) return;
  require_int64(*lengths, op, "lengths");
  require_same_device(*lengths, x, op, "lengths");
  require_shape(*lengths, {d.B}, op, "lengths");
  require_contiguous(*lengths, op, "lengths");
  if (is_cpu(*lengths)) {  // CUDA lengths are checked by the Python layer before the copy
    const int64_t* p = ptr<int64_t>(*lengths);
    for (int64_t b = 0; b < d.B; ++b)
      if (p[b] < 0 || p[b] > d.L)
        throw ValueError(op_message(op, "lengths[" + std::to_string(b) + "] = " + std::to_string(p[b]) +
                                            " is outside [0, " + std::to_string(d.L) + "]"));
  }
}

void check_state(const char* op, const OptArray& a, const char* name, const Dims& d) {
  if (a) require_shape(*a, {d.B, d.H}, op, name);
}

void check_ws(const char* op, const Array& a, const char* name, const Dims& d, int64_t width) {
  require_shape(a, {d.L, d.B, width}, op, name);
}

template <typename T>
T* at(const Array& a, int64_t off) {
  return ptr<T>(a) + off;
}

template <typename T>
const int64_t* lens(const OptArray& l) {
  return l ? ptr<int64_t>(*l) : nullptr;
}

// ---- LSTM ----
template <typename T>
void lstm_fw(const Dims& d, const Array& x, const Array& w_ih, const Array& w_hh, const OptArray& b_ih,
             const OptArray& b_hh, const OptArray& h0, const OptArray& c0, const OptArray& lengths,
             bool reverse, const Array& y, const Array& hn, const Array& cn, const Array& gates,
             const Array& hs, const Array& cs, std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::lstm_forward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                                 ptr_or_null<T>(b_ih), ptr_or_null<T>(b_hh), ptr_or_null<T>(h0),
                                 ptr_or_null<T>(c0), lens<T>(lengths), reverse, at<T>(y, d.y_off), d.ldy,
                                 ptr<T>(hn), ptr<T>(cn), ptr<T>(gates), ptr<T>(hs), ptr<T>(cs),
                                 to_stream(stream));
#endif
  } else {
    hepnn::cpu::lstm_forward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                                ptr_or_null<T>(b_ih), ptr_or_null<T>(b_hh), ptr_or_null<T>(h0),
                                ptr_or_null<T>(c0), lens<T>(lengths), reverse, at<T>(y, d.y_off), d.ldy,
                                ptr<T>(hn), ptr<T>(cn), ptr<T>(gates), ptr<T>(hs), ptr<T>(cs));
  }
}

template <typename T>
void lstm_bw(const Dims& d, const Array& x, const Array& w_ih, const Array& w_hh, const OptArray& h0,
             const OptArray& c0, const OptArray& lengths, bool reverse, const Array& gates,
             const Array& hs, const Array& cs, const OptArray& dy, const OptArray& dhn,
             const OptArray& dcn, const OptArray& dx, bool dx_acc, const Array& dw_ih,
             const Array& dw_hh, const OptArray& db_ih, const OptArray& db_hh, const OptArray& dh0,
             const OptArray& dc0, std::uintptr_t stream) {
  const T* dyp = dy ? at<T>(*dy, d.y_off) : nullptr;
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::lstm_backward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                                  ptr_or_null<T>(h0), ptr_or_null<T>(c0), lens<T>(lengths), reverse,
                                  ptr<T>(gates), ptr<T>(hs), ptr<T>(cs), dyp, d.ldy, ptr_or_null<T>(dhn),
                                  ptr_or_null<T>(dcn), ptr_or_null<T>(dx), dx_acc, ptr<T>(dw_ih),
                                  ptr<T>(dw_hh), ptr_or_null<T>(db_ih), ptr_or_null<T>(db_hh),
                                  ptr_or_null<T>(dh0), ptr_or_null<T>(dc0), to_stream(stream));
#endif
  } else {
    hepnn::cpu::lstm_backward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                                 ptr_or_null<T>(h0), ptr_or_null<T>(c0), lens<T>(lengths), reverse,
                                 ptr<T>(gates), ptr<T>(hs), ptr<T>(cs), dyp, d.ldy, ptr_or_null<T>(dhn),
                                 ptr_or_null<T>(dcn), ptr_or_null<T>(dx), dx_acc, ptr<T>(dw_ih),
                                 ptr<T>(dw_hh), ptr_or_null<T>(db_ih), ptr_or_null<T>(db_hh),
                                 ptr_or_null<T>(dh0), ptr_or_null<T>(dc0));
  }
}

// ---- GRU ----
template <typename T>
void gru_fw(const Dims& d, const Array& x, const Array& w_ih, const Array& w_hh, const OptArray& b_ih,
            const OptArray& b_hh, const OptArray& h0, const OptArray& lengths, bool reverse,
            const Array& y, const Array& hn, const Array& gates, const Array& hs, const Array& hnb,
            std::uintptr_t stream) {
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::gru_forward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                                ptr_or_null<T>(b_ih), ptr_or_null<T>(b_hh), ptr_or_null<T>(h0),
                                lens<T>(lengths), reverse, at<T>(y, d.y_off), d.ldy, ptr<T>(hn),
                                ptr<T>(gates), ptr<T>(hs), ptr<T>(hnb), to_stream(stream));
#endif
  } else {
    hepnn::cpu::gru_forward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                               ptr_or_null<T>(b_ih), ptr_or_null<T>(b_hh), ptr_or_null<T>(h0),
                               lens<T>(lengths), reverse, at<T>(y, d.y_off), d.ldy, ptr<T>(hn),
                               ptr<T>(gates), ptr<T>(hs), ptr<T>(hnb));
  }
}

template <typename T>
void gru_bw(const Dims& d, const Array& x, const Array& w_ih, const Array& w_hh, const OptArray& h0,
            const OptArray& lengths, bool reverse, const Array& gates, const Array& hs,
            const Array& hnb, const OptArray& dy, const OptArray& dhn, const OptArray& dx, bool dx_acc,
            const Array& dw_ih, const Array& dw_hh, const OptArray& db_ih, const OptArray& db_hh,
            const OptArray& dh0, std::uintptr_t stream) {
  const T* dyp = dy ? at<T>(*dy, d.y_off) : nullptr;
  if (is_cuda(x)) {
#if defined(HEPNN_WITH_CUDA)
    hepnn::cuda::gru_backward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                                 ptr_or_null<T>(h0), lens<T>(lengths), reverse, ptr<T>(gates),
                                 ptr<T>(hs), ptr<T>(hnb), dyp, d.ldy, ptr_or_null<T>(dhn),
                                 ptr_or_null<T>(dx), dx_acc, ptr<T>(dw_ih), ptr<T>(dw_hh),
                                 ptr_or_null<T>(db_ih), ptr_or_null<T>(db_hh), ptr_or_null<T>(dh0),
                                 to_stream(stream));
#endif
  } else {
    hepnn::cpu::gru_backward<T>(d.L, d.B, d.I, d.H, ptr<T>(x), ptr<T>(w_ih), ptr<T>(w_hh),
                                ptr_or_null<T>(h0), lens<T>(lengths), reverse, ptr<T>(gates),
                                ptr<T>(hs), ptr<T>(hnb), dyp, d.ldy, ptr_or_null<T>(dhn),
                                ptr_or_null<T>(dx), dx_acc, ptr<T>(dw_ih), ptr<T>(dw_hh),
                                ptr_or_null<T>(db_ih), ptr_or_null<T>(db_hh), ptr_or_null<T>(dh0));
  }
}

}  // namespace
}  // namespace hepnn::py

HEPNN_BINDING(rnn) {
  using namespace hepnn::py;
  m.def(
      "lstm_forward",
      [](Array x, Array w_ih, Array w_hh, OptArray b_ih, OptArray b_hh, OptArray h0, OptArray c0,
         OptArray lengths, bool reverse, Array y, Array hn, Array cn, Array gates, Array hs, Array cs,
         std::uintptr_t stream) {
        const char* op = "lstm";
        const hepnn::DType dt = check_arrays(op, {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(b_ih), "b_ih"},
                                                  {opt(b_hh), "b_hh"}, {opt(h0), "h0"}, {opt(c0), "c0"}, {&y, "y"},
                                                  {&hn, "hn"}, {&cn, "cn"}, {&gates, "gates"}, {&hs, "hs"}, {&cs, "cs"}});
        Dims d = check_dims(op, 4, x, w_ih, w_hh);
        if (b_ih) require_shape(*b_ih, {4 * d.H}, op, "b_ih");
        if (b_hh) require_shape(*b_hh, {4 * d.H}, op, "b_hh");
        check_state(op, h0, "h0", d);
        check_state(op, c0, "c0", d);
        check_lengths(op, lengths, x, d);
        check_y(op, "y", y, d, reverse);
        require_shape(hn, {d.B, d.H}, op, "hn");
        require_shape(cn, {d.B, d.H}, op, "cn");
        check_ws(op, gates, "gates", d, 4 * d.H);
        check_ws(op, hs, "hs", d, d.H);
        check_ws(op, cs, "cs", d, d.H);
        require_disjoint(op, {{&y, "y"}, {&hn, "hn"}, {&cn, "cn"}, {&gates, "gates"}, {&hs, "hs"}, {&cs, "cs"}},
                         {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(b_ih), "b_ih"}, {opt(b_hh), "b_hh"},
                          {opt(h0), "h0"}, {opt(c0), "c0"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) lstm_fw<float>(d, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse, y, hn, cn, gates, hs, cs, stream);
        else lstm_fw<double>(d, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse, y, hn, cn, gates, hs, cs, stream);
      },
      nb::arg("x"), nb::arg("w_ih"), nb::arg("w_hh"), nb::arg("b_ih").none(), nb::arg("b_hh").none(),
      nb::arg("h0").none(), nb::arg("c0").none(), nb::arg("lengths").none(), nb::arg("reverse"), nb::arg("y"),
      nb::arg("hn"), nb::arg("cn"), nb::arg("gates"), nb::arg("hs"), nb::arg("cs"), nb::arg("stream") = 0,
      "One LSTM layer direction over x (L, B, I): writes y, hn, cn and the workspace gates (L, B, 4H), "
      "hs, cs (L, B, H) kept for lstm_backward.");

  m.def(
      "lstm_backward",
      [](Array x, Array w_ih, Array w_hh, OptArray h0, OptArray c0, OptArray lengths, bool reverse,
         Array gates, Array hs, Array cs, OptArray dy, OptArray dhn, OptArray dcn, OptArray dx, bool dx_accumulate,
         Array dw_ih, Array dw_hh, OptArray db_ih, OptArray db_hh, OptArray dh0, OptArray dc0, std::uintptr_t stream) {
        const char* op = "lstm";
        const hepnn::DType dt = check_arrays(op, {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(h0), "h0"},
                                                  {opt(c0), "c0"}, {&gates, "gates"}, {&hs, "hs"}, {&cs, "cs"},
                                                  {opt(dy), "dy"}, {opt(dhn), "dhn"}, {opt(dcn), "dcn"}, {opt(dx), "dx"},
                                                  {&dw_ih, "dw_ih"}, {&dw_hh, "dw_hh"}, {opt(db_ih), "db_ih"},
                                                  {opt(db_hh), "db_hh"}, {opt(dh0), "dh0"}, {opt(dc0), "dc0"}});
        Dims d = check_dims(op, 4, x, w_ih, w_hh);
        check_state(op, h0, "h0", d);
        check_state(op, c0, "c0", d);
        check_lengths(op, lengths, x, d);
        check_ws(op, gates, "gates", d, 4 * d.H);
        check_ws(op, hs, "hs", d, d.H);
        check_ws(op, cs, "cs", d, d.H);
        if (dy) check_y(op, "dy", *dy, d, reverse);
        check_state(op, dhn, "dhn", d);
        check_state(op, dcn, "dcn", d);
        if (dx) require_shape(*dx, {d.L, d.B, d.I}, op, "dx");
        require_shape(dw_ih, {4 * d.H, d.I}, op, "dw_ih");
        require_shape(dw_hh, {4 * d.H, d.H}, op, "dw_hh");
        if (db_ih) require_shape(*db_ih, {4 * d.H}, op, "db_ih");
        if (db_hh) require_shape(*db_hh, {4 * d.H}, op, "db_hh");
        check_state(op, dh0, "dh0", d);
        check_state(op, dc0, "dc0", d);
        require_disjoint(op, {{opt(dx), "dx"}, {&dw_ih, "dw_ih"}, {&dw_hh, "dw_hh"}, {opt(db_ih), "db_ih"},
                              {opt(db_hh), "db_hh"}, {opt(dh0), "dh0"}, {opt(dc0), "dc0"}},
                         {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(h0), "h0"}, {opt(c0), "c0"},
                          {&gates, "gates"}, {&hs, "hs"}, {&cs, "cs"}, {opt(dy), "dy"}, {opt(dhn), "dhn"},
                          {opt(dcn), "dcn"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32)
          lstm_bw<float>(d, x, w_ih, w_hh, h0, c0, lengths, reverse, gates, hs, cs, dy, dhn, dcn, dx, dx_accumulate,
                         dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, stream);
        else
          lstm_bw<double>(d, x, w_ih, w_hh, h0, c0, lengths, reverse, gates, hs, cs, dy, dhn, dcn, dx, dx_accumulate,
                          dw_ih, dw_hh, db_ih, db_hh, dh0, dc0, stream);
      },
      nb::arg("x"), nb::arg("w_ih"), nb::arg("w_hh"), nb::arg("h0").none(), nb::arg("c0").none(),
      nb::arg("lengths").none(), nb::arg("reverse"), nb::arg("gates"), nb::arg("hs"), nb::arg("cs"),
      nb::arg("dy").none(), nb::arg("dhn").none(), nb::arg("dcn").none(), nb::arg("dx").none(),
      nb::arg("dx_accumulate"), nb::arg("dw_ih"), nb::arg("dw_hh"), nb::arg("db_ih").none(),
      nb::arg("db_hh").none(), nb::arg("dh0").none(), nb::arg("dc0").none(), nb::arg("stream") = 0,
      "Backprop through time of one LSTM layer direction from the forward workspace; dy, dhn, dcn "
      "may be None (zero); dx is added to when dx_accumulate.");

  m.def(
      "gru_forward",
      [](Array x, Array w_ih, Array w_hh, OptArray b_ih, OptArray b_hh, OptArray h0, OptArray lengths,
         bool reverse, Array y, Array hn, Array gates, Array hs, Array hnb, std::uintptr_t stream) {
        const char* op = "gru";
        const hepnn::DType dt = check_arrays(op, {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(b_ih), "b_ih"},
                                                  {opt(b_hh), "b_hh"}, {opt(h0), "h0"}, {&y, "y"}, {&hn, "hn"},
                                                  {&gates, "gates"}, {&hs, "hs"}, {&hnb, "hnb"}});
        Dims d = check_dims(op, 3, x, w_ih, w_hh);
        if (b_ih) require_shape(*b_ih, {3 * d.H}, op, "b_ih");
        if (b_hh) require_shape(*b_hh, {3 * d.H}, op, "b_hh");
        check_state(op, h0, "h0", d);
        check_lengths(op, lengths, x, d);
        check_y(op, "y", y, d, reverse);
        require_shape(hn, {d.B, d.H}, op, "hn");
        check_ws(op, gates, "gates", d, 3 * d.H);
        check_ws(op, hs, "hs", d, d.H);
        check_ws(op, hnb, "hnb", d, d.H);
        require_disjoint(op, {{&y, "y"}, {&hn, "hn"}, {&gates, "gates"}, {&hs, "hs"}, {&hnb, "hnb"}},
                         {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(b_ih), "b_ih"}, {opt(b_hh), "b_hh"},
                          {opt(h0), "h0"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32) gru_fw<float>(d, x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, y, hn, gates, hs, hnb, stream);
        else gru_fw<double>(d, x, w_ih, w_hh, b_ih, b_hh, h0, lengths, reverse, y, hn, gates, hs, hnb, stream);
      },
      nb::arg("x"), nb::arg("w_ih"), nb::arg("w_hh"), nb::arg("b_ih").none(), nb::arg("b_hh").none(),
      nb::arg("h0").none(), nb::arg("lengths").none(), nb::arg("reverse"), nb::arg("y"), nb::arg("hn"),
      nb::arg("gates"), nb::arg("hs"), nb::arg("hnb"), nb::arg("stream") = 0,
      "One GRU layer direction over x (L, B, I): writes y, hn and the workspace gates (L, B, 3H), "
      "hs, hnb (L, B, H) kept for gru_backward.");

  m.def(
      "gru_backward",
      [](Array x, Array w_ih, Array w_hh, OptArray h0, OptArray lengths, bool reverse, Array gates, Array hs,
         Array hnb, OptArray dy, OptArray dhn, OptArray dx, bool dx_accumulate, Array dw_ih, Array dw_hh,
         OptArray db_ih, OptArray db_hh, OptArray dh0, std::uintptr_t stream) {
        const char* op = "gru";
        const hepnn::DType dt = check_arrays(op, {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(h0), "h0"},
                                                  {&gates, "gates"}, {&hs, "hs"}, {&hnb, "hnb"}, {opt(dy), "dy"},
                                                  {opt(dhn), "dhn"}, {opt(dx), "dx"}, {&dw_ih, "dw_ih"},
                                                  {&dw_hh, "dw_hh"}, {opt(db_ih), "db_ih"}, {opt(db_hh), "db_hh"},
                                                  {opt(dh0), "dh0"}});
        Dims d = check_dims(op, 3, x, w_ih, w_hh);
        check_state(op, h0, "h0", d);
        check_lengths(op, lengths, x, d);
        check_ws(op, gates, "gates", d, 3 * d.H);
        check_ws(op, hs, "hs", d, d.H);
        check_ws(op, hnb, "hnb", d, d.H);
        if (dy) check_y(op, "dy", *dy, d, reverse);
        check_state(op, dhn, "dhn", d);
        if (dx) require_shape(*dx, {d.L, d.B, d.I}, op, "dx");
        require_shape(dw_ih, {3 * d.H, d.I}, op, "dw_ih");
        require_shape(dw_hh, {3 * d.H, d.H}, op, "dw_hh");
        if (db_ih) require_shape(*db_ih, {3 * d.H}, op, "db_ih");
        if (db_hh) require_shape(*db_hh, {3 * d.H}, op, "db_hh");
        check_state(op, dh0, "dh0", d);
        require_disjoint(op, {{opt(dx), "dx"}, {&dw_ih, "dw_ih"}, {&dw_hh, "dw_hh"}, {opt(db_ih), "db_ih"},
                              {opt(db_hh), "db_hh"}, {opt(dh0), "dh0"}},
                         {{&x, "x"}, {&w_ih, "w_ih"}, {&w_hh, "w_hh"}, {opt(h0), "h0"}, {&gates, "gates"},
                          {&hs, "hs"}, {&hnb, "hnb"}, {opt(dy), "dy"}, {opt(dhn), "dhn"}});
        nb::gil_scoped_release release;
        if (dt == hepnn::DType::f32)
          gru_bw<float>(d, x, w_ih, w_hh, h0, lengths, reverse, gates, hs, hnb, dy, dhn, dx, dx_accumulate, dw_ih,
                        dw_hh, db_ih, db_hh, dh0, stream);
        else
          gru_bw<double>(d, x, w_ih, w_hh, h0, lengths, reverse, gates, hs, hnb, dy, dhn, dx, dx_accumulate, dw_ih,
                         dw_hh, db_ih, db_hh, dh0, stream);
      },
      nb::arg("x"), nb::arg("w_ih"), nb::arg("w_hh"), nb::arg("h0").none(), nb::arg("lengths").none(),
      nb::arg("reverse"), nb::arg("gates"), nb::arg("hs"), nb::arg("hnb"), nb::arg("dy").none(),
      nb::arg("dhn").none(), nb::arg("dx").none(), nb::arg("dx_accumulate"), nb::arg("dw_ih"), nb::arg("dw_hh"),
      nb::arg("db_ih").none(), nb::arg("db_hh").none(), nb::arg("dh0").none(), nb::arg("stream") = 0,
      "Backprop through time of one GRU layer direction from the forward workspace; dy and dhn may "
      "be None (zero); dx is added to when dx_accumulate.");
}
